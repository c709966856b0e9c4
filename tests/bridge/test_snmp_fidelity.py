"""Every wireless value LibreNMS asserts for a recording appears in what the bridge publishes,
with the same value and meaning (only rounding allowed).

One snmpsim serves every recording of tests/data/librenms over real UDP on loopback for the
whole module; the bridge polls each device once (in-process for the table, and once as a
`meshmon-bridge --once --print` process). `MEANING` says, per LibreNMS sensor (OS, class,
type), which published field holds it and in which unit: that table is the documentation of
docs/snmp.md in test form. Sensors left out on purpose are in `LEFT_OUT`, with the reason.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from meshmon_bridge.messages import OutMessage
from meshmon_bridge.runtime import Bridge
from meshmon_bridge.sources.snmp.config import SnmpTable
from meshmon_bridge.sources.snmp.device import SharedEngine, SnmpDevice

from meshmon.model import wire
from tests import snmpsim
from tests.bridge.helpers import PREFIX, decode, print_tables

DATA = Path(__file__).parents[1] / "data" / "librenms"
RECORDINGS = sorted(p.stem for p in (DATA / "snmprec").glob("*.snmprec"))
EXPECTED = {p.stem: json.loads(p.read_text()) for p in (DATA / "expected").glob("*.json")}
GENERIC_SWITCH = "advantech_eki-7712g-4fp"
"""a plain managed switch (no LibreNMS JSON taken): the generic fallback's recording"""


def node_id(community: str) -> str:
    return "dev-" + community.replace("_", "-")


@dataclass(frozen=True)
class Meaning:
    """Where a LibreNMS sensor's value is published: in `radios` or `links` (or the
    report itself), which field, and the factor from our unit to LibreNMS' number."""

    where: str
    field: str
    factor: float = 1.0
    select: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None
    """optional: does this element fit the sensor (e.g. the radio named in its descr)"""


def _band(sensor: dict[str, Any], radio: dict[str, Any]) -> bool:
    """UniFi "Clients (ng)"/"Frequency (ng)"/"Tx Power (ng)": the band's radio entry."""
    descr = sensor["sensor_descr"]
    return descr.endswith(")") and radio["iface"] == descr.rsplit("(", 1)[1][:-1]


def _openwrt_iface(sensor: dict[str, Any], radio: dict[str, Any]) -> bool:
    # the extend name in the OID (`…-wlan0-min`) names the interface
    name = bytes(int(c) for c in json.loads(sensor["sensor_oids"])[0].split(".")[15:])
    return f"-{radio['iface']}".encode() in name


M = Meaning
KM, MBIT, KHZ = 0.001, 1e6, 1000.0
MEANING: dict[tuple[str, str, str], list[Meaning]] = {
    # Ubiquiti airMAX (UBNT-AirMAX-MIB): the wireless interface's own statistics
    ("airos", "frequency", "airos"): [M("radios", "freq_mhz")],
    ("airos", "capacity", "airos"): [M("radios", "capacity_pct")],
    ("airos", "ccq", "airos"): [M("radios", "ccq_pct")],
    ("airos", "clients", "airos"): [M("radios", "clients")],
    ("airos", "distance", "airos"): [M("radios", "distance_m", KM)],
    ("airos", "noise-floor", "airos"): [M("radios", "noise_dbm")],
    ("airos", "power", "airos-rx"): [M("radios", "signal_dbm")],
    ("airos", "power", "airos-tx"): [M("radios", "txpower_dbm")],
    ("airos", "quality", "airos"): [M("radios", "quality_pct")],
    ("airos", "rate", "airos-rx"): [M("radios", "rx_rate_mbps", MBIT)],
    ("airos", "rate", "airos-tx"): [M("radios", "tx_rate_mbps", MBIT)],
    ("airos", "rssi", "airos"): [M("radios", "rssi"), M("radios", "chains_rssi")],
    ("airos", "utilization", "airos"): [M("radios", "busy_pct")],
    # airFiber (UBNT-AirFIBER-MIB): tx/rxFrequency come in kHz, published in MHz
    ("airos-af", "distance", "airos-af"): [M("radios", "distance_m", KM)],
    ("airos-af", "frequency", "airos-af-tx"): [M("radios", "freq_mhz", KHZ)],
    ("airos-af", "frequency", "airos-af-rx"): [M("radios", "rx_freq_mhz", KHZ)],
    ("airos-af", "power", "airos-af-tx"): [M("radios", "txpower_dbm")],
    ("airos-af", "power", "airos-af-rx"): [M("radios", "chains_dbm")],
    ("airos-af", "rate", "airos-tx"): [M("radios", "tx_capacity_mbps", MBIT)],
    ("airos-af", "rate", "airos-rx"): [M("radios", "rx_capacity_mbps", MBIT)],
    # airFiber LTU (UBNT-AFLTU-MIB): per remote station
    ("airos-af-ltu", "distance", "airos-af-ltu"): [M("links", "distance_m", KM)],
    ("airos-af-ltu", "frequency", "airos-af-ltu"): [M("radios", "freq_mhz")],
    ("airos-af-ltu", "power", "airos-af-ltu-rx-chain-0"): [M("links", "chains_dbm")],
    ("airos-af-ltu", "power", "airos-af-ltu-rx-chain-1"): [M("links", "chains_dbm")],
    ("airos-af-ltu", "power", "airos-af-ltu-ideal-rx-chain-0"): [M("links", "ideal_chains_dbm")],
    ("airos-af-ltu", "power", "airos-af-ltu-ideal-rx-chain-1"): [M("links", "ideal_chains_dbm")],
    ("airos-af-ltu", "power", "airos-af-ltu-tx-eirp"): [M("radios", "txpower_dbm")],
    ("airos-af-ltu", "quality", "airos-af-ltu-level-rx-chain-0"): [
        M("links", "chain_levels_pct")],
    ("airos-af-ltu", "quality", "airos-af-ltu-level-rx-chain-1"): [
        M("links", "chain_levels_pct")],
    ("airos-af-ltu", "rate", "airos-af-ltu-tx"): [M("links", "tx_capacity_mbps", MBIT)],
    ("airos-af-ltu", "rate", "airos-af-ltu-rx"): [M("links", "rx_capacity_mbps", MBIT)],
    # 60 GHz (UI-AF60-MIB)
    ("airos-af60", "frequency", "airos-af60"): [M("radios", "freq_mhz")],
    ("airos-af60", "distance", "airos-af60"): [M("links", "distance_m", KM)],
    ("airos-af60", "rate", "airos-af60-TX"): [M("links", "tx_capacity_mbps", MBIT)],
    ("airos-af60", "rate", "airos-af60-RX"): [M("links", "rx_capacity_mbps", MBIT)],
    ("airos-af60", "rssi", "airos-af60-l"): [M("links", "rssi")],
    ("airos-af60", "rssi", "airos-af60-r"): [M("links", "remote_rssi")],
    ("airos-af60", "snr", "airos-af60-l"): [M("links", "snr_db")],
    ("airos-af60", "snr", "airos-af60-r"): [M("links", "remote_snr_db")],
    # Mimosa (MIMOSA-NETWORKS-BFIVE-MIB / -PTMP-MIB)
    ("mimosa", "frequency", "mimosa"): [M("radios", "freq_mhz")],
    ("mimosa", "frequency", "mimosa-ptp"): [M("radios", "chains_freq_mhz")],
    ("mimosa", "power", "mimosa-tx"): [M("radios", "txpower_dbm")],
    ("mimosa", "power", "mimosa-ptp-tx"): [M("radios", "txpower_dbm")],
    ("mimosa", "power", "mimosa-ptp-rx"): [M("radios", "chains_dbm")],
    ("mimosa", "noise-floor", "mimosa"): [M("radios", "chains_noise_dbm")],
    ("mimosa", "snr", "mimosa"): [M("radios", "chains_snr_db")],
    ("mimosa", "rate", "mimosa-tx"): [M("radios", "streams_tx_mbps", MBIT)],
    ("mimosa", "rate", "mimosa-rx"): [M("radios", "streams_rx_mbps", MBIT)],
    ("mimosa", "error-ratio", "mimosa-tx"): [M("radios", "tx_error_pct")],
    ("mimosa", "error-ratio", "mimosa-rx"): [M("radios", "rx_error_pct")],
    # OpenWrt with LibreNMS' snmpd extend scripts: per wireless interface (the `wlan`
    # total is the node's client count)
    ("openwrt", "clients", "openwrt"): [M("radios", "clients", select=_openwrt_iface),
                                        M("report", "clients")],
    ("openwrt", "frequency", "openwrt"): [M("radios", "freq_mhz", select=_openwrt_iface)],
    ("openwrt", "noise-floor", "openwrt"): [M("radios", "noise_dbm", select=_openwrt_iface)],
    # MikroTik RouterOS (MIKROTIK-MIB)
    ("routeros", "ccq", "mikrotik"): [M("radios", "ccq_pct")],
    ("routeros", "ccq", "mikrotik-tx-ccq"): [M("radios", "tx_ccq_pct"), M("links", "tx_ccq_pct")],
    ("routeros", "ccq", "mikrotik-rx-ccq"): [M("radios", "rx_ccq_pct"), M("links", "rx_ccq_pct")],
    ("routeros", "clients", "mikrotik"): [M("radios", "clients")],
    ("routeros", "distance", "mikrotik"): [M("links", "distance_m", KM)],
    ("routeros", "frequency", "mikrotik"): [M("radios", "freq_mhz")],
    ("routeros", "frequency", "mikrotik-60g"): [M("radios", "freq_mhz")],
    ("routeros", "noise-floor", "mikrotik"): [M("radios", "noise_dbm")],
    ("routeros", "quality", "mikrotik"): [M("radios", "quality_pct")],
    ("routeros", "rate", "mikrotik-60g-tx"): [M("radios", "tx_rate_mbps", MBIT)],
    ("routeros", "rate", "mikrotik-tx"): [M("radios", "tx_rate_mbps", MBIT)],
    ("routeros", "rate", "mikrotik-rx"): [M("radios", "rx_rate_mbps", MBIT)],
    ("routeros", "rssi", "mikrotik"): [M("radios", "rssi")],
    ("routeros", "rsrp", "routeros"): [M("radios", "rsrp_dbm")],
    ("routeros", "rsrq", "routeros"): [M("radios", "rsrq_db")],
    ("routeros", "sinr", "routeros"): [M("radios", "sinr_db")],
    # UniFi (UBNT-UniFi-MIB): per band ("ng", "na") and per SSID (VAP)
    ("unifi", "ccq", "unifi"): [M("radios", "ccq_pct")],
    ("unifi", "clients", "unifi"): [M("radios", "clients", select=_band), M("ssid", "clients")],
    ("unifi", "frequency", "unifi"): [M("radios", "freq_mhz", select=_band)],
    ("unifi", "power", "unifi-tx"): [M("radios", "txpower_dbm", select=_band)],
    ("unifi", "utilization", "unifi-total"): [M("radios", "busy_pct")],
    ("unifi", "utilization", "unifi-rx"): [M("radios", "rx_util_pct")],
    ("unifi", "utilization", "unifi-tx"): [M("radios", "tx_util_pct")],
    ("unifi", "utilization", "unifi-other"): [M("radios", "other_bss_pct")],
}
for _stat, _suffix in (("min", "_min"), ("max", "_max"), ("avg", "")):
    for _dir in ("rx", "tx"):
        MEANING[("openwrt", "rate", f"openwrt-{_dir}", _stat)] = [  # type: ignore[index]
            M("radios", f"{_dir}_rate{_suffix}_mbps", MBIT, _openwrt_iface)]
    MEANING[("openwrt", "snr", "openwrt", _stat)] = [  # type: ignore[index]
        M("radios", f"snr{_suffix}_db", select=_openwrt_iface)]

Sensor = dict[str, Any]
LEFT_OUT: dict[tuple[str, str, str], Callable[[Sensor, list[Sensor]], bool]] = {
    # a virtual AP (frequency 0, so LibreNMS names it "SSID: …") reads 0 for noise floor
    # and CCQ: no reading, so the bridge publishes nothing rather than a false 0
    ("routeros", "noise-floor", "mikrotik"): lambda s, _: s["sensor_descr"].startswith("SSID")
    and s["sensor_current"] == 0,
    ("routeros", "ccq", "mikrotik"): lambda s, _: s["sensor_descr"].startswith("SSID")
    and s["sensor_current"] == 0,
    # mimosaPtmpChPwrMinRxPower is a configured threshold, not a reading of any link
    ("mimosa", "power", "mimosa-rx"): lambda s, _: True,
    # a UniFi VAP without stations reads CCQ 0: no reading
    ("unifi", "ccq", "unifi"): lambda s, _: s["sensor_current"] == 0,
    # LTU firmware that computes no ideal receive power reads -99 for it, and 0 % for the
    # chains' levels measured against it (next to a -48 dBm signal): no readings
    ("airos-af-ltu", "power", "airos-af-ltu-ideal-rx-chain-0"): lambda s, _: _no_ideal([s]),
    ("airos-af-ltu", "power", "airos-af-ltu-ideal-rx-chain-1"): lambda s, _: _no_ideal([s]),
    ("airos-af-ltu", "quality", "airos-af-ltu-level-rx-chain-0"): lambda _, all: _no_ideal(all),
    ("airos-af-ltu", "quality", "airos-af-ltu-level-rx-chain-1"): lambda _, all: _no_ideal(all),
}


def _no_ideal(sensors: list[Sensor]) -> bool:
    return any(s["sensor_type"].startswith("airos-af-ltu-ideal") and s["sensor_current"] <= -99
               for s in sensors)


def meanings(os_name: str, sensor: dict[str, Any]) -> list[Meaning]:
    key = (os_name, sensor["sensor_class"], sensor["sensor_type"])
    stat = sensor["sensor_descr"].rsplit("-", 1)[-1]
    return MEANING.get((*key, stat), []) or MEANING.get(key, [])  # type: ignore[arg-type]


def elements(report: dict[str, Any], meaning: Meaning, sensor: dict[str, Any]
             ) -> Iterator[Any]:
    """The published values a sensor may be, as LibreNMS' number (factor applied)."""
    if meaning.where == "report":
        candidates = [report]
    elif meaning.where == "ssid":  # UniFi "SSID: X": summed over the VAPs of that SSID
        ssid = sensor["sensor_descr"].removeprefix("SSID: ")
        total = sum(r.get(meaning.field, 0) for r in report["radios"] if r.get("ssid") == ssid)
        yield total
        return
    else:
        candidates = report.get(meaning.where, [])
    for element in candidates:
        if meaning.select is not None and not meaning.select(sensor, element):
            continue
        value = element.get(meaning.field)
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, int | float):
                yield one * meaning.factor


def close_enough(published: float, expected: float) -> bool:
    """Equal but for rounding of the published value (3 decimals of our unit)."""
    return abs(published - expected) <= max(0.011, abs(expected) * 2e-5)


@pytest.fixture(scope="module")
def simulator() -> Iterator[int]:
    server = snmpsim.start_snmpsim(DATA / "snmprec", RECORDINGS[0])
    yield server.port
    server.stop()


@dataclass
class Polled:
    """What one in-process poll of every recording gave."""

    published: dict[str, dict[str, list[dict[str, Any]]]]
    """{node: {kind: [payloads]}}"""
    profiles: dict[str, tuple[str, ...]]
    """{community: the profiles discovery chose}"""
    out_of_range: dict[str, int]
    """{community: values left out because the contract would refuse them}"""


@pytest.fixture(scope="module")
def polled(simulator: int) -> Polled:
    """Every recording polled once, in-process, 8 at a time (one simulator answers them)."""
    shared = SharedEngine(8)
    devices = [SnmpDevice(SnmpTable(host="127.0.0.1", port=simulator, community=c,
                                    node=node_id(c), timeout_s=2, retries=1), shared)
               for c in RECORDINGS]
    sink = _ListSink()

    async def poll_all() -> None:
        bridge = Bridge("bridge-f", PREFIX, list(devices), sink)
        try:
            assert await bridge.run_once(), "a recording did not answer"
        finally:
            await bridge.close()

    asyncio.run(poll_all())
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for message in sink.messages:
        decoded = decode({"topic": message.topic, "payload": message.payload})
        assert isinstance(decoded, wire.Info | wire.Status | wire.Report)
        _, _, _, node, kind = message.topic.split("/")
        out.setdefault(node, {}).setdefault(kind, []).append(message.payload)
    return Polled(out, {c: d.profiles for c, d in zip(RECORDINGS, devices, strict=True)},
                  {c: d.out_of_range for c, d in zip(RECORDINGS, devices, strict=True)})


@pytest.fixture(scope="module")
def published(polled: Polled) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return polled.published


def test_every_recording_is_published_and_valid(polled: Polled) -> None:
    published = polled.published
    assert sorted(published) == sorted(node_id(c) for c in RECORDINGS)
    for node, kinds in published.items():
        assert kinds["status"][0]["online"] is True, node
        assert kinds["info"][0]["source"] == {"kind": "snmp", "via": "bridge-f"}
        assert len(kinds["report"]) == 1, node
    # real recordings carry no value the contract refuses (the crafted ones in test_snmp_devices)
    assert not {c: n for c, n in polled.out_of_range.items() if n}


@dataclass
class Fidelity:
    """How one recording's LibreNMS wireless sensors fared against what we published."""

    total: int
    matched: int
    left_out: int
    missing: list[tuple[str, tuple[str, str, str], float, list[float]]]
    unknown: list[tuple[str, str, str]]


def fidelity(published: dict, community: str) -> Fidelity:
    """Compare every wireless sensor LibreNMS asserts for a recording with our report."""
    expected = EXPECTED[community]
    os_name = expected["device"]["os"]
    report = published[node_id(community)]["report"][0]
    result = Fidelity(len(expected["wireless_sensors"]), 0, 0, [], [])
    for sensor in expected["wireless_sensors"]:
        key = (os_name, sensor["sensor_class"], sensor["sensor_type"])
        if key in LEFT_OUT and LEFT_OUT[key](sensor, expected["wireless_sensors"]):
            result.left_out += 1
            continue
        options = meanings(os_name, sensor)
        if not options:
            result.unknown.append(key)
            continue
        value = float(sensor["sensor_current"])
        found = [v for m in options for v in elements(report, m, sensor)]
        if any(close_enough(v, value) for v in found):
            result.matched += 1
        else:
            result.missing.append((sensor["sensor_descr"], key, value, found))
    return result


WIRELESS = sorted(c for c in EXPECTED if EXPECTED[c]["wireless_sensors"])


@pytest.mark.parametrize("community", WIRELESS)
def test_librenms_wireless_values_are_published(published: dict, community: str) -> None:
    result = fidelity(published, community)
    assert not result.unknown, f"sensors with no meaning in this test: {result.unknown}"
    assert not result.missing, f"LibreNMS values not published: {result.missing}"
    assert result.matched + result.left_out == result.total


def test_docs_state_the_measured_fidelity(published: dict) -> None:
    """docs/snmp.md's fidelity table says, per recording, how many sensors LibreNMS asserts and
    how many we publish: the numbers measured here (run with -rP to see them)."""
    measured = {c: fidelity(published, c) for c in WIRELESS}
    for community, one in measured.items():
        print(f"{community}: {one.matched}/{one.total} matched, {one.left_out} left out")
    total, matched = (sum(getattr(f, k) for f in measured.values()) for k in ("total", "matched"))
    print(f"all: {matched}/{total} matched, {total - matched} left out")
    doc = (Path(__file__).parents[2] / "docs" / "snmp.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] in measured:
            rows[cells[0]] = (int(cells[3].split(":")[0]), int(cells[4]))
    assert rows == {c: (f.total, f.matched) for c, f in measured.items()}
    assert (f"In all {total} wireless sensors asserted, {matched} published with the same value"
            f" and meaning, {total - matched}") in " ".join(doc.split())


COVERED_OS = {key[0] for key in MEANING} | {"linux"}


def same_version(ours: str | None, librenms: str) -> bool:
    """Equal, or LibreNMS kept the whole build string and ours is its version part
    (`GP.ipq806x.v2.6.0-RC.46590.211230.1238` → `v2.6.0-RC`)."""
    return ours == librenms or (ours is not None and re.search(
        rf"(^|\.){re.escape(ours)}(\.|$)", librenms) is not None)


@pytest.mark.parametrize("community", sorted(
    c for c in EXPECTED if EXPECTED[c]["device"]["os"] in COVERED_OS))
def test_model_and_firmware_match_librenms(published: dict, community: str) -> None:
    device = EXPECTED[community]["device"]
    info = published[node_id(community)]["info"][0]
    if device["version"] is not None:
        version = device["version"]
        assert same_version(info.get("firmware"), version), (info.get("firmware"), version)
    if device["hardware"] is not None and device["os"] not in ("linux", "mimosa"):
        # LibreNMS names plain Linux hosts by CPU and Mimosa models by sysObjectID name
        assert info.get("model") == device["hardware"]


FAMILY_PROFILE = {"airos": "airmax", "airos-af": "airfiber", "airos-af-ltu": "ltu",
                  "airos-af60": "af60", "mimosa": "mimosa", "openwrt": "netsnmp_extend",
                  "routeros": "mikrotik", "unifi": "unifi"}
"""LibreNMS OS → the profile of that MIB family; every other OS gets only the generic ones"""
GENERIC = {"mib2", "dot11"}


def librenms_os(community: str) -> str:
    """The OS LibreNMS asserts; for a detection stub (no JSON), the OS its file is named after
    (LibreNMS' OS-detection test: `routeros_1`, `airos1` → routeros, airos)."""
    if community in EXPECTED:
        return str(EXPECTED[community]["device"]["os"])
    return re.sub(r"\d+$", "", community.split("_")[0])


@pytest.mark.parametrize("community", RECORDINGS)
def test_detection_picks_the_family_profile_or_the_generic_ones(polled: Polled,
                                                                 community: str) -> None:
    os_name = librenms_os(community)
    vendor = set(polled.profiles[community]) - GENERIC
    assert "mib2" in polled.profiles[community]
    if os_name not in FAMILY_PROFILE:  # a switch, a power supply, a Linux host
        assert vendor == set()
    elif community in EXPECTED:  # a full recording: its family's MIB is there
        assert vendor == {FAMILY_PROFILE[os_name]}
    else:  # a detection stub (sysDescr and sysObjectID only): never another family's
        assert vendor <= {FAMILY_PROFILE[os_name]}


def test_an_unknown_device_is_a_generic_interfaces_node(published: dict) -> None:
    """A plain managed switch (LibreNMS os `advantech`): interfaces and MACs, nothing else."""
    node = published[node_id(GENERIC_SWITCH)]
    info, report = node["info"][0], node["report"][0]
    assert "model" not in info and "firmware" not in info
    assert len(info["macs"]) == 13  # 12 ports and the LAGs' one
    assert [i["name"] for i in report["ifaces"][:2]] == ["GigabitEthernet1", "GigabitEthernet2"]
    assert len(report["ifaces"]) == 20 and report["ifaces"][1]["up"] is False
    assert report["radios"] == [] and report["links"] == [] and "clients" not in report


PRINTED = ("airos", "routeros", "airos-af-ltu", "unifi", "airos_airos8", "airos-af-ltu_1.4.0",
           "airos-af60_airos-af60", "mimosa_b5", "unifi_nanohd", GENERIC_SWITCH)


def test_once_print_process_matches_in_process(published: dict, simulator: int,
                                               tmp_path: Path) -> None:
    body = "".join(
        f'[[snmp]]\nhost = "127.0.0.1"\nport = {simulator}\ncommunity = "{c}"\n'
        f'node = "{node_id(c)}"\ntimeout_s = 2\n'
        for c in PRINTED)
    lines = print_tables(tmp_path, "bridge-f", body)
    assert lines[0]["topic"] == f"{PREFIX}/v1/bridge/bridge-f/status"
    for line in lines:
        decode(line)
    reports = {line["topic"].split("/")[3]: line["payload"] for line in lines
               if line["topic"].endswith("/report")}
    assert sorted(reports) == sorted(node_id(c) for c in PRINTED)
    for node, report in reports.items():
        mine = published[node]["report"][0]
        strip = ("ts", "sys")  # read at another moment
        assert {k: v for k, v in report.items() if k not in strip} == {
            k: v for k, v in mine.items() if k not in strip}


class _ListSink:
    def __init__(self) -> None:
        self.messages: list[OutMessage] = []

    def send(self, message: OutMessage) -> None:
        self.messages.append(message)
