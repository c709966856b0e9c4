"""System metrics from /proc text and statvfs: the `sys` and `ifaces` parts of a report."""

from __future__ import annotations

import os
from typing import Any


def parse_uptime(text: str) -> dict[str, Any]:
    """`/proc/uptime` → `{"uptime_s": …}`."""
    parts = text.split()
    try:
        return {"uptime_s": float(parts[0])}
    except (IndexError, ValueError):
        return {}


def parse_loadavg(text: str) -> dict[str, Any]:
    """`/proc/loadavg` → `{"load": [1, 5, 15 minute averages]}`."""
    try:
        return {"load": [float(x) for x in text.split()[:3]]}
    except ValueError:
        return {}


def parse_meminfo(text: str) -> dict[str, Any]:
    """`/proc/meminfo` → `mem_total_kb` and `mem_avail_kb` (MemAvailable or free+buffers+cached)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[name.strip()] = int(fields[0])
    out: dict[str, Any] = {}
    if "MemTotal" in values:
        out["mem_total_kb"] = values["MemTotal"]
    if "MemAvailable" in values:
        out["mem_avail_kb"] = values["MemAvailable"]
    elif all(k in values for k in ("MemFree", "Buffers", "Cached")):
        # kernels before 3.14 have no MemAvailable
        out["mem_avail_kb"] = values["MemFree"] + values["Buffers"] + values["Cached"]
    return out


# /proc/net/dev receive columns: bytes packets errs drop fifo frame compressed multicast,
# then transmit: bytes packets errs drop fifo colls carrier compressed
_RX_BYTES, _RX_PACKETS, _RX_ERRS = 0, 1, 2
_TX_BYTES, _TX_PACKETS, _TX_ERRS = 8, 9, 10


def parse_net_dev(text: str, up: dict[str, bool] | None = None) -> list[dict[str, Any]]:
    """`/proc/net/dev` → `ifaces` entries; `up` optionally maps names to operstate."""
    ifaces: list[dict[str, Any]] = []
    for line in text.splitlines():
        if ":" not in line or "|" in line:
            continue
        name, _, rest = line.partition(":")
        cols = rest.split()
        if len(cols) < 16 or not all(c.isdigit() for c in cols[:16]):
            continue
        entry: dict[str, Any] = {"name": name.strip()[:128]}
        if up is not None and entry["name"] in up:
            entry["up"] = up[entry["name"]]
        entry.update(
            rx_bytes=int(cols[_RX_BYTES]),
            tx_bytes=int(cols[_TX_BYTES]),
            rx_packets=int(cols[_RX_PACKETS]),
            tx_packets=int(cols[_TX_PACKETS]),
            rx_errors=int(cols[_RX_ERRS]),
            tx_errors=int(cols[_TX_ERRS]),
        )
        ifaces.append(entry)
    return ifaces


def rootfs_used_pct(st: os.statvfs_result) -> dict[str, Any]:
    """Used share of a filesystem, as `df` computes it (reserved blocks count as unavailable)."""
    used = st.f_blocks - st.f_bfree
    usable = used + st.f_bavail
    if st.f_blocks <= 0 or usable <= 0:
        return {}
    return {"rootfs_used_pct": round(100.0 * used / usable, 1)}
