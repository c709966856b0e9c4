"""Ingest benchmark: N simulated nodes → real Mosquitto → collector (graph + SQLite + InfluxDB v1).

    python bench/ingest.py [--nodes 35000] [--seconds 20]

Prints, measured in the same run: the collector's sustained reports/s (flood phase) next
to a bare paho subscriber's receive rate on the same messages; publish-to-stored lag
p50/p99 at a steady rate below saturation; the collector's peak RSS; topology analysis
time. Last line: RESULT reports_per_s=… bare_per_s=… ratio=… p99_ms=… rss_mb=… analysis_ms=…
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import (  # noqa: E402
    bare_drain,
    build_mesh,
    publish_infos,
    run_publishers,
    subscribe_session,
)

from tests import servers  # noqa: E402

STEADY_SHARE = 0.6
"""the latency phase publishes at this share of the measured drain rate (below saturation)"""
TARGETS = {"reports_per_s": 5000.0, "p99_ms": 1000.0, "rss_mb": 1024.0, "analysis_ms": 500.0}


def scrape(url: str, timeout: float = 30) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=timeout) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"bench: {what} not reached within {timeout:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - start


def bare_rate(port: int, n: int, seconds: float) -> float:
    """Reports/s a bare paho subscriber drains from a backlog the broker queued for it."""
    subscribe_session(port, "bench-bare", "meshmon")
    sent = run_publishers(port, n, 0, seconds)
    count, took = bare_drain(port, "bench-bare", sent, timeout=600)
    rate = count / max(took, 1e-9)
    print(f"bare paho subscriber: {count}/{sent} reports drained in {took:.1f}s → {rate:,.0f}/s")
    return rate


def drain_rate(
    url: str, expected: int, started: float, timeout: float = 900
) -> tuple[float, float]:
    """Poll the collector's counter while it drains `expected` reports; (reports/s, seconds).

    The rate is taken between 5 % and 95 % of the backlog, so start-up and the tail do
    not blur it; if no poll got through before 5 % (HTTP starved), from `started`."""
    marks: dict[float, float] = {}
    done = 0.0
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError):
            done = scrape(url, timeout=5).get("meshmon_reports_received_total", 0)
        now = time.monotonic()
        for frac in (0.05, 0.95):
            if done >= frac * expected and frac not in marks:
                marks[frac] = now
        if done >= expected:
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"bench: collector drained only {done:.0f}/{expected} reports")
    if marks[0.05] == marks[0.95]:
        print("  (no poll answered before 95 % of the backlog: timing from collector start)")
        return expected / max(marks[0.95] - started, 1e-9), marks[0.95] - started
    return 0.9 * expected / (marks[0.95] - marks[0.05]), time.monotonic() - started


def start_collector(
    work: Path, mq_port: int, influx_port: int
) -> tuple[subprocess.Popen[bytes], str]:
    http_port = servers.free_port()
    cfg = work / "bench.toml"
    cfg.write_text(f"""
log_level = "warning"
[mqtt]
broker = "external"
port = {mq_port}
client_id = "bench-collector"
queue_max = 2000000
[http]
port = {http_port}
[storage]
path = "{work}/bench.sqlite"
queue_max = 5000000
[influxdb]
enabled = true
api = "v1"
url = "http://127.0.0.1:{influx_port}"
database = "bench"
[topology]
link_timeout_s = 3600
""")
    log = open(work / "collector.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "meshmon.cli", "serve", "-c", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    servers.wait_for_http(url + "/healthz", timeout=60)
    return proc, url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=35_000)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each publish phase")
    ap.add_argument("--steady-rate", type=float, default=5000.0,
                    help="reports/s in the latency phase (capped at 60%% of the drain rate)")
    args = ap.parse_args()
    n = args.nodes
    mesh = build_mesh(n)
    print(f"mesh: {n} nodes, {n * 5} directed links, {mesh.undirected_links} node pairs")

    mq = servers.start_mosquitto(extra_conf="max_inflight_messages 1000")
    influx = servers.start_influxdb1()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    collector: subprocess.Popen[bytes] | None = None
    try:
        publish_infos(mq.port, mesh, "meshmon")
        # phase A: the limit — a bare paho subscriber draining a backlog of reports
        bare_per_s = bare_rate(mq.port, n, args.seconds)

        # phase B: the collector draining the same backlog (its session kept by the broker)
        collector, url = start_collector(work, mq.port, influx.port)
        wait_for(lambda: scrape(url).get("meshmon_nodes", 0) >= n, 300, "all infos applied")
        collector.terminate()
        collector.wait(60)
        sent = run_publishers(mq.port, n, 0, args.seconds)
        started = time.monotonic()
        collector, url = start_collector(work, mq.port, influx.port)
        reports_per_s, took = drain_rate(url, sent, started)
        m = scrape(url)
        print(f"collector: {sent} reports drained in {took:.1f}s → {reports_per_s:,.0f}/s "
              f"(rejected {m.get('meshmon_rejected_total', 0):.0f})")

        # phase C: latency at a steady rate below saturation, with live publishers
        def sinks_drained() -> bool:
            queued = [v for k, v in scrape(url).items()
                      if k.startswith("meshmon_sink_queue_depth")]
            return bool(queued) and max(queued) < 5000

        waited = wait_for(sinks_drained, 600, "every sink's backlog written")
        print(f"sinks wrote the backlog {waited:.0f}s after the collector's drain")
        rate = min(args.steady_rate, STEADY_SHARE * reports_per_s)
        steady_s = max(args.seconds, 25000 / rate)  # enough reports to fill the lag window
        run_publishers(mq.port, n, rate, steady_s)
        time.sleep(3)
        m = scrape(url)
        p50 = m.get('meshmon_stored_lag_ms{quantile="0.5",sink="sqlite"}', float("nan"))
        p99 = m.get('meshmon_stored_lag_ms{quantile="0.99",sink="sqlite"}', float("nan"))
        influx_lag = {k: v for k, v in m.items()
                      if k.startswith("meshmon_stored_lag_ms") and 'sink="sqlite"' not in k}
        ip50 = next((v for k, v in influx_lag.items() if 'quantile="0.5"' in k), float("nan"))
        ip99 = next((v for k, v in influx_lag.items() if 'quantile="0.99"' in k), float("nan"))
        print(f"publish→stored at {rate:,.0f} reports/s for {steady_s:.0f}s: "
              f"SQLite p50 {p50:.0f} ms p99 {p99:.0f} ms; InfluxDB p50 {ip50:.0f} ms "
              f"p99 {ip99:.0f} ms")

        wait_for(lambda: "meshmon_analysis_duration_ms" in scrape(url), 90, "an analysis run")
        m = scrape(url)
        analysis_ms = m["meshmon_analysis_duration_ms"]
        rss = rss_mb(collector.pid)
        print(f"collector RSS now {rss_mb(collector.pid, 'VmRSS'):.0f} MB, "
              f"peak {rss:.0f} MB (while draining the backlog) with "
              f"{m.get('meshmon_nodes', 0):.0f} nodes / "
              f"{m.get('meshmon_links', 0):.0f} directed links; analysis {analysis_ms:.0f} ms "
              f"({m.get('meshmon_components', 0):.0f} components, "
              f"{m.get('meshmon_articulation_points', 0):.0f} articulation points, "
              f"{m.get('meshmon_bridges', 0):.0f} bridges)")
        points = servers.influx_query(influx, "bench", "SELECT count(uptime_s) FROM node")
        stored = points["results"][0]["series"][0]["values"][0][1]
        print(f"InfluxDB holds {stored} node points; collector dropped "
              f"{m.get('meshmon_ingest_dropped_total', 0):.0f} messages, sinks dropped "
              f"{sum(v for k, v in m.items() if k.startswith('meshmon_sink_dropped_total')):.0f}")
        ratio = reports_per_s / bare_per_s
        for key, value, better in (("reports_per_s", reports_per_s, "≥"),
                                   ("p99_ms", p99, "≤"), ("rss_mb", rss, "≤"),
                                   ("analysis_ms", analysis_ms, "≤")):
            target = TARGETS[key]
            ok = value >= target if better == "≥" else value <= target
            print(f"  {key:14s} {value:10.0f}   target {better} {target:.0f}   "
                  f"{'ok' if ok else 'MISSED'}")
        print(f"RESULT reports_per_s={reports_per_s:.0f} bare_per_s={bare_per_s:.0f} "
              f"ratio={ratio:.2f} p99_ms={p99:.0f} rss_mb={rss:.0f} analysis_ms={analysis_ms:.0f}")
    finally:
        if collector is not None:
            collector.terminate()
            try:
                collector.wait(30)
            except subprocess.TimeoutExpired:
                collector.kill()
        mq.stop()
        influx.stop()


if __name__ == "__main__":
    main()
