"""Line-protocol encoding speed: reports with 5 links (prints RESULT lines_per_s=…)."""

from __future__ import annotations

import time

from meshmon.model.wire import Report
from meshmon.sinks.lineprotocol import report_lines

N = 20_000


def make_report(i: int) -> Report:
    links = [
        {"peer": f"n{j}", "peer_mac": f"02:00:00:00:00:{j:02x}", "iface": "wlan0", "kind": "wifi",
         "signal_dbm": -60 - j, "signal_avg_dbm": -61.5, "chains_dbm": [-62, -64], "noise_dbm": -95,
         "snr_db": 35, "tx_rate_mbps": 144.4, "rx_rate_mbps": 130, "expected_tput_mbps": 60,
         "tx_retries": 10 + i, "tx_failed": 1, "inactive_ms": 30}
        for j in range(5)
    ]
    return Report.model_validate({
        "v": 1, "node": f"node{i % 1000}", "ts": 1_700_000_000 + i, "seq": i, "interval_s": 30,
        "sys": {"uptime_s": 3600 + i, "load": [0.5, 0.4, 0.3], "mem_total_kb": 65536,
                "mem_avail_kb": 30000, "rootfs_used_pct": 40},
        "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": 10**9 + i, "tx_bytes": 2 * 10**9}],
        "radios": [{"iface": "wlan0", "freq_mhz": 5180, "channel": 36, "noise_dbm": -95,
                    "busy_pct": 20, "clients": 4}],
        "clients": 4, "links": links,
    })  # fmt: skip


def main() -> None:
    reports = [make_report(i) for i in range(1000)]
    dsts = [f"n{j}" for j in range(5)]
    lines = 0
    t0 = time.perf_counter()
    for i in range(N):
        r = reports[i % len(reports)]
        lines += len(report_lines(r, r.ts + 1, dsts))
    dt = time.perf_counter() - t0
    print(f"{N} reports, {lines} lines ({lines // N} per report) in {dt:.2f}s: "
          f"{N / dt:,.0f} reports/s, {lines / dt:,.0f} lines/s, {dt / N * 1e6:.1f} µs/report")
    print(f"RESULT lines_per_s={lines / dt:.0f}")


if __name__ == "__main__":
    main()
