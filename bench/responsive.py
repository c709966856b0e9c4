"""Last will → webhook and HTTP latency while ingest is saturated, in one process, with
timestamps along the way (a benchmark, not a test).

    python bench/responsive.py [--nodes 35000] [--rate 2340] [--seconds 20] [--trace]

Starts Mosquitto, publishes retained info for a mesh of N nodes (`bench/loadgen.py`),
runs the real `Service` in this process with a webhook notifier, then publishes reports
at `--rate` (0: as fast as the publishers can) for `--seconds` while 16 nodes with a last
will are cut one by one (their socket closed: the broker publishes the will) and a thread
times HTTP GETs of `/healthz`, `/metrics`, the API and the map page. `--trace` adds the
longest event-loop callbacks (each timed) to the output.

Printed: for each cut node the time from the cut to its status applied, its outage
pending, confirmed, handed to delivery and at the webhook (p50/p99 of each step); the
event loop's lag (a 10 ms timer's overshoot), the tick's duration and each detector's;
HTTP p50/p99. Last line: RESULT lwt_p99_ms=… http_p99_ms=… lag_p99_ms=…
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import HttpProbe, Webhook, WillNodes, quantile  # noqa: E402
from loadgen import (  # noqa: E402
    Mesh,
    build_mesh,
    publish_infos,
    run_publishers,
)

from meshmon.config import Config  # noqa: E402
from meshmon.model.health import Health  # noqa: E402
from meshmon.model.health.incidents import Change  # noqa: E402
from meshmon.model.health.outage import OutageDetector  # noqa: E402
from meshmon.runtime import run_freezing_survivors, tune_runtime  # noqa: E402
from meshmon.service import Service  # noqa: E402
from tests import servers  # noqa: E402

LWT_SPACING_S = 0.6
STEPS = ("status", "pending", "confirmed", "submitted", "sending", "webhook")


class Trace:
    """Timestamps (wall clock) of each will node's way to the webhook, and loop timings."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = defaultdict(dict)
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.slow: list[tuple[float, str]] = []

    def mark(self, node: str, step: str) -> None:
        if node.startswith("lwt-"):
            self.at[node].setdefault(step, time.time())

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        durations = self.durations[name]

        cpu = self.durations[name + " (CPU)"]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                durations.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)

        return wrapper


def instrument(service: Service, trace: Trace) -> None:
    """Wrap the steps of the way from a will to the webhook (this process only)."""
    control = service.ingest.control if service.ingest else None
    assert control is not None
    received = control.on_messages

    def on_control(batch: list[Any]) -> None:
        for topic, *_ in batch:
            if topic.endswith("/status"):
                trace.mark(topic.split("/")[-2], "status")
        received(batch)

    control.on_messages = on_control
    book = service.core.health.book
    add = book.add

    def book_add(inc: Any) -> None:
        for n in inc.cause_nodes:
            trace.mark(n, "pending")
        add(inc)

    book.add = book_add  # type: ignore[method-assign]
    take = book.take_changes

    def take_changes() -> list[Change]:
        changes = take()
        for c in changes:
            if c.what == "opened" and c.incident.kind == "outage":
                for n in c.incident.cause_nodes:
                    trace.mark(n, "confirmed")
        return changes

    book.take_changes = take_changes  # type: ignore[method-assign]
    dispatcher = service.alerting.dispatcher
    submit = dispatcher.submit

    def submitted(notifier: str, alert: Any, recipient: str | None = None) -> None:
        if alert.kind == "outage" and alert.status == "firing":
            for n in alert.cause_nodes:
                trace.mark(n, "submitted")
        submit(notifier, alert, recipient)

    ingest = service.ingest
    ingest._on_reports = trace.timed("on_batch", ingest._on_reports)
    engine = service.alerting.engine
    engine.submit = submitted  # type: ignore[method-assign]
    for notifier in service.alerting.notifiers.values():
        send = notifier.send

        async def sending(alerts: Any, recipient: str | None = None, send: Any = send) -> None:
            for alert in alerts:
                if alert.kind == "outage" and alert.status == "firing":
                    for n in alert.cause_nodes:
                        trace.mark(n, "sending")
            await send(alerts, recipient)

        notifier.send = sending  # type: ignore[method-assign]
    if service.saver is not None:
        service.saver.save = trace.timed(  # type: ignore[method-assign]
            "StateSaver.save", service.saver.save)
    for follower in service.followers:
        follower.catch_up = trace.timed(  # type: ignore[method-assign]
            f"catch_up {type(follower).__name__}", follower.catch_up)
    core = service.core
    core.tick = trace.timed("core.tick", core.tick)  # type: ignore[method-assign]
    assert service._runner is not None
    for route in service._runner.app.router.routes():
        path = route.resource.canonical if route.resource is not None else "?"
        if path in ("/healthz", "/metrics", "/api/v1/outages", "/api/v1/nodes/{node}", "/"):
            route._handler = timed_handler(trace.durations[f"handler {path}"],
                                           route._handler)
    health: Health = service.core.health
    for detector in health.detectors:
        detector.evaluate = trace.timed(  # type: ignore[method-assign]
            type(detector).__name__, detector.evaluate)


def timed_handler(durations: list[float], handler: Any) -> Any:
    """An HTTP handler timed from its call to its answer (the loop's turns included)."""

    async def timed(request: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await handler(request)
        finally:
            durations.append((time.perf_counter() - t0) * 1000)

    return timed


def trace_gc(trace: Trace) -> None:
    """Time each garbage collection by generation."""
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            trace.durations[f"gc gen{info['generation']}"].append(
                (time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(callback)


def trace_callbacks(trace: Trace, over_ms: float = 30.0) -> None:
    """Time every event-loop callback; keep those over `over_ms` (costly: --trace only)."""
    run = asyncio.events.Handle._run

    def timed_run(self: asyncio.events.Handle) -> None:
        t0 = time.perf_counter()
        run(self)
        took = (time.perf_counter() - t0) * 1000
        if took > over_ms:
            owner = getattr(self._callback, "__self__", None)
            if isinstance(owner, asyncio.Task):
                coro = owner.get_coro()
                what = f"task {owner.get_name()} {getattr(coro, '__qualname__', coro)}"
            else:
                what = repr(self)
            trace.slow.append((took, what[:160]))

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]


async def lag_probe(lags: list[float], stop: asyncio.Event, beat: list[float]) -> None:
    """A 10 ms timer's overshoot: how long the loop was held."""
    while not stop.is_set():
        t0 = time.perf_counter()
        beat[0] = t0
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - t0 - 0.01) * 1000)


IDLE = frozenset({"_worker", "select", "wait", "poll", "_wait_for_tstate_lock"})


class StallSampler:
    """While the loop's heartbeat is older than `over_s`, sample where every other thread
    is (its innermost frames in meshmon/ or the standard library): who holds the loop
    up, the loop itself or a thread taking the GIL."""

    def __init__(self, beat: list[float], over_s: float = 0.1) -> None:
        self.beat = beat
        self.over_s = over_s
        self.samples: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._loop_thread = threading.get_ident()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(0.02):
            if time.perf_counter() - self.beat[0] < self.over_s:
                continue
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                where = []
                f: Any = frame
                while f is not None and len(where) < 3:
                    code = f.f_code
                    if "site-packages" not in code.co_filename:
                        where.append(f"{Path(code.co_filename).name}:{f.f_lineno} "
                                     f"{code.co_name}")
                    f = f.f_back
                if not where or where[0].split()[-1] in IDLE:
                    continue  # waiting for work, not holding anything up
                who = "loop" if ident == self._loop_thread else names.get(ident, "thread")
                self.samples[f"{who}: {' < '.join(where)}"] += 1


def summary(values: list[float]) -> str:
    return (f"p50 {quantile(values, 0.5):.0f} ms, p99 {quantile(values, 0.99):.0f} ms, "
            f"max {max(values, default=float('nan')):.0f} ms (n={len(values)})")


def outside(conn: Connection, port: int, mesh: Mesh) -> None:
    """The will nodes, the webhook and the HTTP probe, in a process of their own (in the
    collector's process their threads would wait for its GIL and time that too)."""
    hook = Webhook()
    conn.send(hook.url)
    url = conn.recv()
    wills = WillNodes(port, mesh, "meshmon", "rsp")
    while not wills.known(url):
        time.sleep(0.2)
    conn.send("ready")
    start_in = conn.recv()
    with HttpProbe(url) as http:
        time.sleep(start_in)
        wills.cut_all(LWT_SPACING_S)
        deadline = time.monotonic() + 10
        while len(hook.firing) < len(wills.cut_at) and time.monotonic() < deadline:
            time.sleep(0.1)
    conn.send((wills.cut_at, dict(hook.firing), http.times_ms, http.summary()))
    wills.close()
    hook.close()


async def run(args: argparse.Namespace) -> dict[str, float]:
    mesh = build_mesh(args.nodes)
    mq = servers.start_mosquitto(
        extra_conf="max_inflight_messages 1000\nmax_queued_messages 5000000")
    conn, child_conn = mp.get_context("fork").Pipe()
    child = mp.get_context("fork").Process(target=outside, args=(child_conn, mq.port, mesh))
    child.start()
    hook_url = conn.recv()
    trace = Trace()
    service: Service | None = None
    gc_task = asyncio.create_task(run_freezing_survivors())
    try:
        await asyncio.to_thread(publish_infos, mq.port, mesh, "meshmon")
        tmp = tempfile.mkdtemp(prefix="bench-responsive-")
        config = Config.model_validate({
            "log_level": "warning",
            "mqtt": {"broker": "external", "port": mq.port, "client_id": "bench-responsive",
                     "queue_max": 2_000_000},
            "http": {"port": 0},
            "storage": {"path": f"{tmp}/responsive.sqlite"},
            "topology": {"link_timeout_s": 3600, "offline_after_s": 3600},
            "notifiers": [{"name": "hook", "type": "webhook", "url": hook_url,
                           "timeout_s": 2}],
        })
        service = Service(config)
        await service.start()
        t0 = time.monotonic()
        while len(service.topology.nodes) < args.nodes:
            await asyncio.sleep(0.1)
        print(f"{args.nodes} infos applied in {time.monotonic() - t0:.1f}s", flush=True)
        # one round of reports so every link exists before the measured phase
        await asyncio.to_thread(run_publishers, mq.port, args.nodes, 0,
                                max(2.0, args.nodes / 5000))
        while service.ingest is not None and service.ingest.queue_depth:
            await asyncio.sleep(0.1)
        conn.send(service.http_url)
        await asyncio.to_thread(conn.recv)  # the will nodes are known
        instrument(service, trace)
        trace_gc(trace)
        if args.trace:
            trace_callbacks(trace)
        lags: list[float] = []
        stop = asyncio.Event()
        beat = [time.perf_counter()]
        probe_task = asyncio.create_task(lag_probe(lags, stop, beat))
        sampler = StallSampler(beat)
        if args.trace:
            sampler.start()
        conn.send(min(3.0, args.seconds / 3))
        sent = await asyncio.to_thread(run_publishers, mq.port, args.nodes, args.rate,
                                       args.seconds)
        cut_at, firing, http_ms, http_summary = await asyncio.to_thread(conn.recv)
        stop.set()
        await probe_task
        sampler.stop()
        received = service.metrics.get("meshmon_reports_received_total")
        print(f"published {sent} reports at {args.rate or 'max'}/s for {args.seconds:.0f}s; "
              f"the collector has received {received:.0f}; queue depth now "
              f"{service.ingest.queue_depth if service.ingest else 0}", flush=True)
        for node, cut in cut_at.items():
            if node in firing:
                trace.at[node]["webhook"] = firing[node]
            trace.at[node]["cut"] = cut
        steps: dict[str, list[float]] = defaultdict(list)
        missing = 0
        for node, cut in cut_at.items():
            at = trace.at[node]
            if "webhook" not in at:
                missing += 1
            for step in STEPS:
                if step in at:
                    steps[step].append((at[step] - cut) * 1000)
            print(f"  {node}: " + ", ".join(
                f"{s} {(at[s] - cut) * 1000:.0f}" for s in STEPS if s in at) + " ms", flush=True)
        for step in STEPS:
            print(f"cut → {step:9s} {summary(steps[step])}")
        if missing:
            print(f"{missing} of {len(cut_at)} cut nodes never alerted")
        print(f"loop lag (10 ms timer overshoot): {summary(lags)}")
        for name, durations in sorted(trace.durations.items()):
            print(f"{name:24s} {summary(durations)}")
        outage = service.core.health.detector(OutageDetector)
        print(f"root cause runs: {getattr(outage, 'searches', '?')} searched from the "
              f"gateways, {getattr(outage, 'searches_saved', '?')} took new failures out of "
              "the last reach")
        print(f"HTTP: {http_summary}")
        if args.trace:
            print("longest callbacks:")
            for took, what in sorted(trace.slow, reverse=True)[:15]:
                print(f"  {took:6.0f} ms  {what}")
            print("where each thread was while the loop stalled (samples every 20 ms):")
            for where, n in sampler.samples.most_common(15):
                print(f"  {n:5d}  {where[:150]}")
        lwt = steps["webhook"]
        return {"lwt_p99_ms": quantile(lwt, 0.99) if not missing else float("inf"),
                "http_p99_ms": quantile(http_ms, 0.99),
                "lag_p99_ms": quantile(lags, 0.99)}
    finally:
        gc_task.cancel()
        if service is not None:
            await service.stop()
        child.join(30)
        if child.is_alive():
            child.kill()
        mq.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=35_000)
    ap.add_argument("--rate", type=float, default=2340.0, help="reports/s (0: flat out)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--trace", action="store_true", help="time every loop callback")
    ap.add_argument("--switch-interval-ms", type=float, default=0.0,
                    help="sys.setswitchinterval for this process (0: the collector's)")
    args = ap.parse_args()
    tune_runtime()
    if args.switch_interval_ms:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    print(f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms", flush=True)
    result = asyncio.run(run(args))
    print("RESULT " + " ".join(f"{k}={v:.0f}" for k, v in result.items()))


if __name__ == "__main__":
    main()
