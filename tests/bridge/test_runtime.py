"""The bridge runtime over a real Mosquitto, with sources written in the test.

What a source learns becomes v1 messages that the collector's own models accept; info and
status go out only when they change; a failing or hanging source never stops the others;
the bridge's own status is retained, with a last will; reports wait (bounded) for a broker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from meshmon_bridge.config import BridgeMqttSettings
from meshmon_bridge.messages import OutMessage
from meshmon_bridge.publisher import MqttPublisher, PrintSink
from meshmon_bridge.runtime import Bridge
from meshmon_bridge.source import NodeUpdate, SourceError

from meshmon.model import wire
from tests import servers
from tests.agent.mqtt_helpers import Recorder
from tests.bridge.helpers import (
    PREFIX,
    decode,
    run_print,
    start_bridge,
    subscribed_recorder,
    write_config,
)

INFO = {"hostname": "hill-5-ap", "model": "LiteBeam 5AC", "firmware": "XW.v8.7.11",
        "macs": ["24:a4:3c:00:00:01"], "location": {"lat": 52.52, "lon": 13.4}, "tags": ["t"]}
LINK = {"peer_mac": "24:a4:3c:00:00:02", "iface": "ath0", "kind": "wifi", "signal_dbm": -61}


class ScriptedSource:
    """Answers each poll with the next of `rounds` (then the last again)."""

    kind = "test"

    def __init__(self, name: str, rounds: list[list[NodeUpdate]], interval_s: float = 0.05
                 ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._rounds = rounds
        self.polled = 0
        self.closed = False

    async def poll(self) -> list[NodeUpdate]:
        round_ = self._rounds[min(self.polled, len(self._rounds) - 1)]
        self.polled += 1
        return round_

    async def close(self) -> None:
        self.closed = True


class FailingSource(ScriptedSource):
    def __init__(self, name: str, fail: Callable[[], object]) -> None:
        super().__init__(name, [[]])
        self._fail = fail

    async def poll(self) -> list[NodeUpdate]:
        self.polled += 1
        await asyncio.sleep(0)
        self._fail()
        return []


class HangingSource(ScriptedSource):
    async def poll(self) -> list[NodeUpdate]:
        self.polled += 1
        await asyncio.sleep(3600)
        return []


def _raise_source_error() -> None:
    raise SourceError("192.0.2.9:161: no answer")


def _raise_bug() -> None:
    raise KeyError("a bug in a source")


async def test_updates_become_contract_messages_on_a_real_broker(
        mosquitto: servers.Server) -> None:
    rec = subscribed_recorder(mosquitto.port, f"{PREFIX}/#", f"{PREFIX}/probe")
    publisher = MqttPublisher(BridgeMqttSettings(port=mosquitto.port), "bridge-t", PREFIX)
    rounds = [
        [NodeUpdate("hill-5-ap", info=INFO, online=True,
                    report={"sys": {"uptime_s": 10}, "links": [LINK]})],
        [NodeUpdate("hill-5-ap", info=dict(INFO), online=True, report={"links": [LINK]}),
         NodeUpdate("10.0.0.7", online=True, report={"links": [LINK]})],
        [NodeUpdate("hill-5-ap", info={**INFO, "firmware": "XW.v8.7.12"}, online=False,
                    ts=1_700_000_000.0)],
    ]
    source = ScriptedSource("scripted", rounds, interval_s=30)
    bridge = Bridge("bridge-t", PREFIX, [source], publisher)
    publisher.start()
    try:
        # while disconnected only the latest retained message per topic would be kept
        assert await asyncio.to_thread(publisher.wait_connected, 10)
        for _ in rounds:
            assert await bridge.poll(source)
        assert await asyncio.to_thread(publisher.wait_idle, 10)
        rec.wait_for(lambda m: m.topic.endswith("/status") and m.payload["online"] is False
                     and "/node/" in m.topic, what="offline status")
    finally:
        await asyncio.to_thread(publisher.stop)
        rec.close()
    node = [m for m in rec.messages if "/node/" in m.topic]
    assert all(m.topic.startswith(f"{PREFIX}/v1/node/hill-5-ap/") for m in node)
    decoded = [decode(m) for m in node]
    infos = [d for d in decoded if isinstance(d, wire.Info)]
    statuses = [d for d in decoded if isinstance(d, wire.Status)]
    reports = [d for d in decoded if isinstance(d, wire.Report)]
    # info: first round and the firmware change; the unchanged second round sends none
    assert [i.firmware for i in infos] == ["XW.v8.7.11", "XW.v8.7.12"]
    assert all(i.source == wire.NodeSource(kind="test", via="bridge-t") for i in infos)
    assert infos[0].macs == ["24:a4:3c:00:00:01"] and infos[0].interval_s == 30
    assert [s.online for s in statuses] == [True, False]
    assert statuses[1].ts == 1_700_000_000.0  # the source's own time
    assert [(r.seq, r.interval_s) for r in reports] == [(0, 30), (1, 30)]
    assert reports[0].links[0].peer_mac == "24:a4:3c:00:00:02"
    assert reports[0].sys is not None and reports[0].sys.uptime_s == 10
    # what the broker kept: info and status retained, reports not
    late = Recorder(mosquitto.port, f"{PREFIX}/v1/#")
    try:
        late.wait_for(lambda m: m.topic.endswith("hill-5-ap/status"), what="retained status")
        late.wait_for(lambda m: m.topic.endswith("hill-5-ap/info"), what="retained info")
        bridge_off = late.wait_for(lambda m: "/bridge/" in m.topic, what="bridge status")
    finally:
        late.close()
    assert all(m.retain for m in late.messages)
    assert not any(m.topic.endswith("/report") for m in late.messages)
    status = decode(bridge_off)
    assert isinstance(status, wire.BridgeStatus)
    assert (status.bridge, status.online) == ("bridge-t", False) and status.ts
    # the address-like id was refused before it reached the broker
    assert bridge.builder.dropped["node_id"] == 1


async def test_failing_and_hanging_sources_never_stop_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("meshmon_bridge.runtime.poll_deadline_s", lambda s: 0.2)
    good = ScriptedSource("good", [[NodeUpdate("good-1", online=True, report={})]], 0.05)
    unreachable = FailingSource("unreachable", _raise_source_error)
    buggy = FailingSource("buggy", _raise_bug)
    hanging = HangingSource("hanging", [[]], interval_s=0.05)
    sink = _ListSink()
    bridge = Bridge("bridge-t", PREFIX, [good, unreachable, buggy, hanging], sink)
    stop = asyncio.Event()
    runner = asyncio.create_task(bridge.run(stop))
    started = time.monotonic()
    while hanging.polled < 2 and time.monotonic() - started < 10:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(runner, 5)
    await bridge.close()
    assert hanging.polled >= 2, "the hanging poll was not cancelled at its deadline"
    assert unreachable.polled >= 3 and buggy.polled >= 3
    reports = [m for m in sink.messages if m.topic.endswith("/report")]
    assert len(reports) >= 5
    assert [m.payload["seq"] for m in reports] == list(range(len(reports)))
    assert bridge.failures >= unreachable.polled + buggy.polled
    assert all(s.closed for s in (good, unreachable, buggy, hanging))


async def test_reports_wait_for_the_broker_bounded_then_in_order() -> None:
    port = servers.free_port()
    publisher = MqttPublisher(BridgeMqttSettings(port=port, queue_max=3), "bridge-q", PREFIX)
    publisher.start()
    server = None
    try:
        for seq in range(5):
            publisher.send(OutMessage(f"{PREFIX}/v1/node/q1/report", {"seq": seq}, False))
        publisher.send(OutMessage(f"{PREFIX}/v1/node/q1/info", {"hostname": "old"}, True))
        publisher.send(OutMessage(f"{PREFIX}/v1/node/q1/info", {"hostname": "new"}, True))
        assert (publisher.pending, publisher.dropped) == (3, 2)
        server = servers.start_mosquitto(port)
        rec = Recorder(port, f"{PREFIX}/v1/node/q1/#")
        try:
            # the publisher retries every second; the recorder subscribes meanwhile
            rec.wait_for(lambda m: m.topic.endswith("/report") and m.payload["seq"] == 4,
                         timeout=10)
            assert [m.payload["seq"] for m in rec.where("/report")] == [2, 3, 4]
            info = rec.wait_for(lambda m: m.topic.endswith("/info"), what="info")
            assert info.payload == {"hostname": "new"}
            assert await asyncio.to_thread(publisher.wait_idle, 5) and publisher.sent == 3
        finally:
            rec.close()
    finally:
        await asyncio.to_thread(publisher.stop)
        if server is not None:
            server.stop()


def test_bridge_status_clean_stop_and_last_will(mosquitto: servers.Server,
                                                tmp_path: Path) -> None:
    topic = f"{PREFIX}/v1/bridge/+/status"
    rec = Recorder(mosquitto.port, topic)
    clean = start_bridge(write_config(tmp_path / "a.toml", "bridge-a", mosquitto.port),
                         tmp_path / "a.log")
    killed = start_bridge(write_config(tmp_path / "b.toml", "bridge-b", mosquitto.port),
                          tmp_path / "b.log")
    try:
        for bid in ("bridge-a", "bridge-b"):
            rec.wait_for(lambda m, b=bid: m.payload["bridge"] == b and m.payload["online"],
                         timeout=20, what=f"{bid} online")
        clean.send_signal(signal.SIGTERM)
        assert clean.wait(10) == 0
        killed.kill()
        killed.wait(10)
        off_a = rec.wait_for(lambda m: m.payload["bridge"] == "bridge-a"
                             and not m.payload["online"], what="clean offline")
        off_b = rec.wait_for(lambda m: m.payload["bridge"] == "bridge-b"
                             and not m.payload["online"], what="last will")
    finally:
        for proc in (clean, killed):
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        rec.close()
    assert off_a.payload["ts"] > 0  # a clean stop says when
    assert off_b.payload == {"v": 1, "bridge": "bridge-b", "online": False}  # the will
    late = Recorder(mosquitto.port, topic)
    try:
        late.wait_for(lambda m: m.payload["bridge"] == "bridge-b", what="retained will")
        late.wait_for(lambda m: m.payload["bridge"] == "bridge-a", what="retained stop")
    finally:
        late.close()
    assert all(m.retain and not m.payload["online"] for m in late.messages)
    for m in late.messages:
        assert isinstance(decode(m), wire.BridgeStatus)


def test_once_print_needs_no_broker(tmp_path: Path) -> None:
    config = write_config(tmp_path / "b.toml", "bridge-p", servers.free_port())
    code, lines, _ = run_print(config)
    assert code == 0
    assert len(lines) == 1 and lines[0]["topic"] == f"{PREFIX}/v1/bridge/bridge-p/status"
    assert set(lines[0]) == {"topic", "payload"}
    assert isinstance(decode(lines[0]), wire.BridgeStatus)


def test_print_sink_writes_one_json_line_per_message() -> None:
    import io

    out = io.StringIO()
    sink = PrintSink(out)
    sink.send(OutMessage("meshmon/v1/node/n/report", {"v": 1, "hostname": "Zürich"}, False))
    assert json.loads(out.getvalue()) == {
        "topic": "meshmon/v1/node/n/report", "payload": {"v": 1, "hostname": "Zürich"}}


class _ListSink:
    def __init__(self) -> None:
        self.messages: list[OutMessage] = []

    def send(self, message: OutMessage) -> None:
        self.messages.append(message)
