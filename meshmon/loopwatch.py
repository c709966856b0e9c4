"""How long the event loop is held: HTTP, ticks and last wills wait while it is.

`LoopWatch.run` wakes every `BEAT_S`; how late it wakes is how long something else held
the loop (a callback, a GC pause, the GIL held by another thread, or no CPU for the
process while other processes keep the machine busy). Each stall longer than
`STALL_AFTER_S` is counted (`meshmon_loop_stalls_total{le=…}`, cumulative like a
Prometheus histogram) and the longest is kept, so an operator sees when the collector
stops answering promptly. With `trace` set, a thread also samples the loop thread's
stack while a stall lasts and logs where it was (the code that held the loop): a tool to
find the cause, off by default (`MESHMON_LOOP_TRACE=1`).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import os
import sys
import threading
import time
import traceback

from meshmon.metrics import Metrics

log = logging.getLogger(__name__)

BEAT_S = 0.01
STALL_AFTER_S = 0.025
"""a stall counts when the loop woke more than this late"""
STALL_BOUNDS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""the `le` bounds stalls are counted by (and `+Inf`)"""
TRACE_AFTER_S = 0.05
TRACE_SAMPLE_S = 0.005


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
        stop = threading.Event()
        if self._trace:
            ids = threading.get_ident(), threading.get_native_id()
            threading.Thread(target=self._sample, args=(*ids, stop), daemon=True,
                             name="loop-trace").start()
            gc.callbacks.append(self._gc_timed)
        try:
            while True:
                before = time.monotonic()
                await asyncio.sleep(BEAT_S)
                self._beat = now = time.monotonic()
                self._count(now - before - BEAT_S)
        finally:
            stop.set()
            if self._gc_timed in gc.callbacks:
                gc.callbacks.remove(self._gc_timed)

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

    def _sample(self, thread_id: int, native_id: int, stop: threading.Event) -> None:
        """While the loop is held (no beat for `TRACE_AFTER_S`), sample its stack; when
        it runs again, log the stall's most frequent stack."""
        stacks: collections.Counter[str] = collections.Counter()
        started = cpu_started = process_started = 0.0
        while not stop.wait(TRACE_SAMPLE_S):
            held = time.monotonic() - self._beat
            if held > TRACE_AFTER_S:
                frame = sys._current_frames().get(thread_id)
                if frame is not None:
                    if not started:
                        started, cpu_started = self._beat, _cpu_s(native_id)
                        process_started = _process_cpu_s()
                    stacks["".join(traceback.format_stack(frame, limit=12))] += 1
            elif stacks:
                # the loop thread's CPU time says whether it worked or waited (for the
                # GIL or a CPU) meanwhile
                cpu = _cpu_s(native_id) - cpu_started
                process = _process_cpu_s() - process_started
                stack, seen = stacks.most_common(1)[0]
                log.warning("loop held %.0f ms (its thread's CPU %.0f ms, the process's "
                            "%.0f ms); %d of %d samples here:\n%s",
                            (self._beat - started) * 1000, cpu * 1000, process * 1000, seen,
                            stacks.total(), stack)
                stacks.clear()
                started = 0.0


def _cpu_s(native_id: int) -> float:
    """CPU time (user + system, s) a thread of this process used so far (Linux; 0 where
    /proc does not tell)."""
    try:
        with open(f"/proc/self/task/{native_id}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s() -> float:
    """CPU time (user + system, s) of every thread of this process so far."""
    times = os.times()
    return times.user + times.system


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
