"""Line-protocol encoding speed: a report's lines as the InfluxDB sink makes them (a benchmark).

    python bench/lineprotocol.py [--nodes 2000] [--reports 40000]

Reports of `--nodes` nodes (five links, an interface, a radio; the decoded msgspec Structs
the collector hands its sinks), each node in turn, so the caches see a network, not one
report: `report_chunk` (the encoder) and `write_report` of the InfluxDB v1 sink (the
encoder plus queueing, which the event loop pays per report) in CPU µs per report.
Last line: RESULT lines_per_s=… us_per_report=… sink_us_per_report=…
"""

from __future__ import annotations

import argparse
import time

from meshmon.model.fastwire import Report as StructReport
from meshmon.model.fastwire import to_struct
from meshmon.model.wire import Report
from meshmon.sinks.influx_v1 import InfluxV1Sink
from meshmon.sinks.lineprotocol import report_chunk

TARGET_SINK_US = 20.0
"""the loop's time a report may cost with the InfluxDB sink (issue 14, task lineproto)"""


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


def network(nodes: int) -> list[tuple[StructReport, list[str | None]]]:
    """One report per node, each with its own node id and peers (as Structs)."""
    out = []
    for i in range(nodes):
        r = make_report(i).model_dump()
        r["node"] = f"n{i:05d}"
        for j, link in enumerate(r["links"]):
            link["peer_mac"] = f"02:00:{i >> 8 & 255:02x}:{i & 255:02x}:00:{j:02x}"
        dsts: list[str | None] = [f"n{(i + j + 1) % nodes:05d}" for j in range(4)] + [None]
        out.append((to_struct(Report.model_validate(r)), dsts))
    return out


def cpu_us(reports: list[tuple[StructReport, list[str | None]]], n: int, step: object) -> float:
    t0 = time.process_time()
    for i in range(n):
        r, dsts = reports[i % len(reports)]
        step(r, r.ts + 0.0123, dsts)  # type: ignore[operator]
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--reports", type=int, default=40_000)
    args = ap.parse_args()
    reports = network(args.nodes)
    lines = sum(report_chunk(r, r.ts, d)[1] for r, d in reports)  # layouts made once
    encode_us = cpu_us(reports, args.reports, report_chunk)
    # the sink's per-report path, buffer bound high enough that nothing is dropped; never
    # started, so nothing is sent (the HTTP writes are the flusher's, measured by drain.py)
    sink = InfluxV1Sink("http://127.0.0.1:1", "bench", buffer_max_points=10**9)
    sink_us = cpu_us(reports, args.reports, sink.write_report)
    per_report = lines / len(reports)
    print(f"{args.nodes} nodes, {per_report:.0f} lines a report: encoder {encode_us:.1f} µs "
          f"CPU a report ({per_report / encode_us * 1e6:,.0f} lines/s); the sink's write_report "
          f"{sink_us:.1f} µs  target ≤ {TARGET_SINK_US:.0f} µs on the loop "
          f"{'ok' if sink_us <= TARGET_SINK_US else 'MISSED'}")
    print(f"RESULT lines_per_s={per_report / encode_us * 1e6:.0f} us_per_report={encode_us:.1f} "
          f"sink_us_per_report={sink_us:.1f}")


if __name__ == "__main__":
    main()
