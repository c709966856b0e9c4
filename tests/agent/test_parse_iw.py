"""iw parsers against real ChromiumOS autotest captures and what that project asserts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meshmon_agent.collectors import iw_radio, iw_station

IW = Path(__file__).parents[1] / "data" / "iw"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((IW / "chromiumos-expected.json").read_text())


@pytest.fixture(scope="module")
def dump() -> str:
    return (IW / "station-dump-3-mesh-peers-vht80.txt").read_text()


def _mbps(bitrate: str) -> float | None:
    # the source writes "866.7 MBit/s …", or "0" when the line is missing
    return None if bitrate == "0" else float(bitrate.split()[0])


def test_station_dump_matches_what_chromiumos_asserts(dump: str, expected: dict) -> None:
    source = expected["iw_station_dump_mesh-5000mhz.txt"]
    stations = {s["peer_mac"]: s for s in iw_station.parse_station_dump(dump)}
    assert len(stations) == 3
    for want in source["parsed_sorted_by_mac"]:
        got = stations[want["mac"]]
        assert got["iface"] == source["iface"] == "mesh-5000mhz"
        assert got["signal_dbm"] == want["rssi_int"]
        assert got.get("tx_retries", 0) == want["tx_retries"]
        assert got.get("tx_failed", 0) == want["tx_failures"]
        assert got.get("rx_drop_misc", 0) == want["rx_drops"]
        assert got["rx_packets"] == want["rx_packets"]
        assert got["tx_packets"] == want["tx_packets"]
        assert got["tx_rate_mbps"] == _mbps(want["tx_bitrate"])
        assert got.get("rx_rate_mbps") == _mbps(want["rx_bitrate"])


def test_missing_metrics_are_absent_not_zero(dump: str) -> None:
    links = {link["peer_mac"]: link for link in iw_station.station_links(dump)}
    quiet = links["ff:aa:bb:aa:44:55"]
    # the source parses the missing rx bitrate as 0; a link without it must not claim 0 Mbit/s
    for absent in ("rx_rate_mbps", "tx_retries", "tx_failed", "signal_avg_dbm", "chains_dbm"):
        assert absent not in quiet
    assert quiet == {
        "peer_mac": "ff:aa:bb:aa:44:55",
        "iface": "mesh-5000mhz",
        "kind": "wifi",
        "inactive_ms": 304,
        "signal_dbm": -29.0,
        "tx_rate_mbps": 65.0,
        "rx_bytes": 18816,
        "tx_bytes": 5386,
        "rx_packets": 75,
        "tx_packets": 21,
    }


def test_links_hold_only_contract_fields(dump: str) -> None:
    link = {x["peer_mac"]: x for x in iw_station.station_links(dump)}["dd:ee:ff:33:44:55"]
    assert link == {
        "peer_mac": "dd:ee:ff:33:44:55",
        "iface": "mesh-5000mhz",
        "kind": "wifi",
        "inactive_ms": 140,
        "tx_retries": 4,
        "tx_failed": 0,
        "signal_dbm": -4.0,
        "signal_avg_dbm": -11.0,
        "tx_rate_mbps": 866.7,
        "rx_rate_mbps": 866.7,
        # the station's traffic (new optional link fields); `rx drop misc` is not a link field
        "rx_bytes": 2883498,
        "tx_bytes": 1369934,
        "rx_packets": 31981,
        "tx_packets": 6615,
    }


def test_signal_with_per_chain_values_and_expected_throughput() -> None:
    # the line shape some drivers print (ath9k, mt76); not in the captures above
    text = (
        "Station 02:58:47:46:28:95 (on wlan0-mesh)\n"
        "\tsignal:  \t-4 [-5, -9] dBm\n"
        "\tsignal avg:\t-6 [-7, -10] dBm\n"
        "\texpected throughput:\t58.43Mbps\n"
    )
    (link,) = iw_station.station_links(text)
    assert link["signal_dbm"] == -4.0
    assert link["chains_dbm"] == [-5.0, -9.0]
    assert link["signal_avg_dbm"] == -6.0
    assert link["expected_tput_mbps"] == 58.43


def test_info_mesh_and_ap(expected: dict) -> None:
    mesh = iw_radio.parse_info((IW / "info-mesh-point-ch149-80mhz.txt").read_text())
    assert mesh["iface"] == expected["iw_info_mesh_mode.txt"]["iface"]
    assert mesh["mode"] == expected["iw_info_mesh_mode.txt"]["mode"]
    assert (mesh["channel"], mesh["freq_mhz"], mesh["width_mhz"]) == (149, 5745.0, 80.0)
    assert mesh["mac"] == "aa:bb:cc:dd:ee:ff"
    ap = iw_radio.radio((IW / "info-ap-ch11-20mhz.txt").read_text())
    cfg = expected["iw_info_ap_mode.txt"]["radio_config"]
    assert ap == {
        "iface": "wlan-2400mhz",
        "channel": cfg["number"],
        "freq_mhz": cfg["freq"],
        "width_mhz": cfg["width"],
    }
    assert "txpower_dbm" not in ap  # the capture has no txpower line


def test_info_txpower() -> None:
    text = "Interface wlan0\n\ttype AP\n\tchannel 36 (5180 MHz), width: 40 MHz\n"
    text += "\ttxpower 23.00 dBm\n"
    assert iw_radio.parse_info(text)["txpower_dbm"] == 23.0


# Shape as printed by iw's survey.c (frequency / noise / channel * time lines); no capture of
# a real router's survey dump is in tests/data yet, so this one is written by hand.
SURVEY = """Survey data from wlan0
\tfrequency:\t\t\t5170 MHz
Survey data from wlan0
\tfrequency:\t\t\t5180 MHz [in use]
\tnoise:\t\t\t\t-95 dBm
\tchannel active time:\t\t54995 ms
\tchannel busy time:\t\t432 ms
\tchannel receive time:\t\t0 ms
\tchannel transmit time:\t\t59 ms
Survey data from wlan0
\tfrequency:\t\t\t5200 MHz
\tnoise:\t\t\t\t-92 dBm
"""


def test_survey_uses_the_channel_in_use() -> None:
    assert iw_radio.parse_survey(SURVEY) == {"noise_dbm": -95.0, "busy_pct": 0.8}
    assert iw_radio.parse_survey(SURVEY.replace(" [in use]", "")) == {}


def test_dev_lists_interfaces() -> None:
    text = (
        "phy#1\n\tInterface wlan1\n\t\tifindex 9\n\t\taddr 02:ab:46:46:28:95\n\t\ttype mesh point\n"
        "phy#0\n\tInterface wlan0\n\t\taddr 02:58:47:46:28:95\n\t\ttype AP\n"
    )
    assert [d["iface"] for d in iw_radio.parse_dev(text)] == ["wlan1", "wlan0"]
    assert iw_radio.parse_dev(text)[0]["type"] == "mesh point"
