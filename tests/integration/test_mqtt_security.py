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
import re
import socket
import subprocess
import threading
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
from tests.collector_process import CollectorProcess, serve_config
from tests.integration import report_counting
from tests.integration.harness import (
    collector_config,
    eventually,
    get_json,
    get_text,
    metric,
    started,
)
from tests.integration.report_counting import ReportPublisher, standing_in_for, subscribed, until

NODE = "sec-node"  # an agent's MQTT user name is its node id (the ACL's %u)
ATTACKER = "other-node"
BRIDGE = "snmp-west"  # the docs' example bridge, allowed to publish for ap-3
PASSWORDS = {"collector": "collector-pw", "collector-control": "control-pw", NODE: "node-pw",
             ATTACKER: "other-pw", BRIDGE: "bridge-pw", "test-publisher": "pub-pw",
             **{f"{user}{part}": f"{user}{part}-pw" for user in ("writer-1", "writer-2",
                                                            "writer-old")
                for part in ("", "-control")}}
TEST_ACL = """
user test-publisher
topic write meshmon/v1/node/+/report

user writer-old
topic read meshmon/v1/node/+/report

user writer-old-control
topic read meshmon/v1/node/+/info
"""
"""beside the docs' ACL: a program publishing reports for the writers' tests, and a writer
login from before the writers' status topic"""
DOCS = Path(__file__).resolve().parents[2] / "docs"


def docs_acl() -> str:
    """The Mosquitto ACL of docs/security.md (its two blocks: nodes + collector, a bridge):
    what is tested is what people copy."""
    section = (DOCS / "security.md").read_text().split("ACL (`/etc/mosquitto/acl`)", 1)[1]
    blocks = re.findall(r"```\n(.*?)```", section.split("## Embedded broker", 1)[0], re.S)
    assert len(blocks) == 2 and "pattern write" in blocks[0] and BRIDGE in blocks[1]
    return blocks[0] + "\n" + blocks[1]


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


def second_writer(acl: str) -> str:
    """The docs' blocks of writer-1 (and its control login) for writer-2."""
    blocks = [block for block in acl.split("\n\n") if block.startswith("user writer-1")]
    assert len(blocks) == 2, blocks
    return "\n\n" + "\n\n".join(b.replace("writer-1", "writer-2") for b in blocks) + "\n"


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
    acl.write_text(docs_acl() + TEST_ACL + second_writer(docs_acl()))
    # no `listener` line: the TLS settings apply to start_mosquitto's own listener, so
    # nothing on this broker speaks plain MQTT; the later allow_anonymous wins
    server = servers.start_mosquitto(extra_conf=(
        f"cafile {pki['ca']}\ncertfile {pki['cert']}\nkeyfile {pki['key']}\n"
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        "use_username_as_clientid true\n"
        "log_type all\n"))  # denied PUBLISHes are logged at debug
    yield server
    server.stop()


def connect(port: int, user: str | None, password: str | None, client_id: str,
            ca: Path | None = None, will: str | None = None,
            client: paho.Client | None = None) -> tuple[paho.Client, str]:
    """The broker's CONNACK reason for one attempt, and the client: its network thread
    runs if the broker accepted it (no thread otherwise, so nothing retries). `will`: a
    last will topic (retained, an offline status)."""
    client = client or paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv311)
    if user is not None:
        client.username_pw_set(user, password)
    if will is not None:
        node = will.split("/")[-2]
        client.will_set(will, json.dumps({"v": 1, "node": node, "online": False}), 1, True)
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
                  ca: Path | None = None, will: str | None = None) -> str:
    """The CONNACK reason for one connection attempt (the client is closed again)."""
    client, reason = await asyncio.to_thread(connect, port, user, password, client_id, ca,
                                             will)
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
    # use_username_as_clientid: the control connection (status, info) needs a login of its own
    return Service(collector_config(tmp, port, mqtt={
        "tls": True, "ca_file": str(ca), "username": "collector", "password": password,
        "control_username": "collector-control",
        "control_password": PASSWORDS["collector-control"]}))


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
        assert f"as {NODE} (p2, c1, k30, u'{NODE}')" in log  # use_username_as_clientid
        assert "u'collector')" in log
    finally:
        stop(agent)
        await service.stop()
    assert not errors_in_agent_log(tmp_path)


def errors_in_agent_log(tmp_path: Path) -> list[str]:
    text = (tmp_path / f"agent-{NODE}.log").read_text()
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


class Probe:
    """A logged-in paho client that records what it receives and its SUBACK codes."""

    def __init__(self, port: int, user: str, ca: Path | None = None,
                 client_id: str = "") -> None:
        self.user = user
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"probe-{user}", protocol=paho.MQTTv311)
        self.received: list[tuple[str, bytes]] = []
        self.granted: dict[int, bool] = {}
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = lambda _c, _u, mid, codes, _p: self.granted.update(
            {mid: not codes[0].is_failure})
        self.port, self.ca = port, ca

    async def connect(self, will: str | None = None) -> str:
        _, reason = await asyncio.to_thread(
            connect, self.port, self.user, PASSWORDS[self.user], "", self.ca, will, self.client)
        return reason

    async def subscribe(self, topic: str) -> bool:
        """Whether the broker granted the subscription."""
        _, mid = self.client.subscribe(topic, 1)

        async def answered() -> bool:
            return mid in self.granted

        await eventually(answered, 5, f"SUBACK for {topic}")
        return self.granted[mid]

    async def send(self, topic: str, payload: dict[str, object], retain: bool = False) -> None:
        info = self.client.publish(topic, json.dumps(payload), qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)

    def cut(self) -> None:
        """The connection dies without DISCONNECT: the broker publishes the will."""
        self.client._thread_terminate = True
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def info(node: str, hostname: str) -> dict[str, object]:
    return {"v": 1, "node": node, "hostname": hostname}


async def spoofing_changes_nothing(service: Service, port: int, ca: Path | None,
                                   refuses_at_once: bool) -> None:
    """ATTACKER tries to be NODE on every topic: nothing reaches the collector or NODE.
    `refuses_at_once`: the broker refuses a CONNECT whose will is forbidden and answers a
    forbidden SUBSCRIBE with 0x80 (meshmon's amqtt does); Mosquitto 2.0.11 accepts both,
    then never sends that will and delivers nothing — which is checked either way."""
    base, mine = f"meshmon/v1/node/{NODE}", f"meshmon/v1/node/{ATTACKER}"
    victim, attacker = Probe(port, NODE, ca), Probe(port, ATTACKER, ca)
    try:
        assert await victim.connect(will=f"{base}/status") == "Success"
        assert await victim.subscribe(f"{base}/cmd")
        await victim.send(f"{base}/info", info(NODE, "the-real-one"), retain=True)
        await victim.send(f"{base}/report", report(NODE))

        async def victim_known() -> bool:
            got = await node_json(service, NODE)
            return got["status"] == 200 and got["body"]["hostname"] == "the-real-one"

        await eventually(victim_known, 10, "the victim's own info in the API")
        # the victim's client id with the attacker's login: refused, or (Mosquitto with
        # use_username_as_clientid) the attacker's own id; the victim stays connected
        hijack = Probe(port, ATTACKER, ca, client_id=f"probe-{NODE}")
        reason = await hijack.connect()
        assert reason == ("Not authorized" if refuses_at_once else "Success")
        if reason == "Success":
            hijack.close()
        # a last will for someone else: refused at CONNECT, or never sent
        will_spoofer = Probe(port, ATTACKER, ca)
        reason = await will_spoofer.connect(will=f"{base}/status")
        assert reason == ("Not authorized" if refuses_at_once else "Success")
        if reason == "Success":
            will_spoofer.cut()
            await asyncio.sleep(0.5)
            will_spoofer.client.loop_stop()
        assert await attacker.connect(will=f"{mine}/status") == "Success"
        for topic in (f"{base}/cmd", f"{base}/#", "meshmon/v1/node/+/report"):
            assert await attacker.subscribe(topic) is not refuses_at_once, topic
        await attacker.send(f"{base}/report", {**report(NODE, 999), "sys": {"uptime_s": 4242}})
        await attacker.send(f"{base}/info", info(NODE, "spoofed"), retain=True)
        await attacker.send(f"{base}/status", {"v": 1, "node": NODE, "online": False},
                            retain=True)
        await attacker.send(f"{base}/cmd", {"cmd": "fast", "interval_s": 1, "duration_s": 60})
        await attacker.send(f"{mine}/report", report(ATTACKER))

        async def attacker_report_arrived() -> bool:
            return (await node_json(service, ATTACKER))["status"] == 200

        # one client, one broker, one subscriber: the spoofed messages would have come first
        await eventually(attacker_report_arrived, 10, "the attacker's own report")
        body = (await node_json(service, NODE))["body"]
        assert (body["hostname"], body["online"]) == ("the-real-one", True)
        assert body["sys"]["uptime_s"] == 100
        # the collector's own command reaches the victim, and only the victim
        service.send_command(NODE, b'{"cmd":"fast","interval_s":1,"duration_s":5}')

        async def command_arrived() -> bool:
            return bool(victim.received)

        await eventually(command_arrived, 5, "the collector's command at the victim")
        await asyncio.sleep(0.3)
        assert victim.received == [(f"{base}/cmd", b'{"cmd":"fast","interval_s":1,"duration_s":5}')]
        assert attacker.received == []
        # the attacker's connection dies: its own will is published, not the victim's
        attacker.cut()

        async def attacker_offline() -> bool:
            return (await node_json(service, ATTACKER))["body"]["online"] is False

        await eventually(attacker_offline, 10, "the attacker's own will")
        assert (await node_json(service, NODE))["body"]["online"] is True
    finally:
        victim.close()
        attacker.client.loop_stop()


async def bridge_publishes_only_its_nodes(service: Service, port: int,
                                          ca: Path | None) -> None:
    """The docs' bridge may publish ap-3 and its own status, not NODE or another bridge."""
    bridge = Probe(port, BRIDGE, ca)
    try:
        assert await bridge.connect(will=f"meshmon/v1/bridge/{BRIDGE}/status") == "Success"
        await bridge.send(f"meshmon/v1/node/{NODE}/info", info(NODE, "bridged-over"))
        await bridge.send("meshmon/v1/node/ap-3/report", report("ap-3"))

        async def ap3_arrived() -> bool:
            return (await node_json(service, "ap-3"))["status"] == 200

        await eventually(ap3_arrived, 10, "the bridge's own node")
        assert (await node_json(service, NODE))["body"]["hostname"] != "bridged-over"
    finally:
        bridge.close()


async def test_mosquitto_acl_of_the_docs_refuses_every_spoofing_attempt(
    tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server
) -> None:
    service = tls_collector(tmp_path, secure_mosquitto.port, pki["ca"], PASSWORDS["collector"])
    await service.start()
    try:
        assert service.ingest is not None
        await asyncio.wait_for(service.ingest.connected.wait(), 10)
        await spoofing_changes_nothing(service, secure_mosquitto.port, pki["ca"],
                                       refuses_at_once=False)
        await bridge_publishes_only_its_nodes(service, secure_mosquitto.port, pki["ca"])
        log = secure_mosquitto.log()
        assert f"Denied PUBLISH from {ATTACKER}" in log
        assert f"Denied PUBLISH from {BRIDGE}" in log
    finally:
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
        refusals = warnings_from(caplog, "meshmon.ingest.mqtt_client", "refused the connection")
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
            return bool(warnings_from(caplog, "meshmon.ingest.mqtt_client", "TLS connection"))

        await eventually(tls_failure_logged, 10, "a warning about the failed TLS handshake")
        await asyncio.sleep(1.5)  # more attempts, same error: not repeated
        failures = warnings_from(caplog, "meshmon.ingest.mqtt_client", "TLS connection")
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


def meshmon_cli(args: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> str:
    """`meshmon ARGS` with `stdin`; its standard output."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    assert cli.main(args) == 0
    return capsys.readouterr().out


async def test_embedded_broker_holds_each_user_to_its_own_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    passwd = str(tmp_path / "passwd")
    for user, extra in (("collector", ["--role", "collector"]), (NODE, []), (ATTACKER, []),
                        (BRIDGE, ["--role", "bridge", "--nodes", "ap-*,gw-?"])):
        meshmon_cli(["passwd", passwd, user, *extra], PASSWORDS[user] + "\n", monkeypatch,
                    capsys)
    # many routers at once: generated passwords, printed for whoever installs them
    printed = meshmon_cli(["passwd", passwd, "--generate", "agent-1", "--from", "-"],
                          "# the new roofs\nagent-2\n", monkeypatch, capsys)
    generated = dict(line.split(" ", 1) for line in printed.splitlines())
    assert sorted(generated) == ["agent-1", "agent-2"]
    assert all(len(pw) >= 20 for pw in generated.values())
    config = collector_config(tmp_path, None, mqtt={
        "username": "collector", "password": PASSWORDS["collector"], "client_id": "collector",
        "embedded": {"port": 0, "password_file": passwd}})
    service = await started(config)
    agent = None
    try:
        assert service.broker is not None
        port = service.broker.port
        await spoofing_changes_nothing(service, port, None, refuses_at_once=True)
        await bridge_publishes_only_its_nodes(service, port, None)
        assert await connack(port, BRIDGE, PASSWORDS[BRIDGE], "b2", None,
                             will="meshmon/v1/bridge/other-bridge/status") == "Not authorized"
        bridge = Probe(port, BRIDGE)
        assert await bridge.connect() == "Success"
        assert await bridge.subscribe("meshmon/v1/node/ap-3/cmd")
        assert not await bridge.subscribe("meshmon/v1/node/+/cmd")
        bridge.close()
        # a real agent, provisioned with its generated password, works end to end
        agent = start_agent(tmp_path, port, "agent-1", 2.0, username="agent-1",
                            password=generated["agent-1"])

        async def reporting() -> bool:
            state = service.topology.nodes.get("agent-1")
            return state is not None and state.last_report is not None

        await eventually(reporting, 15, "the agent's report")
        service.send_command("agent-1", b'{"cmd":"fast","interval_s":0.5,"duration_s":30}')

        async def fast() -> bool:
            return service.topology.nodes["agent-1"].interval_s == 0.5

        await eventually(fast, 10, "the agent in fast mode (its own cmd reached it)")
        metrics = await get_text(f"{service.http_url}/metrics")
        assert metric(metrics, "meshmon_broker_denied_total", action="publish") >= 6
        assert metric(metrics, "meshmon_broker_denied_total", action="subscribe") == 4
    finally:
        if agent is not None:
            stop(agent)
        await service.stop()
    denied = warnings_from(caplog, "meshmon.ingest.broker", "may not publish to")
    # said once a minute per user: the will, then four spoofed messages, are one line
    assert denied == [
        f"MQTT user '{ATTACKER}' (node) may not publish to meshmon/v1/node/{NODE}/status: "
        "refused (said once a minute)",
        f"MQTT user '{BRIDGE}' (bridge) may not publish to meshmon/v1/node/{NODE}/info: "
        "refused (said once a minute)"]
    started_line = [r.getMessage() for r in caplog.records if "embedded MQTT broker" in
                    r.getMessage()]
    assert started_line[0].endswith(
        "6 user(s) from " + passwd + " (1 collector, 4 nodes, 1 bridge), each held to its "
        "own topics (per-node ACL); anonymous clients refused")
    assert not errors(caplog)


# --------------------------------------------------------------------- Mosquitto, writers

WRITERS_DB = "secure_writers"


def secure_writer(tmp: Path, port: int, ca: Path, login: str,
                  influx: servers.Server, group: str) -> CollectorProcess:
    """`meshmon serve --role writer` on the TLS broker with its two logins (the docs'), in
    share group `group` (each test its own: a session the last writer kept on this
    module's broker would take its turns)."""
    config = serve_config(
        tmp / login, port, servers.free_port(),
        roles={"share_group": group},
        influxdb={"enabled": True, "api": "v1", "url": influx.url, "database": WRITERS_DB,
                  "flush_interval_s": 0.2},
        mqtt={"tls": True, "ca_file": str(ca), "client_id": login, "username": login,
              "password": PASSWORDS[login], "control_username": f"{login}-control",
              "control_password": PASSWORDS[f"{login}-control"]})
    return CollectorProcess(tmp / login, config, role="writer")


def secure_publisher(port: int, ca: Path, t0: float) -> ReportPublisher:
    def setup(client: paho.Client) -> None:
        client.username_pw_set("test-publisher", PASSWORDS["test-publisher"])
        client.tls_set(ca_certs=str(ca))
    return ReportPublisher(port, t0, "test-publisher", setup)


async def test_writers_on_the_docs_broker_notice_they_cannot_stand_in_and_lose_nothing(
        tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server,
        influxdb1: servers.Server) -> None:
    """use_username_as_clientid: a stand-in's client id becomes its own login, so it takes
    its own writer's session over. The writer notices once, stops trying, and goes on
    writing its share; the killed writer's share is stored when it is back."""
    servers.influx_query(influxdb1, WRITERS_DB, f"DROP DATABASE {WRITERS_DB}")
    servers.influx_query(influxdb1, WRITERS_DB, f"CREATE DATABASE {WRITERS_DB}")
    t0 = float(int(time.time()))
    port = secure_mosquitto.port
    w1, w2 = (secure_writer(tmp_path, port, pki["ca"], login, influxdb1, "secure-writers")
              for login in ("writer-1", "writer-2"))
    publisher: ReportPublisher | None = None

    def stored() -> list[tuple[str, int]]:
        return report_counting.stored(influxdb1, WRITERS_DB, t0)

    try:
        await asyncio.gather(*(asyncio.to_thread(w.start) for w in (w1, w2)))
        await until(lambda: subscribed([w1, w2]), 15, "writers subscribed")
        publisher = await asyncio.to_thread(secure_publisher, port, pki["ca"], t0)
        await asyncio.to_thread(publisher.publish, 20)
        await until(lambda: len(stored()) >= 400, 30, "the first 400 points")

        stream = threading.Thread(target=publisher.publish, args=(60, 300.0))
        stream.start()
        await asyncio.sleep(1.0)
        w2.kill()
        await asyncio.to_thread(stream.join)
        notice = "took this writer's own MQTT session over"
        await until(lambda: notice in w1.log(), 20, "writer-1 noticing")
        assert standing_in_for(w1) == []
        await until(lambda: json.loads(w1.get("/healthz")[1])["mqtt_connected"], 10,
                    "writer-1 connected again")
        await asyncio.sleep(4.0)  # it does not try again (one attempt, counted)
        assert "meshmon_writer_stand_ins_total 1" in w1.metrics()
        assert w1.log().count(notice) == 1

        await asyncio.to_thread(w2.start)
        await until(lambda: len(stored()) >= 1600, 30, "all 1,600 points")
        await asyncio.sleep(1.0)
        assert sorted(stored()) == sorted(publisher.sent), "each report exactly once"
        for writer in (w1, w2):
            assert not writer.problems(), writer.problems()
    finally:
        if publisher is not None:
            publisher.close()
        for writer in (w1, w2):
            await asyncio.to_thread(writer.stop)


async def test_a_writer_whose_login_may_not_publish_its_status_works_without_it(
        tmp_path: Path, pki: dict[str, Path], secure_mosquitto: servers.Server,
        influxdb1: servers.Server) -> None:
    """An ACL from before the writers' status topic: Mosquitto takes the writer's last
    will and its subscription to the writers' status (and never delivers either); the
    writer stores every report as before."""
    servers.influx_query(influxdb1, WRITERS_DB, f"DROP DATABASE {WRITERS_DB}")
    servers.influx_query(influxdb1, WRITERS_DB, f"CREATE DATABASE {WRITERS_DB}")
    t0 = float(int(time.time()))
    port = secure_mosquitto.port
    writer = secure_writer(tmp_path, port, pki["ca"], "writer-old", influxdb1, "old-writers")
    publisher: ReportPublisher | None = None
    try:
        await asyncio.to_thread(writer.start)
        await until(lambda: subscribed([writer]), 15, "writers subscribed")
        publisher = await asyncio.to_thread(secure_publisher, port, pki["ca"], t0)
        await asyncio.to_thread(publisher.publish, 5)
        await until(lambda: len(report_counting.stored(influxdb1, WRITERS_DB, t0)) >= 100, 30,
                    "100 points")
        assert sorted(report_counting.stored(influxdb1, WRITERS_DB, t0)) == sorted(
            publisher.sent)
        assert standing_in_for(writer) == []
        assert not writer.problems(), writer.problems()
    finally:
        if publisher is not None:
            publisher.close()
        await asyncio.to_thread(writer.stop)
