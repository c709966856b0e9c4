"""Report builders shared by the sink tests."""

from __future__ import annotations

from typing import Any

from meshmon.model.wire import Report

NOW = 1_700_000_000.0


def report(
    node: str = "n1",
    ts: float = NOW,
    seq: int = 1,
    links: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Report:
    """A valid report; by default with three links, the last one unresolved (MAC only)."""
    if links is None:
        links = [
            {
                "peer": "n2",
                "peer_mac": "02:00:00:00:00:02",
                "iface": "wlan0",
                "kind": "wifi",
                "signal_dbm": -61,
                "signal_avg_dbm": -62.5,
                "chains_dbm": [-63, -65],
                "noise_dbm": -95,
                "snr_db": 34,
                "tx_rate_mbps": 144.4,
                "rx_rate_mbps": 130,
                "expected_tput_mbps": 60.5,
                "tx_retries": 12,
                "tx_failed": 1,
                "inactive_ms": 40,
            },
            {"peer": "n3", "iface": "bat0", "kind": "batman", "tq": 230},
            {"peer_mac": "02:00:00:00:00:99", "iface": "wlan0", "kind": "wifi", "signal_dbm": -80},
        ]
    data: dict[str, Any] = {
        "v": 1,
        "node": node,
        "ts": ts,
        "seq": seq,
        "interval_s": 30,
        "sys": {
            "uptime_s": 3600,
            "load": [0.5, 0.25, 0.125],
            "mem_total_kb": 65536,
            "mem_avail_kb": 32000,
            "rootfs_used_pct": 42.5,
        },
        "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": 1000, "tx_bytes": 2000}],
        "radios": [
            {
                "iface": "wlan0",
                "freq_mhz": 5180,
                "channel": 36,
                "noise_dbm": -95,
                "busy_pct": 12.5,
                "clients": 3,
            }
        ],
        "clients": 3,
        "links": links,
    }
    data.update(extra)
    return Report.model_validate(data)


DSTS = ["n2", "n3", None]
"""Resolved peers of the default report's links."""
