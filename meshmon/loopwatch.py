"""How long the event loop is held: HTTP, ticks and last wills wait while it is.

`LoopWatch.run` wakes every `BEAT_S`; how late it wakes is how long something else held
the loop (callbacks, a GC pause, the GIL held by another thread, or no CPU for the
process while other processes keep the machine busy). Each stall longer than
`STALL_AFTER_S` is counted (`meshmon_loop_stalls_total{le=…}`, cumulative like a
Prometheus histogram) and the longest is kept, so an operator sees when the collector
stops answering promptly.

With `trace` set (`MESHMON_LOOP_TRACE=1`, off by default: a tool to find the cause),
each stall longer than `TRACE_AFTER_S` is logged with what the loop's thread did
meanwhile, from its own scheduler counters: ran (CPU), was ready but waited for a CPU,
or slept (the GIL held by another thread, a lock, I/O); and with the callbacks that ran
in it for more than `TRACE_CALLBACK_S` each, their wall and CPU time. The loop's thread
measures all of it itself: a thread sampling its stack would take the GIL from it and
make it sleep, which is what it would then measure.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from meshmon.metrics import Metrics

log = logging.getLogger(__name__)

BEAT_S = 0.01
STALL_AFTER_S = 0.025
"""a stall counts when the loop woke more than this late"""
STALL_BOUNDS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""the `le` bounds stalls are counted by (and `+Inf`)"""
TRACE_AFTER_S = 0.05
TRACE_CALLBACK_S = 0.005
"""(trace) a callback that runs longer than this is named in its stall's log line"""


class LoopWatch:
    """Measures the loop's stalls (see the module); `run` until cancelled."""

    def __init__(self, metrics: Metrics, trace: bool = False) -> None:
        self.metrics = metrics
        self.longest = 0.0
        self._beat = time.monotonic()
        self._trace = trace
        metrics.describe("meshmon_loop_stalls_total", "counter",
                         "times the event loop was held longer than 25 ms (HTTP, ticks and "
                         "alerts waited), by the bound it stayed within (le, seconds; "
                         "cumulative)")
        metrics.describe("meshmon_loop_stall_max_seconds", "gauge",
                         "the longest the event loop was held since start")
        metrics.gauge_fn("meshmon_loop_stall_max_seconds", lambda: self.longest)
        for bound in (*STALL_BOUNDS_S, float("inf")):
            metrics.inc("meshmon_loop_stalls_total", 0.0, le=_bound(bound))

    async def run(self) -> None:
        """Wake every `BEAT_S` and count how late each wake-up was."""
        if self._trace:
            await self._run_traced()
            return
        while True:
            before = time.monotonic()
            await asyncio.sleep(BEAT_S)
            self._beat = now = time.monotonic()
            self._count(now - before - BEAT_S)

    async def _run_traced(self) -> None:
        """`run`, logging each stall over `TRACE_AFTER_S` with what held the loop."""
        thread = threading.get_native_id()
        slow: list[tuple[str, float, float]] = []
        unpatch = _time_callbacks(slow)
        gc.callbacks.append(self._gc_timed)
        try:
            while True:
                before, sched_before = time.monotonic(), _sched_s(thread)
                slow.clear()
                await asyncio.sleep(BEAT_S)
                self._beat = now = time.monotonic()
                late = now - before - BEAT_S
                self._count(late)
                if late > TRACE_AFTER_S:
                    self._log_stall(late, now - before, sched_before, _sched_s(thread), slow)
        finally:
            unpatch()
            gc.callbacks.remove(self._gc_timed)

    @staticmethod
    def _log_stall(late: float, span: float, before: tuple[float, float],
                   after: tuple[float, float], slow: list[tuple[str, float, float]]) -> None:
        cpu, queued = after[0] - before[0], after[1] - before[1]
        named = ", ".join(f"{name} {wall * 1000:.0f} ms (CPU {cpu_s * 1000:.0f})"
                          for name, wall, cpu_s in slow) or "none"
        log.warning("loop held %.0f ms: its thread ran %.0f ms, waited for a CPU %.0f ms, "
                    "slept %.0f ms; callbacks over %.0f ms: %s", late * 1000, cpu * 1000,
                    queued * 1000, max(0.0, span - cpu - queued - BEAT_S) * 1000,
                    TRACE_CALLBACK_S * 1000, named)

    _gc_started = 0.0

    def _gc_timed(self, phase: str, info: dict[str, int]) -> None:
        """(trace) Log each garbage collection that took longer than `TRACE_AFTER_S`."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_started
        if took > TRACE_AFTER_S:
            log.warning("GC generation %d took %.0f ms (%d collected)",
                        info["generation"], took * 1000, info["collected"])

    def _count(self, late: float) -> None:
        if late <= STALL_AFTER_S:
            return
        self.longest = max(self.longest, late)
        inc = self.metrics.inc
        for bound in STALL_BOUNDS_S:
            if late <= bound:
                inc("meshmon_loop_stalls_total", le=_bound(bound))
        inc("meshmon_loop_stalls_total", le="+Inf")


def _sched_s(native_id: int) -> tuple[float, float]:
    """A thread of this process so far: its CPU time and its time ready to run but
    waiting for a CPU (s; Linux `schedstat`, zeros where /proc does not tell)."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            on_cpu, run_queue = f.read().split()[:2]
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(run_queue) / 1e9


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


def _time_callbacks(slow: list[tuple[str, float, float]]) -> Callable[[], None]:
    """(trace) Time every callback the loop runs (asyncio's `Handle._run`, which tasks'
    steps go through too) in this thread; each longer than `TRACE_CALLBACK_S` is added to
    `slow` as (name, wall s, CPU s). Returns what undoes it."""
    original = asyncio.Handle._run
    loop_thread = threading.get_ident()

    def timed(handle: asyncio.Handle) -> None:
        if threading.get_ident() != loop_thread:  # another thread's event loop
            original(handle)
            return
        wall, cpu = time.perf_counter(), time.thread_time()
        original(handle)
        wall = time.perf_counter() - wall
        if wall > TRACE_CALLBACK_S:
            slow.append((_callback_name(handle), wall, time.thread_time() - cpu))

    setattr(asyncio.Handle, "_run", timed)  # noqa: B010 (mypy: a method replaced)
    return lambda: setattr(asyncio.Handle, "_run", original)


def _callback_name(handle: asyncio.Handle) -> str:
    """A task's name, or the callback's qualified name."""
    callback: Any = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return f"task {owner.get_name()}"
    return getattr(callback, "__qualname__", repr(callback))
