"""Wire-contract ranges of the values agents measure: one odd reading is left out (and
logged), never sent, since the collector rejects a whole report for one value out of range."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

COUNTER: tuple[float, float | None] = (0, None)
DBM: tuple[float, float | None] = (-150, 40)
MBPS: tuple[float, float | None] = (0, 1_000_000)
LINK = {
    "signal_dbm": DBM, "signal_avg_dbm": DBM, "noise_dbm": DBM, "snr_db": (-50, 150),
    "tx_rate_mbps": MBPS, "rx_rate_mbps": MBPS, "expected_tput_mbps": MBPS,
    "tx_retries": COUNTER, "tx_failed": COUNTER, "inactive_ms": COUNTER, "tq": (0, 255),
    "lq": (0, 1), "nlq": (0, 1), "etx": MBPS, "cost": MBPS, "rxcost": MBPS, "txcost": MBPS,
    "rx_bytes": COUNTER, "tx_bytes": COUNTER, "rx_packets": COUNTER, "tx_packets": COUNTER,
    "handshake_ts": COUNTER,
}  # fmt: skip
RADIO = {
    "freq_mhz": (0, 100_000), "channel": (0, 1000), "width_mhz": (0, 2000), "noise_dbm": DBM,
    "txpower_dbm": (-50, 60), "busy_pct": (0, 100), "clients": COUNTER,
}  # fmt: skip
SYS = {
    "uptime_s": COUNTER, "mem_total_kb": COUNTER, "mem_avail_kb": COUNTER,
    "rootfs_used_pct": (0, 100),
}  # fmt: skip
LISTS = {"chains_dbm": (DBM, 8), "load": ((0, 10_000), 3)}
"""list fields: the range of each item and the most items"""
POSITIVE = ("freq_mhz", "width_mhz")
"""fields the contract wants strictly above their lower bound"""


def _fits(name: str, value: Any, bounds: Bounds) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    low, high = bounds
    if value < low or (name in POSITIVE and value == low):
        return False
    return high is None or value <= high


Bounds = tuple[float, float | None]


def in_range(entry: dict[str, Any], ranges: Mapping[str, Bounds]) -> dict[str, Any]:
    """`entry` without the values outside the contract's ranges (each logged)."""
    out: dict[str, Any] = {}
    for name, value in entry.items():
        bounds = ranges.get(name)
        if name in LISTS and isinstance(value, list):
            item, most = LISTS[name]
            value = [v for v in value if _fits(name, v, item)][:most]
            if not value:
                continue
        elif bounds is not None and not _fits(name, value, bounds):
            log.warning("%s %r out of range, left out", name, value)
            continue
        out[name] = value
    return out
