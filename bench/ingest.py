"""Ingest benchmark: N simulated nodes → real Mosquitto → `meshmon serve` (graph + SQLite +
InfluxDB v1), as one process (`--role all`) and as a core with N writers.

    python bench/ingest.py [--nodes 35000] [--seconds 10] [--writers 2]
                           [--phases bare,influx,drain,steady] [--across-boundary]
                           [--storage-worker thread|process] [--influxdb-defaults]

InfluxDB runs as docs/scaling.md advises for meshmon (`influxalone.TUNED_DATA_CONF`: a
larger cache snapshot); `--influxdb-defaults` runs it with its own defaults.
`--phases drain` (with `--writers 0`) is the short probe of HTTP during the drain: the
phases left out print no figure (nan).

Measured in the same run, for `all` and for `core` + N `writer` processes:
* sustained reports/s: a backlog the broker queued for the collector's persistent session,
  drained (the core's and the writers' rates apart) — next to a bare paho subscriber
  draining the same kind of backlog (phase A) and the ratio, and to InfluxDB storing as
  many reports' lines with nothing else running (`influxalone`): the most `all` can
  drain while it keeps every point; and the CPU each process used meanwhile (the
  collector, the writers, Mosquitto, InfluxDB, the benchmark), in cores;
* publish→stored p50/p99 (every store: SQLite, InfluxDB) at guifi.net's rate (1,170
  reports/s) and at twice that: of the reports each store wrote during that phase only
  (`meshmon_stored_within_total` read before and after it), as the lag bound that holds
  the quantile (an upper bound: 0.1, 0.2, … 1, 1.25, 1.5, 2 s …);
  with `--across-boundary` the 1,170/s phase spans a 5-minute boundary, after which every
  history series closes a bucket (~245,000 at 35,000 nodes);
* last will → webhook p99 while the double rate runs: nodes with a will are cut one by
  one (their socket closed, the broker publishes the will) and the collector's webhook is
  timed;
* HTTP p99 of /healthz, /metrics, the API and a page while ingest runs (the drain: the
  collector saturated); a request that times out counts as its timeout and is reported —
  a slow scrape never ends the benchmark;
* the collector's peak RSS (with `--storage-worker process`, the sum of its processes'
  peaks, and their PSS after the phases) and its topology analysis time.

Last line: RESULT reports_per_s=… bare_per_s=… ratio=… p99_ms=… rss_mb=… analysis_ms=…
http_p99_ms=… lwt_p99_ms=…  (the `all` role; p99_ms at 1,170 reports/s)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from influxalone import TUNED_DATA_CONF, store_alone  # noqa: E402
from loadgen import (  # noqa: E402
    Mesh,
    bare_drain,
    build_mesh,
    mac_of,
    publish_infos,
    run_publishers,
    subscribe_session,
)
from procstat import (  # noqa: E402
    descendants,
    pss_mb,
    rss_mb,
    tree_cpu_s,
    tree_pss_mb,
    tree_rss_mb,
)

from tests import servers  # noqa: E402

GUIFI_RATE = 1170.0
"""35,000 nodes reporting every 30 s"""
TARGETS = {"all": 4000.0, "core": 5000.0, "ratio_core": 0.5, "p99_ms": 1000.0,
           "lwt_p99_ms": 1000.0, "http_p99_ms": 100.0, "rss_mb": 1024.0,
           "analysis_ms": 500.0}
HTTP_PATHS = ("/healthz", "/metrics", "/api/v1/outages", "/api/v1/nodes/n00001", "/")
HTTP_TIMEOUT_S = 5.0
INFLUX_ALONE_ROUNDS = 4
"""InfluxDB alone stores this many reports per node (about a drain's backlog)"""
LWT_NODES = 16
LWT_SPACING_S = 0.6
"""between two cut nodes: more than the alert group wait (0.5 s), one outage each"""
BUCKET_S = 300
"""the history's bucket: every series closes one after each boundary (`--across-boundary`)"""
BOUNDARY_LEAD_S = 3.0
PHASE_REPORTS = 20_000
"""each steady phase publishes at least this many reports (as long as in earlier records)"""
WRITE_COUNTERS = {"meshmon_sink_writes_total": "writes",
                  "meshmon_sink_write_seconds_total": "write_s"}
LAG_COUNTER = "meshmon_stored_within_total"
"""reports stored within `le` seconds of their ts, cumulative (meshmon.sinks.lag): the
difference of two reads gives one phase's lags, whatever was stored before it"""


def say(text: str) -> None:
    print(text, flush=True)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scrape(url: str, timeout: float = 10) -> dict[str, float]:
    """/metrics as {series: value}; {} when it does not answer in time."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"bench: {what} not reached within {timeout:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - start


# ---------------------------------------------------------------------- probes
class HttpProbe:
    """Times GETs of the collector's pages in a thread while ingest runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.by_path: dict[str, list[float]] = {path: [] for path in HTTP_PATHS}
        """each path's answer times, ms (a timeout counts as HTTP_TIMEOUT_S)"""
        self.timeouts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HttpProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(HTTP_TIMEOUT_S + 1)

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            path = HTTP_PATHS[k % len(HTTP_PATHS)]
            k += 1
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url + path, timeout=HTTP_TIMEOUT_S) as r:
                    r.read()
            except OSError:
                self.timeouts += 1  # counted as its timeout below
                self.by_path[path].append(HTTP_TIMEOUT_S * 1000)
                continue
            self.by_path[path].append((time.perf_counter() - t0) * 1000)
            self._stop.wait(0.05)

    @property
    def times_ms(self) -> list[float]:
        """Every answer time, ms, whatever the path."""
        return [ms for times in self.by_path.values() for ms in times]

    def summary(self) -> str:
        times_ms = self.times_ms
        return (f"{len(times_ms)} requests ({', '.join(HTTP_PATHS)}): p50 "
                f"{quantile(times_ms, 0.5):.0f} ms, p99 {quantile(times_ms, 0.99):.0f}"
                f" ms, max {max(times_ms, default=float('nan')):.0f} ms, "
                f"{self.timeouts} over {HTTP_TIMEOUT_S:.0f} s; p50/p99 by path: "
                + ", ".join(f"{path} {quantile(times, 0.5):.0f}/{quantile(times, 0.99):.0f}"
                            for path, times in self.by_path.items()))


class Webhook:
    """The collector's webhook notifier target: when each outage alert arrived."""

    def __init__(self) -> None:
        self.firing: dict[str, float] = {}
        """node → arrival time of the first firing outage alert naming it as a cause"""
        self.received = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.time()
                self.send_response(200)
                self.end_headers()
                hook.received += 1
                alert = json.loads(body or b"{}")
                if alert.get("kind") == "outage" and alert.get("status") == "firing":
                    for node in (alert.get("cause") or {}).get("nodes", []):
                        hook.firing.setdefault(node, now)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()


class WillNodes:
    """Nodes with a last will (not among the publishers' nodes), each linked to a mesh
    node; `cut` one closes its socket without DISCONNECT: the broker sends its will."""

    def __init__(self, port: int, mesh: Mesh, prefix: str, tag: str) -> None:
        self.clients: list[tuple[str, paho.Client]] = []
        self.peers: dict[str, str] = {}
        self.cut_at: dict[str, float] = {}
        for i in range(LWT_NODES):
            node = f"lwt-{tag}-{i:02d}"
            base = f"{prefix}/v1/node/{node}"
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{node}")
            client.will_set(f"{base}/status", json.dumps({"v": 1, "node": node,
                                                          "online": False}), 1, True)
            client.connect("127.0.0.1", port, keepalive=60)
            client.loop_start()
            peer = i * 997 % len(mesh.ids)
            self.peers[node] = mesh.ids[peer]
            client.publish(f"{base}/status", json.dumps(
                {"v": 1, "node": node, "online": True, "ts": time.time()}), 1, True)
            client.publish(f"{base}/info", json.dumps(
                {"v": 1, "node": node, "interval_s": 30}), 1, True)
            client.publish(f"{base}/report", json.dumps({
                "v": 1, "node": node, "ts": time.time(), "seq": 1, "interval_s": 30,
                "links": [{"peer_mac": mac_of(peer), "iface": "wlan0", "kind": "wifi",
                           "signal_dbm": -60}]}), 1).wait_for_publish(10)
            self.clients.append((node, client))

    def known(self, url: str) -> bool:
        """Whether the collector has applied every will node's report (its link)."""
        for node, peer in self.peers.items():
            try:
                with urllib.request.urlopen(f"{url}/api/v1/nodes/{node}", timeout=10) as r:
                    if f'"{peer}"'.encode() not in r.read():
                        return False
            except OSError:
                return False
        return True

    def cut_all(self, spacing_s: float) -> None:
        """Cut every node, `spacing_s` apart (run in a thread during the load)."""
        for node, client in self.clients:
            client._thread_terminate = True  # no reconnect (what loop_stop would set)
            sock = client.socket()
            self.cut_at[node] = time.time()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            time.sleep(spacing_s)

    def latencies_ms(self, hook: Webhook) -> tuple[list[float], int]:
        """(cut → webhook per node that alerted, how many never alerted)."""
        got = [(hook.firing[n] - t) * 1000 for n, t in self.cut_at.items() if n in hook.firing]
        return got, len(self.cut_at) - len(got)

    def close(self) -> None:
        for _, client in self.clients:
            client.loop_stop()


def forget_session(port: int, client_id: str) -> None:
    """Connect with a clean session and leave: the broker drops what it kept for it."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


# ---------------------------------------------------------------------- processes
@dataclass
class Process:
    """One `meshmon serve --role ROLE` process with its config file."""

    role: str
    work: Path
    config: str
    http_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        path = self.work / f"{self.role}-{self.http_port}.toml"
        path.write_text(self.config)
        log = open(self.work / f"{self.role}-{self.http_port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshmon.cli", "serve", "-c", str(path), "--role", self.role],
            stdout=log, stderr=subprocess.STDOUT)
        servers.wait_for_http(self.url + "/healthz", timeout=120, proc=self.proc)

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (a writer then leaves its share group), or SIGKILL (its session stays
        with the broker, which queues its share)."""
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def process_config(role: str, work: Path, name: str, mq_port: int, influx_port: int,
                   database: str, hook_url: str, worker: str = "thread") -> Process:
    http_port = servers.free_port()
    text = f"""
log_level = "warning"
[mqtt]
broker = "external"
port = {mq_port}
client_id = "bench-{name}"
queue_max = 2000000
[http]
port = {http_port}
[storage]
path = "{work}/{name}.sqlite"
queue_max = 5000000
worker = "{worker}"
[influxdb]
enabled = true
api = "v1"
url = "http://127.0.0.1:{influx_port}"
database = "{database}"
[topology]
link_timeout_s = 3600
offline_after_s = 3600
[[notifiers]]
name = "hook"
type = "webhook"
url = "{hook_url}"
timeout_s = 2
"""
    return Process(role, work, text, http_port)


@dataclass
class Setup:
    """One way to run the collector: `all`, or a core and writers."""

    name: str
    collector: Process
    """the process with the graph, health, alerts, SQLite and HTTP"""
    writers: list[Process] = field(default_factory=list)

    @property
    def processes(self) -> list[Process]:
        return [self.collector, *self.writers]

    def start(self) -> None:
        threads = [threading.Thread(target=p.start) for p in self.processes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def stop(self, keep_sessions: bool = False) -> None:
        """Stop every process; `keep_sessions`: writers are killed, so that the broker
        keeps queueing their share (stopped cleanly they leave the group)."""
        for p in self.processes:
            p.stop(kill=keep_sessions and p.role == "writer")

    def forget_sessions(self, port: int) -> None:
        """End the broker's sessions of these processes (it would queue for them on)."""
        for p in self.processes:
            client_id = p.config.split('client_id = "')[1].split('"')[0]
            for suffix in ("", "-control"):
                forget_session(port, client_id + suffix)

    def received(self, of: list[Process]) -> float:
        return sum(scrape(p.url, timeout=HTTP_TIMEOUT_S).get(
            "meshmon_reports_received_total", 0) for p in of)

    def store_counters(self) -> dict[str, dict[str, float]]:
        """Each store's counters so far, summed over the processes that hold it (the
        collector's SQLite, InfluxDB of the processes that write the time series): its
        reports stored within each lag bound (key: the bound in s, cumulative), its
        writes and their summed duration ("writes", "write_s")."""
        out: dict[str, dict[str, float]] = {}
        writers_of_series = self.writers or [self.collector]
        for p in [self.collector, *self.writers]:
            for key, value in scrape(p.url).items():
                name = key.split("{", 1)[0]
                if name == LAG_COUNTER:
                    what = key.split('le="', 1)[1].split('"', 1)[0]
                elif name in WRITE_COUNTERS:
                    what = WRITE_COUNTERS[name]
                else:
                    continue
                sink = "sqlite" if 'sink="sqlite"' in key else "influxdb"
                if sink == "influxdb" and p not in writers_of_series:
                    continue  # the core's InfluxDB sink writes events only
                counts = out.setdefault(sink, {})
                counts[what] = counts.get(what, 0.0) + value
        return out


def phase_lag(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]],
              q: float) -> dict[str, float]:
    """Each store's q-quantile (ms) of the reports it stored between two reads: the
    smallest lag bound that holds a q share of them (an upper bound; inf beyond the
    largest, and inf for a store that stored nothing meanwhile: it was behind)."""
    out: dict[str, float] = {}
    for sink, counts in after.items():
        base = before.get(sink, {})
        delta = sorted((float(b), n - base.get(b, 0.0)) for b, n in counts.items()
                       if b not in WRITE_COUNTERS.values())
        total = delta[-1][1] if delta else 0.0
        if total <= 0:
            out[sink] = float("inf")
            continue
        out[sink] = next((b * 1000 for b, n in delta if n >= q * total), float("inf"))
    return out


def phase_writes(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]],
                 seconds: float) -> str:
    """Each store's writes between two reads: how many per s, the mean write, and the
    mean number of reports per write."""
    parts = []
    for sink, counts in sorted(after.items()):
        base = before.get(sink, {})
        writes = counts.get("writes", 0.0) - base.get("writes", 0.0)
        took = counts.get("write_s", 0.0) - base.get("write_s", 0.0)
        reports = counts.get("+Inf", 0.0) - base.get("+Inf", 0.0)
        if writes > 0:
            parts.append(f"{sink} {writes / seconds:.1f} writes/s of {reports / writes:.0f} "
                         f"reports, {took / writes * 1000:.0f} ms each")
    return "; ".join(parts)


@dataclass
class Figures:
    drain_per_s: float = 0.0
    series_per_s: float = 0.0
    """the writers' drain rate (core + writers), or the same as drain_per_s"""
    lag: dict[float, tuple[float, float]] = field(default_factory=dict)
    """rate → (p50, p99) ms over every store"""
    lwt_p99_ms: float = float("nan")
    http_p99_ms: float = float("nan")
    rss_mb: float = 0.0
    analysis_ms: float = float("nan")


class CpuShares:
    """The CPU each process of the machine's set-up used between two marks, in cores:
    what the collector's drain shared the machine's cores with."""

    def __init__(self, cpu_of: dict[str, Callable[[], float]]) -> None:
        self.cpu_of = cpu_of
        """name → its CPU time so far (s)"""
        self.marks: list[tuple[float, dict[str, float]]] = []

    def mark(self) -> None:
        self.marks.append((time.monotonic(),
                           {name: cpu() for name, cpu in self.cpu_of.items()}))

    def summary(self) -> str:
        (t0, first), (t1, last) = self.marks[0], self.marks[-1]
        cores = {name: (last[name] - first[name]) / (t1 - t0) for name in first}
        return (", ".join(f"{name} {used:.2f}" for name, used in cores.items())
                + f"; {sum(cores.values()):.2f} of {os.cpu_count()} cores in all")


def trees_cpu_s(pids: list[int]) -> Callable[[], float]:
    """The CPU time so far of these processes and their descendants."""
    return lambda: sum(tree_cpu_s(pid) for pid in pids)


def drain(setup: Setup, sent: int, started: float, others: dict[str, int]
          ) -> tuple[float, float, HttpProbe]:
    """Time the backlog's drain: (collector's reports/s, writers' reports/s, HTTP probe);
    say the CPU each process used meanwhile (`others`: the broker's, InfluxDB's pids).

    Each rate is taken between 5 % and 95 % of the backlog so start-up and the tail do
    not blur it."""
    groups = {"collector": [setup.collector], "writers": setup.writers or [setup.collector]}
    marks: dict[tuple[str, float], float] = {}
    roles = {setup.name.split()[0]: [setup.collector]}
    if setup.writers:
        roles["writers"] = setup.writers
    shares = CpuShares({**{name: trees_cpu_s([p.proc.pid for p in ps if p.proc is not None])
                           for name, ps in roles.items()},
                        **{name: trees_cpu_s([pid]) for name, pid in others.items()},
                        "this benchmark": time.process_time})  # its own: not its children
    done = dict.fromkeys(groups, 0.0)
    with HttpProbe(setup.collector.url) as probe:
        while time.monotonic() - started < 900:
            for name, procs in groups.items():
                got = setup.received(procs)
                done[name] = max(done[name], got)
                now = time.monotonic()
                for frac in (0.05, 0.95):
                    if done[name] >= frac * sent and (name, frac) not in marks:
                        marks[(name, frac)] = now
                        if name == "collector":
                            shares.mark()
            if all(v >= sent for v in done.values()):
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"bench: drained only {done} of {sent} reports")
    say(f"CPU while {setup.name.split()[0]} drained 5–95 % of the backlog (cores): "
        f"{shares.summary()}")
    rates = []
    for name in groups:
        span = marks[(name, 0.95)] - marks[(name, 0.05)]
        rates.append(0.9 * sent / span if span > 0 else sent / (marks[(name, 0.95)] - started))
    return rates[0], rates[1], probe


def run_setup(setup: Setup, mq: servers.Server, influx: servers.Server, mesh: Mesh,
              args: argparse.Namespace, hook: Webhook) -> Figures:
    n = len(mesh.ids)
    fig = Figures()
    say(f"--- {setup.name}")
    setup.start()  # sessions made; the retained infos applied
    wait_for(lambda: scrape(setup.collector.url).get("meshmon_nodes", 0) >= n, 300,
             "all infos applied")
    setup.stop(keep_sessions=True)  # the broker queues the backlog for every session
    sent = run_publishers(mq.port, n, 0, args.seconds)
    started = time.monotonic()
    setup.start()
    fig.drain_per_s, fig.series_per_s, probe = drain(
        setup, sent, started, {"Mosquitto": mq.proc.pid, "InfluxDB": influx.proc.pid})
    fig.http_p99_ms = quantile(probe.times_ms, 0.99)
    m = scrape(setup.collector.url)
    if setup.writers:
        say(f"core: {sent} reports drained at {fig.drain_per_s:,.0f}/s; {len(setup.writers)} "
            f"writers read their shares at {fig.series_per_s:,.0f}/s together (from the "
            "broker; what InfluxDB has not taken yet waits in their memory; each drains its "
            "share while the core drains all; they share this machine's two cores)")
    else:
        say(f"all: {sent} reports drained at {fig.drain_per_s:,.0f}/s "
            f"(rejected {m.get('meshmon_rejected_total', 0):.0f})")
    say(f"HTTP during the drain: {probe.summary()}; {loop_stalls(m)}")

    def sinks_drained() -> bool:
        # nearly empty: the backlog's last reports written in the next phase would count
        # there with their age (5,000 left over held up to 1 % of that phase's reports)
        queued = [v for p in setup.processes for k, v in scrape(p.url).items()
                  if k.startswith("meshmon_sink_queue_depth")]
        return bool(queued) and max(queued) < SINK_LEFT_OVER

    waited = wait_for(sinks_drained, 600, "every sink's backlog written")
    say(f"sinks wrote the backlog {waited:.0f}s after the drain")
    if "steady" in args.phases:
        steady_phases(setup, mq, mesh, args, hook, fig)
    return finish(setup, fig)


SINK_LEFT_OVER = 100
"""the backlog counts as written once every sink holds fewer reports than this"""


def steady_phases(setup: Setup, mq: servers.Server, mesh: Mesh, args: argparse.Namespace,
                  hook: Webhook, fig: Figures) -> None:
    """Publish→stored and HTTP at 1,170 and 2,340 reports/s; last wills during the
    second."""
    n = len(mesh.ids)
    wills = WillNodes(mq.port, mesh, "meshmon", setup.name.split()[0])
    try:
        # a node's will is an outage once the core has its report (behind any backlog)
        wait_for(lambda: wills.known(setup.collector.url), 300, "the will nodes' reports")
        for rate in (GUIFI_RATE, 2 * GUIFI_RATE):
            seconds = max(args.seconds, PHASE_REPORTS / rate + 2)
            if args.across_boundary and rate == GUIFI_RATE:
                # every node reports once after the boundary: each series closes the
                # 5-minute bucket it had open, within that phase
                seconds = max(seconds, n / rate + BOUNDARY_LEAD_S + 5)
                wait = (-time.time() - BOUNDARY_LEAD_S) % BUCKET_S
                say(f"waiting {wait:.0f}s for the phase to start "
                    f"{BOUNDARY_LEAD_S:g}s before a 5-minute boundary")
                time.sleep(wait)
            cutter = None
            if rate > GUIFI_RATE:
                cutter = threading.Thread(target=wills.cut_all, args=(LWT_SPACING_S,))
            before = setup.store_counters()
            phase_start = time.monotonic()
            with HttpProbe(setup.collector.url) as steady_probe:
                if cutter is not None:
                    threading.Timer(1.0, cutter.start).start()
                run_publishers(mq.port, n, rate, seconds)
                time.sleep(2)
            after = setup.store_counters()
            phase_s = time.monotonic() - phase_start
            p50 = phase_lag(before, after, 0.5)
            p99 = phase_lag(before, after, 0.99)
            fig.lag[rate] = (max(p50.values(), default=float("nan")),
                             max(p99.values(), default=float("nan")))
            say(f"publish→stored at {rate:,.0f} reports/s for {seconds:.0f}s (reports stored "
                "in this phase; a quantile is the lag bound that holds it): " + "; ".join(
                lag_text(sink, p50[sink], p99.get(sink, float("nan"))) for sink in sorted(p50))
                + f"; HTTP {steady_probe.summary()}")
            say(f"  writes in that phase: {phase_writes(before, after, phase_s)}")
            fig.http_p99_ms = max(fig.http_p99_ms, quantile(steady_probe.times_ms, 0.99))
            if cutter is not None:
                cutter.join()
        time.sleep(2)
        lats, missing = wills.latencies_ms(hook)
        fig.lwt_p99_ms = quantile(lats, 0.99) if not missing else float("inf")
        say(f"last will → webhook during {2 * GUIFI_RATE:,.0f} reports/s: {len(lats)} of "
            f"{len(wills.cut_at)} cut nodes alerted, p50 {quantile(lats, 0.5):.0f} ms, "
            f"p99 {quantile(lats, 0.99):.0f} ms, max {max(lats, default=float('nan')):.0f} ms"
            + (f"; {missing} never alerted" if missing else ""))
    finally:
        wills.close()


def finish(setup: Setup, fig: Figures) -> Figures:
    """The collector's RSS, analysis time and drops, once the phases ran."""
    wait_for(lambda: "meshmon_analysis_duration_ms" in scrape(setup.collector.url), 90,
             "an analysis run")
    m = scrape(setup.collector.url)
    fig.analysis_ms = m["meshmon_analysis_duration_ms"]
    assert setup.collector.proc is not None
    pid = setup.collector.proc.pid
    fig.rss_mb = tree_rss_mb(pid)  # with its SQLite worker process and the fork server
    writers_rss = [tree_rss_mb(w.proc.pid) for w in setup.writers if w.proc is not None]
    procs = [pid, *descendants(pid)]
    parts = ", ".join(f"{rss_mb(p):.0f}" for p in procs)
    say(f"{setup.collector.role} RSS now {tree_rss_mb(pid, 'VmRSS'):.0f} MB "
        f"(PSS {tree_pss_mb(pid):.0f} MB: {', '.join(f'{pss_mb(p):.0f}' for p in procs)}), "
        f"peak {fig.rss_mb:.0f} MB (the sum of its processes' peaks: {parts}) with "
        f"{m.get('meshmon_nodes', 0):.0f} nodes / "
        f"{m.get('meshmon_links', 0):.0f} directed links; analysis {fig.analysis_ms:.0f} ms"
        + (f"; writers' peak RSS {', '.join(f'{r:.0f}' for r in writers_rss)} MB"
           if writers_rss else ""))
    dropped = sum(v for p in setup.processes for k, v in scrape(p.url).items()
                  if k.startswith(("meshmon_sink_dropped_total", "meshmon_ingest_dropped_total")))
    say(f"dropped (ingest queue, sinks): {dropped:.0f}")
    if setup.writers:
        # the backlog is made by killing the writers: one back 3 s before the other stands
        # in for it until it is back (docs/scaling.md)
        stand_ins = sum(scrape(w.url).get("meshmon_writer_stand_ins_total", 0)
                        for w in setup.writers)
        say(f"writers' stand-ins for a killed writer: {stand_ins:.0f}")
    return fig


def loop_stalls(m: dict[str, float]) -> str:
    """The collector's event-loop stalls so far (meshmon_loop_stalls_total)."""
    def held(le: str) -> float:
        return m.get(f'meshmon_loop_stalls_total{{le="{le}"}}', 0.0)
    over = held("+Inf")
    return (f"loop held > 50 ms {over - held('0.05'):.0f} times, > 100 ms "
            f"{over - held('0.1'):.0f} times, longest "
            f"{m.get('meshmon_loop_stall_max_seconds', float('nan')) * 1000:.0f} ms")


def lag_text(sink: str, p50_ms: float, p99_ms: float) -> str:
    """One store's publish→stored quantiles of a phase, or that it stored nothing."""
    if p50_ms == float("inf"):
        return f"{sink} stored nothing in this phase (behind)"
    return f"{sink} p50 ≤ {p50_ms:.0f} ms p99 ≤ {p99_ms:.0f} ms"


def verdict(value: float, target: float, at_least: bool) -> str:
    ok = value >= target if at_least else value <= target
    if ok:
        return "ok"
    return f"MISSED by {(target / value if at_least else value / target):.1f}×"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=35_000)
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="publishing time of each backlog (and the least of each steady phase)")
    ap.add_argument("--writers", type=int, default=2, help="writers beside the core (0: "
                    "only `all`)")
    ap.add_argument("--phases", default="bare,influx,drain,steady",
                    help="what to run, of bare (the bare subscriber), influx (InfluxDB "
                    "alone), drain (each setup's backlog, always run) and steady (1,170 "
                    "and 2,340 reports/s, last wills)")
    ap.add_argument("--across-boundary", action="store_true",
                    help="start the 1,170 reports/s phase just before a 5-minute boundary and "
                    "run it until every node reported after it (each setup waits for one)")
    ap.add_argument("--storage-worker", choices=("thread", "process"), default="thread",
                    help="where the collector does its SQLite work (`[storage] worker`)")
    ap.add_argument("--influxdb-defaults", action="store_true",
                    help="InfluxDB with its own defaults, not as docs/scaling.md advises")
    args = ap.parse_args()
    args.phases = set(args.phases.split(","))
    n = args.nodes
    mesh = build_mesh(n)
    say(f"mesh: {n} nodes, {n * 5} directed links, {mesh.undirected_links} node pairs; "
        f"InfluxDB {'defaults' if args.influxdb_defaults else TUNED_DATA_CONF}")

    mq = servers.start_mosquitto(
        extra_conf="max_inflight_messages 1000\nmax_queued_messages 5000000")
    influx = servers.start_influxdb1(data_conf="" if args.influxdb_defaults
                                     else TUNED_DATA_CONF)
    hook = Webhook()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    setups: list[Setup] = []
    results: dict[str, Figures] = {}
    try:
        publish_infos(mq.port, mesh, "meshmon")
        # phase A: the limit — a bare paho subscriber draining a backlog of reports
        bare_per_s = float("nan")
        if "bare" in args.phases:
            subscribe_session(mq.port, "bench-bare", "meshmon")
            sent = run_publishers(mq.port, n, 0, args.seconds)
            count, took = bare_drain(mq.port, "bench-bare", sent, timeout=600)
            bare_per_s = count / max(took, 1e-9)
            forget_session(mq.port, "bench-bare")
            say(f"bare paho subscriber: {count}/{sent} reports drained in {took:.1f}s → "
                f"{bare_per_s:,.0f}/s")
        # the limit of `all` with InfluxDB: InfluxDB storing a drain's worth of reports
        influx_per_s = float("nan")
        if "influx" in args.phases:
            alone = store_alone(influx.port, "bench_alone", mesh, INFLUX_ALONE_ROUNDS * n)
            influx_per_s = alone.reports_per_s
            say(f"InfluxDB alone: {alone.reports} reports ({alone.points} points) stored in "
                f"{alone.seconds:.1f}s → {alone.reports_per_s:,.0f} reports/s "
                f"({alone.points_per_s:,.0f} points/s)")

        def make(role: str, name: str, database: str) -> Process:
            return process_config(role, work, name, mq.port, influx.port, database, hook.url,
                                  args.storage_worker)

        setups.append(Setup("all", make("all", "all", "bench_all")))
        if args.writers:
            setups.append(Setup(f"core + {args.writers} writers",
                                make("core", "core", "bench_roles"),
                                [make("writer", f"writer-{i}", "bench_roles")
                                 for i in range(args.writers)]))
        for setup in setups:
            results[setup.name] = run_setup(setup, mq, influx, mesh, args, hook)
            setup.stop()
            setup.forget_sessions(mq.port)

        say("--- summary")
        for name, fig in results.items():
            target = TARGETS["core" if name != "all" else "all"]
            say(f"{name:22s} drain {fig.drain_per_s:7,.0f}/s ({fig.drain_per_s / bare_per_s:.2f}"
                f" of bare)  target ≥ {target:,.0f}  {verdict(fig.drain_per_s, target, True)}")
            if name == "all":
                say(f"{'':22s} InfluxDB alone stores {influx_per_s:7,.0f}/s here: all drains "
                    f"{fig.drain_per_s / influx_per_s:.2f} of it")
            else:
                say(f"{'':22s} writers read {fig.series_per_s:7,.0f}/s from the broker")
            for rate, (p50, p99) in fig.lag.items():
                say(f"{'':22s} publish→stored at {rate:,.0f}/s p50 ≤ {p50:.0f} ms "
                    f"p99 ≤ {p99:.0f} ms"
                    + (f"  target ≤ 1000  {verdict(p99, 1000, False)}" if rate == GUIFI_RATE
                       else ""))
            say(f"{'':22s} last will → webhook p99 {fig.lwt_p99_ms:.0f} ms  target ≤ 1000  "
                f"{verdict(fig.lwt_p99_ms, 1000, False)}")
            say(f"{'':22s} HTTP p99 {fig.http_p99_ms:.0f} ms  target ≤ 100  "
                f"{verdict(fig.http_p99_ms, 100, False)}")
            say(f"{'':22s} RSS {fig.rss_mb:.0f} MB  target ≤ 1024  "
                f"{verdict(fig.rss_mb, 1024, False)}; analysis {fig.analysis_ms:.0f} ms")
        fig = results["all"]
        p99_ms = fig.lag.get(GUIFI_RATE, (0.0, float("nan")))[1]
        say(f"RESULT reports_per_s={fig.drain_per_s:.0f} bare_per_s={bare_per_s:.0f} "
            f"ratio={fig.drain_per_s / bare_per_s:.2f} p99_ms={p99_ms:.0f} "
            f"rss_mb={fig.rss_mb:.0f} analysis_ms={fig.analysis_ms:.0f} "
            f"http_p99_ms={fig.http_p99_ms:.0f} lwt_p99_ms={fig.lwt_p99_ms:.0f}")
    finally:
        for setup in setups:
            setup.stop()
        hook.close()
        mq.stop()
        influx.stop()


if __name__ == "__main__":
    main()
