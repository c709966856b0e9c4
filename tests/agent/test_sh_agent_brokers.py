"""The sh agent with logins: a TLS-only Mosquitto with passwords and the docs' per-node ACL,
and the collector's embedded broker with a password file.

Without `use_username_as_clientid`: the sh agent keeps a session for its will and status
and one for commands, and sends reports in sessions of their own, each with its own client
id (`meshmon-agent-NODE`, `-cmd`, `-pub`); forced onto one id they would take each other
over (docs/agent.md).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers
from tests.agent.router import chromiumos_libremesh
from tests.integration.harness import collector_config, eventually, get_json, started
from tests.integration.test_mqtt_security import (  # noqa: F401 - fixtures
    NODE,
    PASSWORDS,
    docs_acl,
    meshmon_passwd,
    node_json,
    pki,
    tls_collector,
)


@pytest.fixture(scope="module")
def secure_mosquitto(pki: dict[str, Path]) -> Iterator[servers.Server]:  # noqa: F811
    """A TLS-only Mosquitto with passwords and the docs' ACL, client ids as the clients say."""
    d = pki["ca"].parent / "sh"
    d.mkdir(exist_ok=True)
    passwd, acl = d / "passwd", d / "acl"
    passwd.touch(mode=0o600)
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    acl.write_text(docs_acl())
    server = servers.start_mosquitto(extra_conf=(
        f"cafile {pki['ca']}\ncertfile {pki['cert']}\nkeyfile {pki['key']}\n"
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\nlog_type all\n"))
    yield server
    server.stop()


def _command_lines() -> list[str]:
    lines = []
    for entry in Path("/proc").iterdir():
        try:
            lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, UnicodeDecodeError):
            continue
    return lines


async def test_sh_agent_reports_over_tls_with_its_password_off_the_command_line(
    tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server  # noqa: F811
) -> None:
    service = tls_collector(tmp_path, secure_mosquitto.port, pki["ca"], PASSWORDS["collector"])
    await service.start()
    router = chromiumos_libremesh(tmp_path / "router")
    config = router.config(
        f'node = "{NODE}"\ninterval_s = 1\n[mqtt]\nport = {secure_mosquitto.port}\n'
        f'username = "{NODE}"\npassword = "{PASSWORDS[NODE]}"\ntls = true\n'
        f'tls_ca_file = "{pki["ca"]}"\n')
    agent = router.spawn(config, tmp_path / "agent.log")
    try:
        async def reported() -> bool:
            got = await node_json(service, NODE)
            return got["status"] == 200 and got["body"]["report_ts"] is not None

        await eventually(reported, 20, f"{NODE}'s report over TLS")
        body = (await node_json(service, NODE))["body"]
        assert body["online"] is True
        log = secure_mosquitto.log()
        # the status session (with the will), report sessions and the command subscriber
        # logged in as the node; the password is in the clients' options file only
        assert f"as meshmon-agent-{NODE} (p2, c1, k30, u'{NODE}')" in log
        assert f"as meshmon-agent-{NODE}-pub (p2, c1, k30, u'{NODE}')" in log
        assert f"as meshmon-agent-{NODE}-cmd (p2, c1, k30, u'{NODE}')" in log
        assert not any(PASSWORDS[NODE] in line for line in _command_lines())
        assert "cannot connect" not in (tmp_path / "agent.log").read_text()
    finally:
        agent.kill()
        agent.wait(5)
        await service.stop()


async def test_sh_agent_with_the_embedded_broker_and_a_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`meshmon serve`'s own broker (amqtt, per-user ACL): reports, then the will."""
    passwd = tmp_path / "passwd"
    for user in ("collector", NODE):
        meshmon_passwd(passwd, user, PASSWORDS[user], monkeypatch)
    service = await started(collector_config(tmp_path, None, mqtt={
        "username": "collector", "password": PASSWORDS["collector"], "client_id": "collector",
        "embedded": {"port": 0, "password_file": str(passwd)}}))
    assert service.broker is not None
    router = chromiumos_libremesh(tmp_path / "router")
    config = router.config(
        f'node = "{NODE}"\ninterval_s = 1\n[mqtt]\nport = {service.broker.port}\n'
        f'username = "{NODE}"\npassword = "{PASSWORDS[NODE]}"\n')
    agent = router.spawn(config, tmp_path / "agent.log")
    url = f"{service.http_url}/api/v1/nodes/{NODE}"
    try:
        async def online_with_links() -> bool:
            got = await get_json(url)
            return got["status"] == 200 and got["body"]["online"] is True and bool(
                got["body"]["report_ts"])

        await eventually(online_with_links, 20, "the sh agent's report via the embedded broker")
        agent.send_signal(signal.SIGKILL)
        agent.wait(5)

        async def offline() -> bool:
            return (await get_json(url))["body"]["online"] is False

        await eventually(offline, 15, "the will through the embedded broker")
        assert "cannot connect" not in (tmp_path / "agent.log").read_text()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(5)
        await service.stop()
