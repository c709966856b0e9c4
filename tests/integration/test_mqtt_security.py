"""MQTT credentials and TLS, end to end on real servers (docs/security.md).

Mosquitto with a TLS listener, a password file and the ACL from the docs, between a real
agent process and the collector; and the embedded amqtt broker with a password file made
by `meshmon passwd`. Refused clients must be told so, logged, retried — and must neither
crash nor disturb anyone else.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from meshmon import cli
from meshmon.config import ConfigError
from meshmon.service import Service
from tests import servers
from tests.agent_process import start_agent, stop
from tests.integration.harness import collector_config, eventually, get_json, started

NODE = "sec-node"  # an agent's MQTT user name is its node id (the ACL's %u)
PASSWORDS = {"collector": "collector-pw", NODE: "node-pw", "other-node": "other-pw"}

ACL = """\
user collector
topic read meshmon/v1/node/+/status
topic read meshmon/v1/node/+/info
topic read meshmon/v1/node/+/report
topic write meshmon/v1/node/+/cmd

pattern write meshmon/v1/node/%u/#
pattern read meshmon/v1/node/%u/cmd
"""


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A throwaway CA (EC P-256): (certificate, key)."""
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return crt, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and localhost signed by `ca`: (certificate, key)."""
    crt, key, csr = (directory / f"server.{ext}" for ext in ("crt", "key", "csr"))
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", "2",
             "-days", "2", "-out", crt, "-extfile", ext)
    return crt, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "meshmon-test-ca")
    server = make_server_cert(d, ca)
    stranger = make_ca(d, "some-other-ca")
    return {"ca": ca[0], "cert": server[0], "key": server[1], "other_ca": stranger[0]}


@pytest.fixture(scope="module")
def secure_mosquitto(pki: dict[str, Path]) -> Iterator[servers.Server]:
    """Mosquitto with only a TLS listener, passwords (mosquitto_passwd) and the docs' ACL."""
    d = pki["ca"].parent
    passwd, acl = d / "passwd", d / "acl"
    passwd.touch(mode=0o600)
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    acl.write_text(ACL)
    # no `listener` line: the TLS settings apply to start_mosquitto's own listener, so
    # nothing on this broker speaks plain MQTT; the later allow_anonymous wins
    server = servers.start_mosquitto(extra_conf=(
        f"cafile {pki['ca']}\ncertfile {pki['cert']}\nkeyfile {pki['key']}\n"
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        "log_type all\n"))  # denied PUBLISHes are logged at debug
    yield server
    server.stop()


def connect(port: int, user: str | None, password: str | None, client_id: str,
            ca: Path | None = None) -> tuple[paho.Client, str]:
    """The broker's CONNACK reason for one attempt, and the client: its network thread
    runs if the broker accepted it (no thread otherwise, so nothing retries)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv311)
    if user is not None:
        client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    answered: list[str] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answered.append(str(reason))
    client.connect("127.0.0.1", port, keepalive=10)
    deadline = time.monotonic() + 5
    while not answered and time.monotonic() < deadline:
        client.loop(0.05)
    reason = answered[0] if answered else "no CONNACK"
    if reason == "Success":
        client.loop_start()
    return client, reason


async def connack(port: int, user: str | None, password: str | None, client_id: str,
                  ca: Path | None = None) -> str:
    """The CONNACK reason for one connection attempt (the client is closed again)."""
    client, reason = await asyncio.to_thread(connect, port, user, password, client_id, ca)
    client.disconnect()
    client.loop_stop()
    return reason


async def publish(client: paho.Client, topic: str, payload: dict[str, object]) -> None:
    info = client.publish(topic, json.dumps(payload), qos=1)
    await asyncio.to_thread(info.wait_for_publish, 5)
    assert info.is_published(), f"no PUBACK for {topic}"


def report(node: str, seq: int = 1) -> dict[str, object]:
    return {"v": 1, "node": node, "ts": time.time(), "seq": seq, "interval_s": 30,
            "sys": {"uptime_s": 100}, "links": []}


async def node_json(service: Service, node: str) -> dict[str, Any]:
    """`{"status": …, "body": …}` of `/api/v1/nodes/NODE`."""
    got: dict[str, Any] = await get_json(f"{service.http_url}/api/v1/nodes/{node}")
    return got


def warnings_from(caplog: pytest.LogCaptureFixture, logger: str, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == logger and r.levelno >= logging.WARNING and text in r.getMessage()]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def tls_collector(tmp: Path, port: int, ca: Path, password: str) -> Service:
    return Service(collector_config(tmp, port, mqtt={
        "tls": True, "ca_file": str(ca), "username": "collector", "password": password}))


# --------------------------------------------------------------------- Mosquitto, TLS


async def test_agent_report_reaches_api_through_tls_mosquitto_with_passwords(
    tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server
) -> None:
    service = tls_collector(tmp_path, secure_mosquitto.port, pki["ca"], PASSWORDS["collector"])
    await service.start()
    agent = start_agent(tmp_path, secure_mosquitto.port, NODE, interval_s=0.5, username=NODE,
                        password=PASSWORDS[NODE], tls_ca_file=pki["ca"])
    try:
        assert service.ingest is not None
        await asyncio.wait_for(service.ingest.connected.wait(), 10)

        async def reported() -> bool:
            got = await node_json(service, NODE)
            return got["status"] == 200 and got["body"]["report_ts"] is not None

        await eventually(reported, 15, f"{NODE}'s report in /api/v1/nodes/{NODE}")
        body = (await node_json(service, NODE))["body"]
        assert body["online"] is True and body["sys"]["uptime_s"] is not None
        assert agent.poll() is None
        # the broker saw both log in over TLS with their own user names
        log = secure_mosquitto.log()
        assert f"as meshmon-agent-{NODE} (p2, c1, k30, u'{NODE}')" in log
        assert "u'collector')" in log
    finally:
        stop(agent)
        await service.stop()
    assert not errors_in_agent_log(tmp_path)


def errors_in_agent_log(tmp_path: Path) -> list[str]:
    text = (tmp_path / f"agent-{NODE}.log").read_text()
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


async def test_acl_lets_a_node_publish_only_under_its_own_id(
    tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server
) -> None:
    service = tls_collector(tmp_path, secure_mosquitto.port, pki["ca"], PASSWORDS["collector"])
    await service.start()
    client, reason = await asyncio.to_thread(
        connect, secure_mosquitto.port, "other-node", PASSWORDS["other-node"], "acl-probe",
        pki["ca"])
    try:
        assert reason == "Success"
        assert service.ingest is not None
        await asyncio.wait_for(service.ingest.connected.wait(), 10)
        # MQTT 3.1.1 has no way to refuse a PUBLISH: Mosquitto acknowledges and drops it
        await publish(client, f"meshmon/v1/node/{NODE}-spoofed/report", report(f"{NODE}-spoofed"))
        await publish(client, "meshmon/v1/node/other-node/report", report("other-node"))

        async def own_report_arrived() -> bool:
            return (await node_json(service, "other-node"))["status"] == 200

        await eventually(own_report_arrived, 10, "other-node's own report in the API")
        # one client, one broker, one subscriber: the spoofed report would have come first
        assert (await node_json(service, f"{NODE}-spoofed"))["status"] == 404
        assert "Denied PUBLISH from acl-probe" in secure_mosquitto.log()
    finally:
        client.disconnect()
        client.loop_stop()
        await service.stop()


async def test_collector_with_wrong_password_is_refused_logs_it_and_keeps_retrying(
    tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    refused_before = secure_mosquitto.log().count("disconnected, not authorised")
    service = tls_collector(tmp_path, secure_mosquitto.port, pki["ca"], "not-the-password")
    await service.start()
    try:
        assert service.ingest is not None
        ingest = service.ingest

        async def refused_twice() -> bool:
            return ingest.refused >= 2

        await eventually(refused_twice, 10, "two refused connection attempts")
        assert not ingest.connected.is_set() and ingest.connects == 0
        refusals = warnings_from(caplog, "meshmon.ingest.mqtt", "refused the connection")
        assert len(refusals) == 1, refusals  # said once, not on every retry
        assert "Not authorized" in refusals[0]
        assert "as user 'collector': check mqtt.username and mqtt.password" in refusals[0]
        # still serving
        health = await get_json(f"{service.http_url}/healthz")
        assert health["status"] == 200
    finally:
        await service.stop()
    assert secure_mosquitto.log().count("disconnected, not authorised") >= refused_before + 2
    assert not errors(caplog)


async def test_collector_that_does_not_trust_the_broker_certificate_says_so(
    tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    service = tls_collector(tmp_path, secure_mosquitto.port, pki["other_ca"],
                            PASSWORDS["collector"])
    await service.start()
    try:

        async def tls_failure_logged() -> bool:
            return bool(warnings_from(caplog, "meshmon.ingest.paho_loop", "TLS connection"))

        await eventually(tls_failure_logged, 10, "a warning about the failed TLS handshake")
        await asyncio.sleep(1.5)  # more attempts, same error: not repeated
        failures = warnings_from(caplog, "meshmon.ingest.paho_loop", "TLS connection")
        assert len(failures) == 1, failures
        assert "certificate verify failed" in failures[0]
        assert service.ingest is not None and not service.ingest.connected.is_set()
    finally:
        await service.stop()
    assert not errors(caplog)


async def test_agent_with_wrong_password_is_refused_logs_it_and_keeps_retrying(
    tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server
) -> None:
    agent = start_agent(tmp_path, secure_mosquitto.port, NODE, interval_s=30, username=NODE,
                        password="not-the-password", tls_ca_file=pki["ca"])
    log = tmp_path / f"agent-{NODE}.log"
    try:

        async def refused_twice() -> bool:
            return log.read_text().count("broker refused connection: Not authorized") >= 2

        await eventually(refused_twice, 15, "the agent refused twice")
        assert agent.poll() is None, "the agent exited"
    finally:
        stop(agent)
    assert not errors_in_agent_log(tmp_path)


# ------------------------------------------------------------- embedded broker (amqtt)


def meshmon_passwd(file: Path, user: str, password: str,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`meshmon passwd FILE USER` with the password on stdin."""
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert cli.main(["passwd", str(file), user]) == 0


async def test_embedded_broker_with_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    passwd = tmp_path / "passwd"
    for user in ("collector", NODE):
        meshmon_passwd(passwd, user, PASSWORDS[user], monkeypatch)
    assert passwd.stat().st_mode & 0o077 == 0
    assert [line.split(":", 1)[0] for line in passwd.read_text().splitlines()] == [
        "collector", NODE]
    config = collector_config(tmp_path, None, mqtt={
        "username": "collector", "password": PASSWORDS["collector"], "client_id": "collector",
        "embedded": {"port": 0, "password_file": str(passwd)}})
    # the collector logs in to its own broker with [mqtt] username/password
    service = await started(config)
    node = None
    try:
        assert service.broker is not None
        port = service.broker.port
        assert await connack(port, None, None, "anonymous") == "Not authorized"
        assert await connack(port, NODE, "wrong", "guesser") == "Not authorized"
        assert await connack(port, "nobody", "x", "guesser") == "Not authorized"
        # refused clients that reuse the collector's client id must not cut it off
        # (amqtt 0.12 deleted its subscriptions or took its connection over)
        assert await connack(port, None, None, "collector") == "Not authorized"
        assert await connack(port, "collector", "wrong", "collector") == "Not authorized"

        node, reason = await asyncio.to_thread(connect, port, NODE, PASSWORDS[NODE], "n")
        assert reason == "Success"
        await publish(node, f"meshmon/v1/node/{NODE}/report", report(NODE))

        async def arrived() -> bool:
            return (await node_json(service, NODE))["status"] == 200

        await eventually(arrived, 10, "the report published with credentials in the API")
        assert service.ingest is not None
        assert service.ingest.connects == 1 and service.ingest.connected.is_set()
    finally:
        if node is not None:
            node.disconnect()
            node.loop_stop()
        await service.stop()
    refused = warnings_from(caplog, "amqtt.broker", "refused MQTT client")
    assert len(refused) == 5, refused
    assert any("no username" in r for r in refused)
    assert not errors(caplog)


async def test_embedded_broker_refuses_to_start_with_a_mosquitto_password_file(
    tmp_path: Path
) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "collector", "pw"], check=True)
    service = Service(collector_config(tmp_path, None, mqtt={
        "username": "collector", "password": "pw",
        "embedded": {"port": 0, "password_file": str(passwd)}}))
    try:
        with pytest.raises(ConfigError) as raised:
            await service.start()
    finally:
        await service.stop()
    assert raised.value.errors[0][0] == "mqtt.embedded.password_file"
    assert f"meshmon passwd {passwd} collector" in raised.value.errors[0][1]


def test_embedded_broker_with_password_file_needs_the_collector_login(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"mqtt\.username and mqtt\.password"):
        collector_config(tmp_path, None, mqtt={"embedded": {"password_file": "/x"}})
