"""Ranges the v1 contract allows for what SNMP profiles publish (meshmon/model/wire.py).

A device that reports nonsense (a 250 % quality, a +300 dBm signal) would make the whole
report invalid at the collector; such a value is left out here instead, counted and logged
by the caller, and the rest of the report goes out.
"""

from __future__ import annotations

from typing import Any

DBM = (-150.0, 40.0)
PCT = (0.0, 100.0)
MBPS = (0.0, 1_000_000.0)
SNR = (-50.0, 150.0)
WIDE = (-150.0, 150.0)
MHZ = (1e-6, 100_000.0)
COUNT = (0.0, 1e19)

RANGES: dict[str, tuple[float, float]] = {
    "signal_dbm": DBM, "noise_dbm": DBM, "remote_signal_dbm": DBM, "rsrp_dbm": DBM,
    "chains_dbm": DBM, "remote_chains_dbm": DBM, "ideal_chains_dbm": DBM,
    "chains_noise_dbm": DBM, "chains_freq_mhz": MHZ,
    "snr_db": SNR, "snr_min_db": SNR, "snr_max_db": SNR, "remote_snr_db": SNR,
    "chains_snr_db": WIDE, "rssi": WIDE, "remote_rssi": WIDE, "chains_rssi": WIDE,
    "freq_mhz": MHZ, "rx_freq_mhz": MHZ, "width_mhz": (1e-6, 2000.0), "channel": (0, 1000),
    "txpower_dbm": (-50.0, 60.0), "distance_m": (0.0, 1_000_000.0), "mcs": (0, 64),
    "rsrq_db": (-50.0, 50.0), "sinr_db": (-50.0, 100.0), "clients": COUNT,
    "uptime_s": COUNT, "mem_total_kb": COUNT, "mem_avail_kb": COUNT, "load": (0.0, 10_000.0),
    "rx_bytes": COUNT, "tx_bytes": COUNT, "rx_packets": COUNT, "tx_packets": COUNT,
    "rx_errors": COUNT, "tx_errors": COUNT,
}


def _limits(key: str) -> tuple[float, float] | None:
    if key in RANGES:
        return RANGES[key]
    if key.endswith("_pct"):
        return PCT
    if key.endswith("_mbps"):
        return MBPS
    return None


def _fits(value: Any, low: float, high: float) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_fits(v, low, high) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool) and (
        low <= value <= high)


def drop_out_of_range(entry: dict[str, Any]) -> list[str]:
    """Remove every field whose value the contract would refuse; the names removed."""
    dropped = []
    for key in list(entry):
        limits = _limits(key)
        if limits is not None and not _fits(entry[key], *limits):
            del entry[key]
            dropped.append(key)
    return dropped
