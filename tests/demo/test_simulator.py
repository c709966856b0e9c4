"""The simulator against a real Mosquitto: retained status/info, valid reports, last wills."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from meshmon.demo.network import load_network
from meshmon.demo.simulator import Simulator, phy_rate_mbps, synthetic_mac
from meshmon.model.wire import Info, Report, Status, decode
from tests.servers import Server

NODES = 40  # includes a VPN server, so wifi, batman and vpn links all appear


class Recorder:
    """A paho subscriber that keeps every decoded message per (node, kind)."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.messages: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-test-recorder")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("meshmon/v1/node/+/+", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        model = decode("meshmon", msg.topic, bytes(msg.payload))  # raises on a contract violation
        node, kind = msg.topic.split("/")[3:5]
        with self.lock:
            self.messages[(node, kind)].append(model)

    def get(self, node: str, kind: str) -> list[Any]:
        with self.lock:
            return list(self.messages.get((node, kind), []))

    def nodes_with(self, kind: str) -> set[str]:
        with self.lock:
            return {n for (n, k), v in self.messages.items() if k == kind and v}

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def recorder(mosquitto: Server) -> Iterator[Recorder]:
    rec = Recorder(mosquitto.port)
    yield rec
    rec.stop()


async def wait_for(pred: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def test_simulated_network_speaks_the_contract(mosquitto: Server, recorder: Recorder):
    net = load_network(NODES)
    ids = {n.id for n in net.nodes}
    sim = Simulator(net, "127.0.0.1", mosquitto.port, interval_s=1.0, seed=7,
                    outages_per_node_h=0)
    sim.start()
    task = asyncio.create_task(sim.run(None))
    try:
        # the whole network within one interval (plus connect time)
        await wait_for(lambda: recorder.nodes_with("report") >= ids, timeout=5)
        assert recorder.nodes_with("status") >= ids
        assert recorder.nodes_with("info") >= ids
        await asyncio.sleep(2.5)  # a few reports each, with drift
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sim.stop()
    await wait_for(lambda: all(not recorder.get(n, "status")[-1].online for n in ids), 5)

    macs: dict[str, str] = {}
    for node in net.nodes:
        info: Info = recorder.get(node.id, "info")[-1]
        assert info.hostname == node.hostname
        assert info.gateway == node.gateway
        assert info.macs and all(m.startswith("02:") for m in info.macs)
        if node.location is not None:
            assert info.location is not None and info.location.lat == node.location[0]
        macs.update({m: node.id for m in info.macs})
        assert recorder.get(node.id, "status")[0].online is True

    by_peer = by_mac = 0
    kinds: set[str] = set()
    signals: dict[tuple[str, str, str], set[float]] = defaultdict(set)
    for node in net.nodes:
        reports: list[Report] = recorder.get(node.id, "report")
        assert len(reports) >= 3, node.id
        assert [r.seq for r in reports] == list(range(1, len(reports) + 1))
        neighbours = {lk.target if lk.source == node.id else lk.source
                      for lk in net.links if node.id in (lk.source, lk.target)}
        for report in reports:
            assert report.interval_s == 1.0
            assert report.sys is not None and report.sys.uptime_s is not None
            for link in report.links:
                kinds.add(link.kind)
                peer = link.peer if link.peer is not None else macs[str(link.peer_mac)]
                assert peer in ids and peer in neighbours
                by_peer += link.peer is not None
                by_mac += link.peer is None
                if link.kind == "wifi":
                    assert link.signal_dbm is not None and link.snr_db is not None
                    assert link.tx_rate_mbps is not None and link.expected_tput_mbps is not None
                    assert link.noise_dbm is not None and link.chains_dbm
                    signals[(node.id, peer, link.iface)].add(link.signal_dbm)
                else:
                    assert link.tq is not None and 0 <= link.tq <= 255
    assert kinds == {"wifi", "batman", "vpn"}
    assert 0.3 < by_mac / (by_mac + by_peer) < 0.7
    assert any(len(v) > 1 for v in signals.values()), "values should drift"


async def test_a_node_that_loses_power_sends_its_last_will(mosquitto: Server,
                                                           recorder: Recorder):
    net = load_network(30)
    sim = Simulator(net, "127.0.0.1", mosquitto.port, interval_s=1.0, outages_per_node_h=0)
    sim.start()
    task = asyncio.create_task(sim.run(None))
    try:
        ids = {n.id for n in net.nodes}
        await wait_for(lambda: recorder.nodes_with("report") >= ids, timeout=5)
        victim = next(n.id for n in net.nodes if not n.gateway)
        await sim.take_down(victim, duration_s=1.5)

        def went_offline() -> bool:
            statuses: list[Status] = recorder.get(victim, "status")
            return any(not s.online for s in statuses)

        await wait_for(went_offline, timeout=5)
        offline = next(s for s in recorder.get(victim, "status") if not s.online)
        assert offline.ts is None  # the broker's copy of the will, not a clean stop
        # neighbours stop seeing it while it is down ...
        assert victim not in sim.publishers
        # ... and it comes back as a rebooted agent: online again, seq from 1
        await wait_for(lambda: recorder.get(victim, "status")[-1].online, timeout=5)
        await wait_for(lambda: recorder.get(victim, "report")[-1].seq == 1, timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sim.stop()


async def test_full_network_starts_and_stops_quickly(mosquitto: Server, recorder: Recorder):
    net = load_network()
    sim = Simulator(net, "127.0.0.1", mosquitto.port, interval_s=10.0, outages_per_node_h=0,
                    start_rate_per_s=500)
    t0 = time.monotonic()
    sim.start()
    task = asyncio.create_task(sim.run(None))
    try:
        ids = {n.id for n in net.nodes}
        await wait_for(lambda: recorder.nodes_with("report") >= ids, timeout=10)
        assert time.monotonic() - t0 < 10  # one interval
        assert threading.active_count() < 60  # no thread per agent
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        t1 = time.monotonic()
        sim.stop()
        assert time.monotonic() - t1 < 3
    await wait_for(lambda: all(not recorder.get(n, "status")[-1].online for n in ids), 10)


def test_helpers() -> None:
    assert synthetic_mac(1, "mesh0") == "02:6d:6d:00:01:01"
    assert json.dumps(phy_rate_mbps(40, 20)) == "130.0"
    assert phy_rate_mbps(0, 20) == 1.0
    assert phy_rate_mbps(40, 40) > phy_rate_mbps(40, 20)
