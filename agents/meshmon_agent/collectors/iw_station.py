"""Wi-Fi neighbours from `iw dev IF station dump`: one `wifi` link per station."""

from __future__ import annotations

import re
from typing import Any

_STATION = re.compile(r"^Station\s+([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})\s+\(on\s+(\S+)\)")
# an MLO station's per-link block (`Link 0:`) follows the station's own lines
_LINK_BLOCK = re.compile(r"^Link\s+\d+:$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_COUNT = re.compile(r"\d+")
# `signal:  -4 [-5, -9] dBm`: the bracketed values are the per-chain signals
_SIGNAL = re.compile(r"^(-?\d+)\s*(?:\[([^\]]*)\])?\s*dBm")

_COUNTERS = {
    "inactive time": "inactive_ms",
    "rx bytes": "rx_bytes",
    "tx bytes": "tx_bytes",
    "rx packets": "rx_packets",
    "tx packets": "tx_packets",
    "tx retries": "tx_retries",
    "tx failed": "tx_failed",
    "rx drop misc": "rx_drop_misc",
}
_RATES = {"tx bitrate": "tx_rate_mbps", "rx bitrate": "rx_rate_mbps"}

LINK_FIELDS = (
    "peer_mac", "iface", "kind", "signal_dbm", "signal_avg_dbm", "chains_dbm", "tx_rate_mbps",
    "rx_rate_mbps", "expected_tput_mbps", "tx_retries", "tx_failed", "inactive_ms",
    "rx_bytes", "tx_bytes", "rx_packets", "tx_packets",
)  # fmt: skip
"""The station fields that are part of a wire-contract link."""


def _signal(value: str) -> tuple[float, list[float]] | None:
    match = _SIGNAL.match(value)
    if match is None:
        return None
    chains = [float(c) for c in _NUMBER.findall(match.group(2) or "")]
    return float(match.group(1)), chains


def _rate_mbps(value: str) -> float | None:
    # "866.7 MBit/s VHT-MCS 9 …"; a line without a MBit/s figure is no rate at all
    match = re.match(r"(\d+(?:\.\d+)?)\s*MBit/s", value)
    return float(match.group(1)) if match else None


def _apply(station: dict[str, Any], key: str, value: str) -> None:
    if key in _COUNTERS:
        count = _COUNT.match(value)
        if count is not None:
            station[_COUNTERS[key]] = int(count.group())
    elif key in _RATES:
        rate = _rate_mbps(value)
        if rate is not None:
            station[_RATES[key]] = rate
    elif key in ("signal", "signal avg"):
        parsed = _signal(value)
        if parsed is not None:
            name = "signal_dbm" if key == "signal" else "signal_avg_dbm"
            station[name] = parsed[0]
            if key == "signal" and parsed[1]:
                station["chains_dbm"] = parsed[1]
    elif key == "expected throughput":
        # "58.43Mbps"
        number = _NUMBER.match(value)
        if number is not None:
            station["expected_tput_mbps"] = float(number.group())


def parse_station_dump(text: str) -> list[dict[str, Any]]:
    """All stations of a station dump with every value we understand (more than a link holds).

    The values of an MLO station are its own (aggregated) ones; its `Link N:` blocks, which
    follow them, are skipped.
    """
    stations: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        head = _STATION.match(line.strip())
        if head is not None:
            iface = head.group(2)[:128]
            current = {"peer_mac": head.group(1).lower(), "iface": iface, "kind": "wifi"}
            stations.append(current)
            continue
        if _LINK_BLOCK.match(line.strip()):
            current = None
            continue
        if current is None or ":" not in line:
            continue
        key, _, value = line.partition(":")
        _apply(current, key.strip(), value.strip())
    return stations


def station_links(text: str) -> list[dict[str, Any]]:
    """`iw dev IF station dump` → wire links of kind `wifi`; missing metrics stay absent."""
    return [
        {k: v for k, v in station.items() if k in LINK_FIELDS}
        for station in parse_station_dump(text)
    ]
