"""The interpreter settings a collector runs with (GC, GIL switch interval) and its GC
regime: survivors frozen, malloc's free memory handed back."""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import sys
import time
from typing import Any

SWITCH_INTERVAL_S = 0.001
"""how long a thread that wants the GIL waits before the running one must hand it over
(Python's default: 5 ms)"""


def tune_runtime() -> None:
    """The interpreter settings the collector runs with: the GC's (`tune_gc`), and a
    1 ms GIL switch interval. The event loop gives the GIL up at every socket call and
    `select`; while the SQLite worker thread runs, taking it back took up to the whole
    switch interval each time, and ingest slices meant to last 8 ms took ~20. At 35,000
    nodes during a backlog's drain, HTTP p99 went 265–282 → 198 ms and loop stalls over
    100 ms 46–56 → 6–10, the drain no slower (bench/README.md, 2026-12-07)."""
    tune_gc()
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def lower_cpu_priority(by: int) -> int:
    """Lower this process's CPU priority by `by` (`nice`, added to what it was started
    with); its niceness now. A writer does it so that the core beside it goes first when
    the cores are busy (docs/scaling.md)."""
    return os.nice(by)


def tune_gc() -> None:
    """Collect less often than Python's default: the collector keeps hundreds of thousands
    of long-lived objects (nodes, links, their latest reports) and the default thresholds
    rescan them many times a second under load. Not too seldom either: a young generation
    of 50,000 objects took ~50 ms to collect and its older generation over a second at
    35,000 nodes, holding the loop (bench/README.md); what survives is frozen instead
    (`run_freezing_survivors`, `Freezer`). The middle generation is collected every second young
    collection: every tenth, it held up to 100,000 objects, a pause of 70–150 ms while a
    backlog drained (`MESHMON_LOOP_TRACE`, bench/README.md); every second one is a fifth
    of that, and every survivor is still scanned once there."""
    gc.set_threshold(10_000, 2, 1000)


TRIM_EVERY = 12
"""freezes between two hand-backs of malloc's free memory to the system (a minute)"""


GLIBC_SONAME = "libc.so.6"
"""glibc's library name on every Linux architecture it supports"""


@functools.cache
def _glibc() -> Any | None:
    """The C library when it is glibc (it has malloc_trim), else None. Opened by its name,
    once per process: `ctypes.util.find_library` runs `ldconfig -p` in a child process, a
    fork of the whole collector (~850 MB at 35,000 nodes), which ran at every hand-back,
    every minute, and which `bench/ingest.py` once counted in the collector's memory."""
    import ctypes

    try:
        libc = ctypes.CDLL(GLIBC_SONAME)
    except OSError:  # not glibc (musl has no malloc_trim)
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def trim_memory() -> bool:
    """Hand malloc's free pages back to the system (`malloc_trim`; it runs without the
    GIL, so call it from a thread): after a backlog they stayed in the RSS
    (bench/README.md, "memory"). Whether any memory was released."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


GC_FREEZE_INTERVAL_S = 5.0
GC_FULL_EVERY = 720
"""freezes between two full collections of everything (hourly)"""


async def run_freezing_survivors() -> None:
    """Run until cancelled, moving what survived into the GC's permanent generation every
    `GC_FREEZE_INTERVAL_S` (after collecting the young generations): a collection then
    scans only what was made since, instead of every node and link of a large network —
    at 35,000 nodes one held the loop for 1–1.6 s (bench/README.md). Frozen objects are
    still freed by reference counting; reference cycles among them wait for the hourly
    full collection (everything unfrozen and collected once)."""
    freezes = 0
    while True:
        await asyncio.sleep(GC_FREEZE_INTERVAL_S)
        freezes += 1
        if freeze_survivors(freezes):
            await asyncio.to_thread(trim_memory)


def freeze_survivors(freezes: int) -> bool:
    """The `freezes`-th step of the regime: collect the young generations (every
    `GC_FULL_EVERY`-th: unfreeze and collect everything) and freeze what survived; whether
    malloc's free memory is due to be handed back (`trim_memory`)."""
    if freezes % GC_FULL_EVERY == 0:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)
    gc.freeze()
    return freezes % TRIM_EVERY == 0


class Freezer:
    """`run_freezing_survivors` for a process without an event loop (the SQLite worker):
    called after each write, it does what that task does when its interval passed."""

    def __init__(self) -> None:
        self._next = time.monotonic() + GC_FREEZE_INTERVAL_S
        self._freezes = 0

    def after_write(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + GC_FREEZE_INTERVAL_S
        self._freezes += 1
        if freeze_survivors(self._freezes):
            trim_memory()
