"""Collector drain rate in one process, for profiling the hot path (a benchmark, not a test).

    python bench/drain.py [--nodes 2000] [--seconds 4] [--influx] [--default-gc] [--cold]
                          [--profile] [--profile-worker] [--long-calls MS]

Starts Mosquitto (and InfluxDB 1.x with --influx), runs the real `Service` in this
process with a persistent MQTT session, hands it one report of every node (so its links
exist, as in a collector that has been running; `--cold`: not, the drain then creates
them), stops it, queues a backlog of reports for its session, starts it again (it
resumes from its SQLite state) and times how fast it drains them (graph + SQLite [+
InfluxDB v1]); also the collector's CPU time per report (steadier than the rate on a
shared machine; its SQLite worker process included) and the event loop thread's share.
`--default-gc` keeps Python's default GC thresholds and GIL switch interval (the CLI
tunes them); `--profile`
prints the cProfile top 30 by own time and top 45 by cumulative time (the loop's thread);
`--profile-worker` the same of the SQLite store's batch writes while the backlog drains
(in a thread, `--worker thread`, the default; `--worker process`: in a process of its
own). It also prints the CPU time of the worker's batch writes per report, the history
recorder's share of it and the collector's CPU per report without it (in a thread: the
work of a collector without the history, comparable with one from before it), and the
garbage collections' CPU time during the drain by generation and thread (the collector's
GC regime runs, survivors frozen every 5 s, as in `meshmon serve`). `--long-calls MS`
lists the C calls of the collector's other threads over MS (one that keeps the GIL holds
the event loop as long).
Last line: RESULT drain_per_s=… cpu_us=…
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import Mesh, build_mesh, publish_infos, report_parts, run_publishers  # noqa: E402
from procstat import cpu_s  # noqa: E402

from meshmon.config import Config  # noqa: E402
from meshmon.history.recorder import HistoryRecorder  # noqa: E402
from meshmon.runtime import run_freezing_survivors, tune_runtime  # noqa: E402
from meshmon.service import Service  # noqa: E402
from meshmon.storage.store_worker import StoreWorker  # noqa: E402
from tests import servers  # noqa: E402


async def report_once(service: Service, mesh: Mesh) -> None:
    """One report of every node into the service's ingest entry, as the MQTT client hands
    them over (batches of 250)."""
    now = time.time()
    batch = []
    for i, node in enumerate(mesh.ids):
        head, tail = report_parts(mesh, i)
        payload = f'{head}"ts":{now:.4f},"seq":0{tail}'.encode()
        batch.append((f"meshmon/v1/node/{node}/report", payload, now, 0, False))
        if len(batch) == 250 or i == len(mesh.ids) - 1:
            service.on_batch(batch)
            batch = []
            await asyncio.sleep(0)


def collector_config(port: int, path: str, client_id: str, influx_url: str | None = None,
                     worker: str = "thread") -> Config:
    """A collector on the broker at `port` with its SQLite file at `path` (and InfluxDB
    v1 at `influx_url`), HTTP on a free port."""
    return Config.model_validate({
        "log_level": "warning",
        "mqtt": {"broker": "external", "port": port, "client_id": client_id},
        "http": {"port": 0},
        "storage": {"path": path, "worker": worker},
        "influxdb": {"enabled": influx_url is not None, "api": "v1",
                     "url": influx_url or "http://127.0.0.1:1"},
    })


async def drain(args: argparse.Namespace) -> tuple[float, float]:
    mesh = build_mesh(args.nodes)
    mq = servers.start_mosquitto(extra_conf="max_inflight_messages 1000")
    influx = servers.start_influxdb1() if args.influx else None
    service: Service | None = None
    tmp = tempfile.mkdtemp(prefix="bench-drain-")
    try:
        publish_infos(mq.port, mesh, "meshmon")
        in_thread = args.worker == "thread" or args.profile_worker
        config = collector_config(mq.port, f"{tmp}/drain.sqlite", "bench-drain",
                                  influx.url if influx else None,
                                  "thread" if in_thread else "process")
        service = Service(config)
        await service.start()
        while len(service.topology.nodes) < args.nodes:
            await asyncio.sleep(0.1)
        if not args.cold:
            await report_once(service, mesh)
        stopping = time.perf_counter()
        await service.stop()  # the broker keeps the session and queues reports
        print(f"stopped in {time.perf_counter() - stopping:.1f} s (the history's open "
              "buckets stay in its journal)", flush=True)
        sent = await asyncio.to_thread(run_publishers, mq.port, args.nodes, 0, args.seconds)
        profile = cProfile.Profile()
        service = Service(config)
        starting = time.perf_counter()
        await service.start()
        freezer = asyncio.create_task(run_freezing_survivors())  # the collector's GC regime
        print(f"started in {time.perf_counter() - starting:.1f} s (the history's journal "
              "back in memory)", flush=True)
        received = "meshmon_reports_received_total"
        while not service.metrics.get(received):
            await asyncio.sleep(0.001)
        assert service.store is not None
        worker = None if in_thread else service.store.worker_pid
        worker0 = 0.0 if worker is None else cpu_s(worker)
        t0, cpu0, loop0 = time.perf_counter(), time.process_time(), time.thread_time()
        if args.profile:
            profile.enable()
        WORKER.active = HISTORY.active = GC.active = LONG_CALLS.active = True
        while service.metrics.get(received) < sent:
            await asyncio.sleep(0.05)
        took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        loop_us = (time.thread_time() - loop0) / sent * 1e6
        profile.disable()
        WORKER.active = HISTORY.active = GC.active = LONG_CALLS.active = False
        freezer.cancel()
        if worker is None:
            worker_us = WORKER.cpu_s / sent * 1e6
            where = "the SQLite worker thread's batch writes"
        else:
            worker_cpu = cpu_s(worker) - worker0
            cpu += worker_cpu
            worker_us = worker_cpu / sent * 1e6
            where = "the SQLite worker process"
        cpu_us = cpu / sent * 1e6
        print(f"drained {sent} reports in {took:.1f}s: {sent / took:,.0f}/s, "
              f"{cpu_us:.0f} µs CPU per report, {loop_us:.0f} of them in the event loop's "
              f"thread, {worker_us:.0f} in {where} ({args.nodes} nodes, "
              f"influx={'on' if influx else 'off'}, "
              f"gc={'default' if args.default_gc else 'tuned'}"
              f"{', cold' if args.cold else ''})")
        if worker is None:
            history_us = HISTORY.cpu_s / sent * 1e6
            print(f"the history recorder: {history_us:.0f} µs CPU per report "
                  f"(of the {worker_us:.0f} in the worker's batch writes); the rest of the "
                  f"collector: {cpu_us - history_us:.0f} µs per report")
        print(GC.summary(sent))
        if LONG_CALLS.limit_s:
            print(LONG_CALLS.summary())
        if args.profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        return sent / took, cpu_us
    finally:
        if service is not None:
            await service.stop()
        mq.stop()
        if influx is not None:
            influx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class ThreadCpuWatch:
    """The CPU time spent in some methods of a class while the backlog drains, in the
    thread that calls them (the SQLite store's worker thread, `--worker thread`), and
    with `profile` a cProfile of them."""

    def __init__(self, cls: type, steps: tuple[str, ...]) -> None:
        self.active = False
        self.cpu_s = 0.0
        self.profile: cProfile.Profile | None = None
        for name in steps:
            setattr(cls, name, self._watched(getattr(cls, name)))

    def _watched(self, step: Any) -> Any:
        def watched(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return step(obj, *args, **kwargs)
            if self.profile is not None:
                self.profile.enable()
            cpu0 = time.thread_time()
            try:
                return step(obj, *args, **kwargs)
            finally:
                self.cpu_s += time.thread_time() - cpu0
                if self.profile is not None:
                    self.profile.disable()

        return watched


WORKER = ThreadCpuWatch(StoreWorker, ("write_batch",))
"""the SQLite worker's batch writes"""
HISTORY = ThreadCpuWatch(HistoryRecorder, ("add", "close_idle", "write", "committed", "pack"))
"""the history recorder's part of them (samples taken, buckets closed, stored and packed,
the journal): the collector's CPU per report without it is comparable with a collector
that had no history"""


class GcWatch:
    """The garbage collections while the backlog drains: their CPU time per generation and
    thread (a collection holds the GIL: the loop waits meanwhile)."""

    def __init__(self) -> None:
        self.active = False
        self.started: dict[str, float] = {}
        self.spent: dict[tuple[int, str], list[float]] = {}
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.current_thread().name
        if phase == "start":
            self.started[thread] = time.thread_time()
            return
        began = self.started.pop(thread, None)
        if began is None or not self.active:
            return
        took = time.thread_time() - began
        spent = self.spent.setdefault((info["generation"], thread), [0, 0.0, 0.0])
        spent[0] += 1
        spent[1] += took
        spent[2] = max(spent[2], took)

    def summary(self, reports: int) -> str:
        total = sum(s[1] for s in self.spent.values())
        lines = [f"GC during the drain: {total / reports * 1e6:.1f} µs CPU per report"]
        for (generation, thread), (n, cpu, longest) in sorted(self.spent.items()):
            lines.append(f"  generation {generation} in {thread}: {n:.0f} collections, "
                         f"{cpu * 1000:.0f} ms CPU, longest {longest * 1000:.1f} ms")
        return "\n".join(lines)


GC = GcWatch()


class LongCallWatch:
    """`--long-calls MS`: the C calls of the collector's other threads (the SQLite worker,
    the disposal thread; started after `install`) that took longer than MS while the
    backlog drained, by thread, call and the function that made it. One that keeps the
    GIL (an encode, a free, a collection) holds the event loop as long; some give the GIL
    away while they wait (SQLite's steps, a queue's `get`), and their time is not the
    loop's. The hook slows those threads: that run's rate and CPU are not comparable."""

    def __init__(self) -> None:
        self.active = False
        self.limit_s = 0.0
        self.found: dict[tuple[str, str, str], list[float]] = {}

    def install(self, limit_ms: float) -> None:
        self.limit_s = limit_ms / 1000
        threading.setprofile(self._first_event)

    def _first_event(self, frame: Any, event: str, arg: Any) -> Any:
        hook = self._hook(threading.current_thread().name)
        sys.setprofile(hook)
        return hook(frame, event, arg)

    def _hook(self, thread: str) -> Any:
        started: list[float] = []
        clock = time.perf_counter

        def hook(frame: Any, event: str, arg: Any) -> None:
            if event == "c_call":
                started.append(clock())
            elif event != "call" and event != "return" and started:  # c_return, c_exception
                took = clock() - started.pop()
                if took > self.limit_s and self.active:
                    key = (thread, getattr(arg, "__qualname__", repr(arg)),
                           frame.f_code.co_name)
                    found = self.found.setdefault(key, [0, 0.0, 0.0])
                    found[0] += 1
                    found[1] += took
                    found[2] = max(found[2], took)

        return hook

    def summary(self) -> str:
        lines = [f"C calls over {self.limit_s * 1000:.0f} ms in the other threads during the "
                 "drain (thread, call, in function: count, total ms, longest ms):"]
        for (thread, call, caller), (n, total, longest) in sorted(
                self.found.items(), key=lambda item: -item[1][2])[:20]:
            lines.append(f"  {thread:18s} {call} in {caller}: {n:.0f}, {total * 1000:.0f}, "
                         f"{longest * 1000:.1f}")
        return "\n".join(lines)


LONG_CALLS = LongCallWatch()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=4.0, help="publishing time of the backlog")
    ap.add_argument("--influx", action="store_true", help="add the InfluxDB v1 sink")
    ap.add_argument("--default-gc", action="store_true",
                    help="do not tune the GC nor the GIL switch interval")
    ap.add_argument("--cold", action="store_true",
                    help="no report before the backlog: the drain creates every link")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-worker", action="store_true",
                    help="profile the SQLite store's batch writes (in a thread)")
    ap.add_argument("--long-calls", type=float, default=0.0, metavar="MS",
                    help="list the other threads' C calls over MS during the drain")
    ap.add_argument("--worker", choices=("thread", "process"), default="thread",
                    help="where the store does its SQLite work (`[storage] worker`)")
    args = ap.parse_args()
    if not args.default_gc:
        tune_runtime()
    else:
        gc.set_threshold(700, 10, 10)
    if args.profile_worker:
        WORKER.profile = cProfile.Profile()
    if args.long_calls:
        LONG_CALLS.install(args.long_calls)
    rate, cpu_us = asyncio.run(drain(args))
    if WORKER.profile is not None:
        pstats.Stats(WORKER.profile).sort_stats("tottime").print_stats(30)
        pstats.Stats(WORKER.profile).sort_stats("cumulative").print_stats(45)
    print(f"RESULT drain_per_s={rate:.0f} cpu_us={cpu_us:.0f}")


if __name__ == "__main__":
    main()
