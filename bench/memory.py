"""Where a collector's memory is, at guifi.net's size (a benchmark, not a test).

    python bench/memory.py [--nodes 35000] [--seconds 10] [--timeout 600]
                           [--receive-maximum N]

Starts Mosquitto, runs the real `Service` in this process (with `meshmon serve`'s GC
thresholds), hands it the retained info and one report of every node, stops it, queues a
backlog of `--seconds` of reports at the agents' full speed for its session, starts it
again and lets it drain them (graph + SQLite, as `bench/drain.py`). The process's RSS is
sampled every 100 ms from the first start to the end, with the reports waiting for the
SQLite store (where the peak is: while the backlog drains, or after). Then, after the
store's flush and a full GC, each part's size: `sys.getsizeof` summed over its objects,
each object counted once (parts listed first claim shared objects), and the RSS after
`meshmon.runtime.trim_memory`. `--receive-maximum N` (an experiment) sets the MQTT 5 receive
window the collector asks for. Stops its servers, also after `--timeout` seconds.
Last line: RESULT rss_mb=… peak_mb=… objects_mb=…
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from drain import collector_config, report_once  # noqa: E402
from loadgen import build_mesh, publish_infos, run_publishers  # noqa: E402

from meshmon.ingest import mqtt  # noqa: E402
from meshmon.runtime import trim_memory, tune_runtime  # noqa: E402
from meshmon.service import Service  # noqa: E402
from tests import servers  # noqa: E402

LIMIT_MB = 1024.0
"""issue 14: RSS ≤ 1 GB at 35,000 nodes"""


def rss_mb() -> float:
    """This process's resident memory now, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6




@dataclass
class RssTrace:
    """RSS sampled by a thread every `every` seconds, with the phase it was taken in."""

    every: float = 0.1
    phase: str = "start"
    samples: list[tuple[float, str, float, int]] = field(default_factory=list)
    """(time, phase, RSS MB, reports waiting for the SQLite store)"""
    waiting: Callable[[], int] = lambda: 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Begin sampling in a daemon thread."""
        t0 = time.monotonic()

        def run() -> None:
            while not self._stop.wait(self.every):
                self.samples.append((time.monotonic() - t0, self.phase, rss_mb(),
                                     self.waiting()))

        threading.Thread(target=run, daemon=True, name="rss-trace").start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()

    def by_phase(self) -> list[tuple[str, float, float, int]]:
        """(phase, peak MB, MB at its end, most reports waiting) in the order the phases
        came."""
        out: dict[str, tuple[float, float, int]] = {}
        for _, phase, mb, waiting in self.samples:
            peak, _, most = out.get(phase, (0.0, 0.0, 0))
            out[phase] = (max(peak, mb), mb, max(most, waiting))
        return [(p, peak, last, most) for p, (peak, last, most) in out.items()]


def deep_size(root: object, seen: set[int]) -> int:
    """Bytes of `root` and every object it reaches that `seen` does not hold yet."""
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or (isinstance(obj, type | Callable) and not isinstance(obj, dict)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            for name in _slots_of(type(obj)):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))
            if hasattr(obj, "__dict__"):
                stack.append(obj.__dict__)
            fields = getattr(type(obj), "__struct_fields__", None)  # msgspec.Struct
            if fields is not None:
                stack.extend(getattr(obj, f) for f in fields)
    return total


def _slots_of(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


def parts_of(service: Service) -> list[tuple[str, Any]]:
    """The parts to size, in the order they claim shared objects."""
    assert service.store is not None
    history = service.store.worker_object().history
    tables = history.tables
    return [
        ("history: open 5-minute buckets", history.open_buckets),
        ("history: last values for counter rates (Extractor)", history.extractor),
        ("history: series and metric registries", [tables.series, tables.keys] if tables
         else []),
        ("history: the rest", history.__dict__),
        ("topology: nodes (their latest report without links)", service.core.topology.nodes),
        ("topology: links (state and latest sample)", service.core.topology.links),
        ("topology: the graph (networkx)", service.core.topology.graph),
        ("topology: each node's remembered report layout", service.core.topology._layouts),
        ("topology: the rest", service.core.topology),
        ("the change log", service.core.log),
        *((f"health: {type(d).__name__}", d) for d in service.core.health.detectors),
        ("the rest of the core", service.core),
        ("the SQLite store's own state", service.store),
        ("the rest of the service", service.__dict__),
    ]


async def measure(args: argparse.Namespace, trace: RssTrace) -> tuple[float, float]:
    mesh = build_mesh(args.nodes)
    mq = servers.start_mosquitto(extra_conf="max_inflight_messages 1000")
    service: Service | None = None
    tmp = tempfile.mkdtemp(prefix="bench-memory-")
    try:
        publish_infos(mq.port, mesh, "meshmon")
        config = collector_config(mq.port, f"{tmp}/memory.sqlite", "bench-memory",
                                  worker="thread")  # (its objects sized in this process)
        trace.phase = "infos"
        service = Service(config)
        await service.start()
        while len(service.topology.nodes) < args.nodes:
            await asyncio.sleep(0.1)
        trace.phase = "one report each"
        await report_once(service, mesh)
        await service.store.flush()
        await service.stop()
        service = None
        trace.phase = "publishing the backlog (collector stopped)"
        sent = await asyncio.to_thread(run_publishers, mq.port, args.nodes, 0, args.seconds)
        trace.phase = "draining the backlog"
        t0 = time.perf_counter()
        service = Service(config)
        store = service.store
        trace.waiting = lambda: len(store._reports) + store._inflight
        await service.start()
        while service.metrics.get("meshmon_reports_received_total") < sent:
            await asyncio.sleep(0.1)
        trace.phase = "storing the backlog"
        await service.store.flush()
        took = time.perf_counter() - t0
        trace.phase = "idle after the backlog"
        await asyncio.sleep(3.0)
        gc.collect()
        now = rss_mb()
        trace.phase = "sizing the parts (not the collector's)"
        print(f"mesh: {args.nodes} nodes; backlog of {sent} reports drained and stored in "
              f"{took:.1f}s")
        seen: set[int] = set()
        total = 0.0
        for name, part in parts_of(service):
            mb = deep_size(part, seen) / 1e6
            total += mb
            print(f"  {name:52s} {mb:7.1f} MB")
        print(f"  {'Python objects reached from the service':52s} {total:7.1f} MB")
        seen.clear()  # the sizing's own memory
        before, t0 = rss_mb(), time.perf_counter()
        trim_memory()
        print(f"RSS {now:.0f} MB; {before:.0f} MB after the sizing, {rss_mb():.0f} MB after "
              f"`meshmon.runtime.trim_memory` ({(time.perf_counter() - t0) * 1000:.0f} ms)")
        return now, total
    finally:
        if service is not None:
            await service.stop()
        mq.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=35_000)
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="publishing time of the backlog")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    ap.add_argument("--receive-maximum", type=int, default=0,
                    help="the MQTT 5 receive window the collector asks for (an experiment: "
                         "0 keeps meshmon's; it bounds the reports waiting for SQLite)")
    args = ap.parse_args()
    tune_runtime()
    if args.receive_maximum:
        mqtt.ConnectRequest = functools.partial(  # type: ignore[misc]
            mqtt.ConnectRequest, receive_maximum=args.receive_maximum)
    trace = RssTrace()
    trace.start()

    async def bounded() -> tuple[float, float]:
        return await asyncio.wait_for(measure(args, trace), args.timeout)

    now, objects = asyncio.run(bounded())
    trace.stop()
    print("RSS by phase (peak, at its end; most reports waiting for the SQLite store, each "
          "held decoded until it is stored and acknowledged):")
    for phase, peak, last, most in trace.by_phase():
        print(f"  {phase:44s} peak {peak:6.0f} MB, end {last:6.0f} MB, waiting {most:6d}")
    peak = max((mb for _, phase, mb, _ in trace.samples if not phase.startswith("sizing")),
               default=now)
    verdict = "ok" if peak <= LIMIT_MB else f"MISSED by {peak / LIMIT_MB:.2f}×"
    print(f"RSS after the backlog {now:.0f} MB, peak {peak:.0f} MB  limit ≤ {LIMIT_MB:.0f} "
          f"({verdict}); Python objects {objects:.0f} MB")
    print(f"RESULT rss_mb={now:.0f} peak_mb={peak:.0f} objects_mb={objects:.0f}")


if __name__ == "__main__":
    main()
