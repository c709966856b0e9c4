"""Both agents on captures from other firmware and tools than ../shared/data holds.

Each capture comes from another project's tests, documentation or mailing-list posts
(provenance in tests/data/README.md). Both agents read it through fake commands (or the
daemon stand-ins of test_conformance), their reports must validate and agree link by link
and field by field, and carry the values the capture's source asserts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agent.router import DATA, Router
from tests.agent.test_conformance import assert_same, serve_babel, serve_http

IW = DATA / "iw"
BATMAN = DATA / "batman"


def both(router: Router, config: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The links both agents report alike (after checking the whole reports agree)."""
    sh, py = router.sh_report(config), router.py_report(config, monkeypatch)
    assert_same(sh, py, "cap-1")
    return sh["links"]  # type: ignore[no-any-return]


def wifi_config(*ifaces: str) -> str:
    """A config that names the Wi-Fi interfaces to read (no `iw dev` listing needed)."""
    return 'node = "cap-1"\n[collect]\nwifi_interfaces = [' + ", ".join(
        f'"{i}"' for i in ifaces) + "]\n"


def by_mac(links: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Links keyed by their peer's MAC."""
    return {link["peer_mac"]: link for link in links}


def test_libremesh_station_dumps_indented_with_tabs_and_spaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = Router(tmp_path, captures={
        ("iw", "dev", "wlan0-mesh", "station", "dump"):
            IW / "station-dump-libremesh-wlan0-mesh-indented.txt",
        ("iw", "dev", "wlan1-mesh", "station", "dump"):
            IW / "station-dump-libremesh-wlan1-mesh-spaces.txt",
    })
    links = by_mac(both(router, wifi_config("wlan0-mesh", "wlan1-mesh"), monkeypatch))
    # LibreMesh's get_most_active test: the wlan0-mesh station, signal -14 [-17, -18], bytes
    wlan0 = links["c0:4a:00:be:7b:09"]
    assert wlan0["iface"] == "wlan0-mesh"
    assert (wlan0["signal_dbm"], wlan0["chains_dbm"]) == (-14, [-17, -18])
    assert (wlan0["rx_bytes"], wlan0["tx_bytes"]) == (3116498, 1166333)
    # the space-indented dump of the other radio, as printed
    wlan1 = links["c0:4a:00:be:7b:0a"]
    assert wlan1 == {
        "peer_mac": "c0:4a:00:be:7b:0a", "iface": "wlan1-mesh", "kind": "wifi",
        "inactive_ms": 50, "rx_bytes": 503044, "rx_packets": 3976, "tx_bytes": 545116,
        "tx_packets": 1237, "tx_retries": 9, "tx_failed": 0, "signal_dbm": -14,
        "chains_dbm": [-17, -16], "signal_avg_dbm": -12, "tx_rate_mbps": 300,
        "rx_rate_mbps": 300, "expected_tput_mbps": 58.43}


def test_openwrt_station_dump_two_aps_and_iw_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = (IW / "dev-openwrt-2-aps-txq.txt").read_text()
    # `iw dev IF info` prints one of these blocks
    wlan0_info, wlan1_info = (block.strip("\n") + "\n" for block in dev.split("\n\n"))
    router = Router(tmp_path, captures={
        ("iw", "dev"): dev,
        ("iw", "dev", "wlan0", "info"): wlan0_info,
        ("iw", "dev", "wlan1", "info"): wlan1_info,
        ("iw", "dev", "wlan0", "station", "dump"): IW / "station-dump-openwrt-2-aps-3-chains.txt",
    })
    sh, py = router.sh_report('node = "cap-1"\n'), router.py_report('node = "cap-1"\n',
                                                                     monkeypatch)
    assert_same(sh, py, "cap-1")
    # ap-parse's test of the device list: channel, frequency, tx power per interface
    wlan0, wlan1 = sh["radios"]
    assert (wlan0["iface"], wlan0["channel"], wlan0["freq_mhz"], wlan0["txpower_dbm"]) == (
        "wlan0", 44, 5220, 23)
    assert (wlan1["iface"], wlan1["channel"], wlan1["freq_mhz"], wlan1["txpower_dbm"]) == (
        "wlan1", 10, 2457, 17)
    assert (wlan0["width_mhz"], wlan1["width_mhz"]) == (80, 20)
    # ap-parse's test of the station list (one dump naming stations of two interfaces)
    links = by_mac(sh["links"])
    first, second = links["90:44:59:4a:44:b2"], links["f4:1a:29:64:55:5a"]
    assert first == {
        "peer_mac": "90:44:59:4a:44:b2", "iface": "wlan0", "kind": "wifi", "inactive_ms": 2830,
        "rx_bytes": 415320, "rx_packets": 2792, "tx_bytes": 1217519, "tx_packets": 1648,
        "tx_retries": 77, "tx_failed": 49, "signal_dbm": -66, "chains_dbm": [-69, -69, -82],
        "signal_avg_dbm": -62, "tx_rate_mbps": 7.2, "rx_rate_mbps": 59.6}
    assert "expected_tput_mbps" not in first  # the source asserts None
    assert second["iface"] == "wlan1"
    assert (second["inactive_ms"], second["rx_bytes"], second["tx_bytes"]) == (
        50, 14483244, 380501678)
    assert (second["tx_retries"], second["tx_failed"], second["signal_dbm"]) == (5174, 0, -51)
    assert (second["tx_rate_mbps"], second["rx_rate_mbps"], second["expected_tput_mbps"]) == (
        12.3, 65.1, 47.507)
    # the AP radio counts the stations of its own dump
    assert (wlan0["clients"], wlan1["clients"]) == (2, 0)


def test_mlo_link_blocks_do_not_override_the_station(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = Router(tmp_path, captures={
        ("iw", "dev", "wlan0", "station", "dump"): IW / "station-dump-mlo-eht-he-3-stations.txt",
    })
    links = by_mac(both(router, wifi_config("wlan0"), monkeypatch))
    # the sample output of the MLO per-link stats series: a station's own lines come first,
    # its `Link N:` blocks after; an EHT and an HE rate line
    eht, mlo, he = (links[m] for m in ("ff:ff:ff:0f:f8:64", "ff:ff:ff:ff:5f:23",
                                       "ff:ff:ff:f1:f8:f4"))
    assert (eht["signal_avg_dbm"], eht["rx_rate_mbps"], eht["inactive_ms"]) == (-27, 1441.3,
                                                                                182068)
    assert mlo == {
        "peer_mac": "ff:ff:ff:ff:5f:23", "iface": "wlan0", "kind": "wifi",
        "inactive_ms": 173476, "rx_bytes": 1036, "rx_packets": 9, "tx_bytes": 1694,
        "tx_packets": 6, "tx_retries": 1, "tx_failed": 1, "signal_dbm": -20,
        "signal_avg_dbm": -22, "tx_rate_mbps": 6}
    assert (he["rx_rate_mbps"], he["signal_dbm"], he["signal_avg_dbm"]) == (1297.1, -24, -27)


BATMAN_CASES = {
    # batman-adv 2022.3 (maintainer's post): one neighbour, TQ 255 on its best route
    "2022.3-iv": ("n-text-2022.3-iv-1-neighbour.txt", "o-text-2022.3-iv-1-originator.txt", [
        ("50:7b:9d:ce:26:83", "enp70s0", {"inactive_ms": 708, "tq": 255})]),
    # 2019.4, three bonded interfaces: dd's best route goes via c9, so no TQ for the dd link
    "2019.4-iv": ("n-text-2019.4-iv-3-bonded.txt", "o-text-2019.4-iv-3-bonded.txt", [
        ("00:0c:29:53:f8:c9", "eth0", {"inactive_ms": 32, "tq": 251}),
        ("00:0c:29:53:f8:d3", "eth1", {"inactive_ms": 992, "tq": 255}),
        ("00:0c:29:53:f8:dd", "eth2", {"inactive_ms": 384})]),
    # BATMAN_V: the interface in brackets after the MAC; the bracketed number is throughput
    # (kbit/s-based, per the list's answer), not a TQ
    "2019.4-v": ("n-text-2019.4-v-3-bonded.txt", "o-text-2019.4-v-3-bonded.txt", [
        ("00:0c:29:53:f8:c9", "eth0", {"inactive_ms": 436}),
        ("00:0c:29:53:f8:d3", "eth1", {"inactive_ms": 340}),
        ("00:0c:29:53:f8:dd", "eth2", {"inactive_ms": 116})]),
    # Gluon with batman-adv 2016.2, no `batctl n`: the debugfs table lists best routes only;
    # the direct ones (originator = next hop) are the neighbours (mesh-announce's rule)
    "2016.2-gluon": (None, "o-text-2016.2-gluon-debugfs.txt", [
        ("02:42:0a:22:00:03", "mesh-vpn", {"tq": 250}),
        ("02:42:0a:22:00:01", "mesh-vpn", {"tq": 250})]),
}


@pytest.mark.parametrize("case", sorted(BATMAN_CASES))
def test_batctl_text_tables_of_other_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    neighbours, originators, expected = BATMAN_CASES[case]
    captures: dict[tuple[str, ...], Path | str] = {("batctl", "o"): BATMAN / originators}
    if neighbours:
        captures[("batctl", "n")] = BATMAN / neighbours
    links = both(Router(tmp_path, captures=captures), 'node = "cap-1"\n', monkeypatch)
    assert links == [{"peer_mac": mac, "iface": iface, "kind": "batman", **metrics}
                     for mac, iface, metrics in expected]


def test_wireguard_dump_of_three_interfaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = Router(tmp_path, captures={
        ("wg", "show", "all", "dump"): DATA / "wireguard" / "wg-dump-exporter-3-interfaces.txt"})
    links = both(router, 'node = "cap-1"\n', monkeypatch)
    # the exporter's test: wg0's first peer is 2S7m…; of the 7 peers two have a handshake
    assert links == [
        {"peer": "wg-2S7mA0vEMeth", "iface": "wg0", "kind": "vpn", "handshake_ts": 1555771458,
         "rx_bytes": 10288508, "tx_bytes": 139524160},
        {"peer": "wg-928vO9Lf4-Mo", "iface": "wg0", "kind": "vpn", "handshake_ts": 1555344925,
         "rx_bytes": 283012, "tx_bytes": 6604620},
    ]


ALTHEA_NEIGHBOURS = {
    "fe80::2cee:2fff:648:8796": ("exit-1", "wg0", 256, 256, 1168),
    "fe80::e841:e384:491e:8eb9": ("hill-2", "wlan0", 512, 256, 1020),
    "fe80::e9d0:498f:6c61:be29": ("hill-3", "wlan0", 258, 341, 817),
    "fe80::e914:2335:a76:bda3": ("hill-4", "wlan0", 258, 256, 956),
}


def test_babeld_dump_with_rtt_and_preamble(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = (DATA / "babel" / "dump-althea-4-neighbours-rtt.txt").read_text()
    names = "".join(f'"{addr}" = "{n[0]}"\n' for addr, n in ALTHEA_NEIGHBOURS.items())
    with serve_babel(capture) as address:
        config = (f'node = "cap-1"\n[collect]\nbabel_socket = "{address}"\n'
                  f"[collect.peer_names]\n{names}")
        links = both(Router(tmp_path), config, monkeypatch)
    # Althea's babel_monitor test: 4 neighbours, the first 14f19a8 on wg0 with rxcost 256;
    # their link-local addresses are not EUI-64, so only configured names identify them
    assert links == [
        {"peer": name, "iface": iface, "kind": "babel", "rxcost": rx, "txcost": tx, "cost": cost}
        for name, iface, rx, tx, cost in ALTHEA_NEIGHBOURS.values()]


def test_olsrd_06_txtinfo_with_hysteresis_and_infinite_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arp = "".join(f"192.168.10.{n}     0x1   0x2   02:ca:fe:00:10:0{n}     *    wlan0\n"
                  for n in (4, 7, 8))
    router = Router(tmp_path, arp=arp)
    capture = (DATA / "olsr" / "txtinfo-0.6-hyst-3-links-infinite.txt").read_bytes()
    with serve_http(capture) as url:
        links = both(router, f'node = "cap-1"\n[collect]\nolsr_url = "{url}"\n', monkeypatch)
    # the Links table (not the Neighbors one): LQ, NLQ and ETX as printed; an INFINITE cost
    # is no number, so that link has no etx
    assert links == [
        {"peer_mac": "02:ca:fe:00:10:08", "iface": "wlan0", "kind": "olsr", "lq": 1, "nlq": 1,
         "etx": 1},
        {"peer_mac": "02:ca:fe:00:10:04", "iface": "wlan0", "kind": "olsr", "lq": 1, "nlq": 0},
        {"peer_mac": "02:ca:fe:00:10:07", "iface": "wlan0", "kind": "olsr", "lq": 1, "nlq": 1,
         "etx": 1},
    ]
