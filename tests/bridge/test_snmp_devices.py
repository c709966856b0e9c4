"""SNMP devices that are hard to poll, over real UDP on loopback: SNMPv3 authPriv, a device
that never answers, one that answers garbage, wrong-typed and truncated recordings, 200
devices in one bridge, and a bridge polling over real Mosquitto that is SIGKILLed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from meshmon_bridge.messages import OutMessage
from meshmon_bridge.runtime import Bridge
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.snmp.config import SnmpTable
from meshmon_bridge.sources.snmp.counters import WRAP_32, CounterWidener
from meshmon_bridge.sources.snmp.device import SharedEngine, SnmpDevice

from meshmon.model import wire
from tests import servers, snmpsim
from tests.agent.mqtt_helpers import Recorder
from tests.bridge.helpers import PREFIX, decode, start_bridge, write_config

DATA = Path(__file__).parents[1] / "data"
LIBRENMS = DATA / "librenms" / "snmprec"
WIRELESS = ["airos", "airos-af", "airos-af-ltu", "mimosa", "openwrt", "routeros",
            "routeros_ltap-mini", "routeros_station", "unifi"]
SMALL = ["airos", "airos-af", "mimosa", "routeros_ltap-mini", "routeros_station", "unifi"]
"""the recordings the 200 devices are made of (snmpsim indexes every file at start)"""
V3 = {"user": "meshmon", "auth_protocol": "sha", "auth_key": "auth-secret-1",
      "priv_protocol": "aes", "priv_key": "priv-secret-1"}
MANY = 200


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One snmpsim: the wireless recordings 200 times over, the crafted ones, a v3 user."""
    data = tmp_path_factory.mktemp("snmpsim-data")
    names = {f"dev-{i:03d}": SMALL[i % len(SMALL)] for i in range(MANY)}
    snmpsim.recordings(LIBRENMS, data, names | {c: c for c in WIRELESS})
    snmpsim.recordings(DATA / "snmp", data, {"wrongtyped": "wrongtyped",
                                             "truncated": "truncated"})
    v3 = [f"--v3-user={V3['user']}", "--v3-auth-proto=SHA", f"--v3-auth-key={V3['auth_key']}",
          "--v3-priv-proto=AES", f"--v3-priv-key={V3['priv_key']}"]
    server = snmpsim.start_snmpsim(data, "airos", v3_args=v3)
    yield server.port
    server.stop()


def device(port: int, **options: object) -> SnmpDevice:
    table = SnmpTable.model_validate({"host": "127.0.0.1", "port": port, "node": "dev-x",
                                      "timeout_s": 1, "retries": 0, **options})
    return SnmpDevice(table, SharedEngine(8))


async def poll_one(dev: SnmpDevice) -> dict:
    try:
        (update,) = await dev.poll()
    finally:
        await dev.close()
    assert update.report is not None and update.info is not None
    for kind, payload in (("info", update.info), ("report", update.report)):
        full = {"v": 1, "node": "dev-x", "ts": 1.0, "seq": 0, "interval_s": 30, **payload}
        decode({"topic": f"{PREFIX}/v1/node/dev-x/{kind}", "payload": full})
    return {"info": update.info, "report": update.report}


async def test_snmpv3_auth_priv(simulator: int) -> None:
    got = await poll_one(device(simulator, v3={**V3, "context": "airos"}))
    (radio,) = got["report"]["radios"]
    assert (radio["freq_mhz"], radio["ccq_pct"], radio["clients"]) == (5745, 92, 22)
    wrong = device(simulator, v3={**V3, "priv_key": "not-the-key", "context": "airos"})
    with pytest.raises(SourceError):
        await wrong.poll()
    await wrong.close()


async def test_a_silent_device_goes_offline_after_n_missed_polls() -> None:
    port = snmpsim.free_udp_port()  # nothing answers there
    dev = device(port, timeout_s=0.3, retries=1, offline_after=3)
    sink = _ListSink()
    bridge = Bridge("bridge-t", PREFIX, [dev], sink)
    results = []
    for turn in range(4):
        started = time.monotonic()
        results.append(await bridge.poll(dev))
        # timeout × (retries + 1) = 0.6 s and no more: a silent device never stalls the
        # poller (the first poll also starts the SNMP engine, which loads its MIBs)
        assert time.monotonic() - started < (10 if turn == 0 else 1.5)
    await bridge.close()
    assert results == [False, False, True, True]
    statuses = [m.payload for m in sink.messages if m.topic.endswith("/status")]
    assert [s["online"] for s in statuses] == [False]  # once, when it went offline
    assert dev.missed == 4


async def test_a_device_answering_garbage_counts_as_missed() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Garbage, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    dev = device(port, timeout_s=0.3, retries=0, offline_after=2)
    try:
        with pytest.raises(SourceError, match="missed 1/2"):
            await dev.poll()
        (update,) = await dev.poll()
        assert update.online is False and update.report is None
    finally:
        await dev.close()
        transport.close()


async def test_wrong_typed_values_are_left_out_never_sent(simulator: int) -> None:
    got = await poll_one(device(simulator, community="wrongtyped"))
    info, report = got["info"], got["report"]
    assert info["hostname"] == "<img src=x onerror=alert(1)>"  # text stays text
    assert info["macs"] == []  # a 3-byte and an integer ifPhysAddress are no MACs
    (radio,) = report["radios"]
    # text where numbers belong, an address as distance, -5 bit/s, 250 % quality: left out
    for key in ("freq_mhz", "distance_m", "signal_dbm", "clients", "tx_rate_mbps",
                "quality_pct"):
        assert key not in radio, key
    assert (radio["txpower_dbm"], radio["ccq_pct"], radio["noise_dbm"]) == (27, 92, -103)
    assert report["links"] == []  # an integer is no AP MAC
    by_name = {i["name"]: i for i in report["ifaces"]}
    assert "rx_bytes" not in by_name["ath0"] and "up" not in by_name["ath0"]
    assert (by_name["eth0"]["rx_bytes"], by_name["eth0"]["up"]) == (1000, True)
    assert "uptime_s" not in report["sys"]


async def test_a_truncated_table_gives_what_is_there(simulator: int) -> None:
    report = (await poll_one(device(simulator, community="truncated")))["report"]
    (link,) = report["links"]
    assert link["peer_mac"] == "18:e8:29:1e:30:de"
    assert (link["tx_capacity_mbps"], link["freq_mhz"]) == (63.488, 5840)
    # one chain of two is no chain list; the row stops before the distance
    assert "chains_dbm" not in link and "distance_m" not in link


async def test_two_hundred_devices_in_one_bridge(simulator: int) -> None:
    # the 200 "devices" are one snmpsim process (~0.1 s per GETBULK here, more under load):
    # unlike 200 real radios they queue behind each other, so few polls at once and a
    # timeout for that queue, or the bridge's default 64 polls at once would time out
    shared = SharedEngine(max_concurrent=8)
    tables = [SnmpTable(host="127.0.0.1", port=simulator, community=f"dev-{i:03d}",
                        node=f"dev-{i:03d}", timeout_s=5, retries=2) for i in range(MANY)]
    sink = _ListSink()
    bridge = Bridge("bridge-many", PREFIX, [SnmpDevice(t, shared) for t in tables], sink)
    try:
        assert await bridge.run_once()
    finally:
        await bridge.close()
    reports = {m.topic.split("/")[3]: m.payload for m in sink.messages
               if m.topic.endswith("/report")}
    assert sorted(reports) == [f"dev-{i:03d}" for i in range(MANY)]
    for node, report in reports.items():
        decode({"topic": f"{PREFIX}/v1/node/{node}/report", "payload": report})
        assert report["radios"], node  # every one is a wireless device


def test_counter32_wraps_are_widened_and_reboots_restart() -> None:
    widener = CounterWidener()
    key = ("ath0", "rx_bytes")
    assert widener.widen(key, WRAP_32 - 100, 32) == WRAP_32 - 100
    assert widener.widen(key, 50, 32) == WRAP_32 + 50  # wrapped: still growing
    assert widener.widen(key, 70, 32) == WRAP_32 + 70
    assert widener.widen(("ath0", "tx_bytes"), 5, 64) == 5  # ifHC*: as read
    widener.reset()  # the device rebooted
    assert widener.widen(key, 10, 32) == 10
    assert widener.wraps == 1


def test_bridge_over_mosquitto_then_sigkill(simulator: int, mosquitto: servers.Server,
                                            tmp_path: Path) -> None:
    body = "".join(f'[[snmp]]\nhost = "127.0.0.1"\nport = {simulator}\ncommunity = "{c}"\n'
                   f'node = "{n}"\ninterval_s = 1\n'
                   for c, n in (("airos", "hill-5-ap"), ("routeros", "roof-router")))
    config = write_config(tmp_path / "bridge.toml", "bridge-k", mosquitto.port, body)
    rec = Recorder(mosquitto.port, f"{PREFIX}/v1/#")
    proc = start_bridge(config, tmp_path / "bridge.log")
    try:
        for node in ("hill-5-ap", "roof-router"):
            rec.wait_for(lambda m, n=node: m.topic.endswith(f"/{n}/report")
                         and m.payload["seq"] >= 1, timeout=30, what=f"second report of {node}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        will = rec.wait_for(lambda m: "/bridge/" in m.topic and not m.payload["online"],
                            what="last will")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        rec.close()
    assert will.payload == {"v": 1, "bridge": "bridge-k", "online": False}
    infos = [decode(m) for m in rec.messages if m.topic.endswith("/info")]
    assert {i.node for i in infos} == {"hill-5-ap", "roof-router"}  # type: ignore[union-attr]
    assert all(isinstance(i, wire.Info) and i.source == wire.NodeSource(kind="snmp",
               via="bridge-k") for i in infos)
    late = Recorder(mosquitto.port, f"{PREFIX}/v1/+/+/status")
    try:
        late.wait_for(lambda m: m.payload.get("bridge") == "bridge-k", what="retained will")
        late.wait_for(lambda m: m.topic.endswith("/hill-5-ap/status"), what="node status")
    finally:
        late.close()
    retained = {m.topic: m.payload["online"] for m in late.messages}
    # the bridge is gone; its devices still answered when last polled (the collector marks
    # them unmonitored from the bridge status, not offline)
    assert retained[f"{PREFIX}/v1/bridge/bridge-k/status"] is False
    assert retained[f"{PREFIX}/v1/node/hill-5-ap/status"] is True
    log = (tmp_path / "bridge.log").read_text()
    assert "Traceback" not in log, log


class _Garbage(asyncio.DatagramProtocol):
    """Answers every datagram with a truncated BER sequence."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(b"\x30\x82\x01\xff\x02\x01" + data[:7], addr)  # type: ignore[attr-defined]


class _ListSink:
    def __init__(self) -> None:
        self.messages: list[OutMessage] = []

    def send(self, message: OutMessage) -> None:
        self.messages.append(message)
