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
from meshmon_bridge.sources.snmp.device import SharedEngine, SnmpDevice, linux_kernel

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
ODD = ("odd-airmax", "odd-ltu", "odd-mikrotik", "odd-mimosa")
"""crafted from real recordings: values that mean "no reading", negative numbers sent as
unsigned, tables a profile's anchor promises but the device lacks (tests/data/README.md)"""


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One snmpsim: the wireless recordings 200 times over, the crafted ones, a v3 user."""
    data = tmp_path_factory.mktemp("snmpsim-data")
    names = {f"dev-{i:03d}": SMALL[i % len(SMALL)] for i in range(MANY)}
    snmpsim.recordings(LIBRENMS, data, names | {c: c for c in WIRELESS})
    snmpsim.recordings(DATA / "snmp", data, {c: c for c in ("wrongtyped", "truncated", *ODD)})
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


async def test_odd_values_never_crash_a_poll_and_are_left_out(simulator: int) -> None:
    """Zeros that mean "no reading", an unsigned-encoded negative signal, a sentinel ideal
    power, an invalid chain and missing tables: every device is polled, nothing false is sent."""
    polled = {}
    for community in ODD:
        dev = device(simulator, community=community)
        polled[community] = await poll_one(dev)
        assert dev.missed == 0, community
        polled[community]["out_of_range"] = dev.out_of_range

    airmax = polled["odd-airmax"]
    (radio,) = airmax["report"]["radios"]
    # frequency 0 and a Gauge32 4294967226 "signal" are no readings: left out and counted
    assert "freq_mhz" not in radio and "signal_dbm" not in radio
    assert (radio["txpower_dbm"], radio["noise_dbm"], radio["clients"]) == (26, -95, 0)
    assert airmax["report"]["links"] == [] and airmax["out_of_range"] == 2

    (link,) = polled["odd-ltu"]["report"]["links"]
    # the firmware's -99 "ideal" power and the 0 % levels measured against it are left out
    assert link["chains_dbm"] == [-60, -61] and link["rx_capacity_mbps"] == 444.8
    assert "ideal_chains_dbm" not in link and "chain_levels_pct" not in link

    mikrotik = polled["odd-mikrotik"]["report"]
    radios = {r["iface"]: r for r in mikrotik["radios"]}
    # a virtual AP (frequency 0): its zeros are no readings; no interface-name table: IF-MIB's
    assert radios["wlan1"] == {"iface": "wlan1", "ssid": "odd ap", "clients": 0}
    assert radios["wlan60-1"] == {"iface": "wlan60-1", "ssid": "odd 60g", "freq_mhz": 58320}
    # a registration with only zeros is a peer without metrics; a disconnected 60 GHz peer none
    (peer,) = mikrotik["links"]
    assert peer == {"peer_mac": "4c:5e:0c:11:22:33", "iface": "wlan1", "kind": "wifi"}
    # LTE: text for RSRQ and -200 dBm RSRP are left out, SINR is kept
    assert radios["lte1"] == {"iface": "lte1", "sinr_db": 12}
    assert polled["odd-mikrotik"]["out_of_range"] == 1

    (ptp,) = polled["odd-mimosa"]["report"]["radios"]
    # chain 2 reads the MIB's "not valid" -100 dBm; chain 3 has no SNR: the per-chain lists
    # hold the valid chains, and one that would not line up is left out
    assert ptp["chains_dbm"] == [-58.9, -59.2] and "chains_snr_db" not in ptp
    assert ptp["chains_freq_mhz"] == [10700, 11200]
    assert ptp["chains_noise_dbm"] == [-85.4, -89.9]
    assert "streams_tx_mbps" not in ptp and "tx_error_pct" not in ptp


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


@pytest.mark.parametrize(("descr", "kernel"), [
    ("Linux 2.6.32.71 #1 Fri Jan 24 08:44:01 UTC 2020 mips", "2.6.32.71"),  # airOS: no host
    ("Linux PRIVATE 3.14.65 #1 SMP PREEMPT RT Wed May 13 13:37:04 UTC 2020 armv7l", "3.14.65"),
    ("Linux server 3.10.0-693.5.2.el7.x86_64 #1 SMP Fri Oct 20 20:32:50 UTC 2017 x86_64",
     "3.10.0-693.5.2.el7.x86_64"),
    ("Linux", None), ("Switch", None), ("RouterOS RB912R-2nD", None)])
def test_the_kernel_release_of_a_linux_sysdescr(descr: str, kernel: str | None) -> None:
    """The firmware of a device no vendor profile names (sysDescr of real recordings)."""
    assert linux_kernel(descr) == kernel


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
