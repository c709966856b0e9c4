"""The history of every node and link in the collector's SQLite file: a Sink.

`write_report` only queues the report (the event loop never waits on SQLite). Every
`flush_interval_s` the worker thread turns the queued reports into samples
(`meshmon.history.samples`), adds them to the open 5-minute bucket of each series, and
stores the buckets that closed — a bucket closes when its series has a sample of a later
bucket, or `CLOSE_AFTER_S` after its end (`meshmon.history.tables` writes it and updates
the roll-ups). Rows past their retention are pruned every `PRUNE_INTERVAL_S`.

Reads run in the same thread, so they see the open buckets too (`Query` in
`meshmon.history.query` decides what to read). What a crash can lose is the open buckets:
up to five minutes of samples; `close()` stores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from meshmon.history.chunks import BUCKET_S, RawBucket, bucket_of
from meshmon.history.samples import Extractor
from meshmon.history.tables import HistoryTables, Retention
from meshmon.model.wire import Report
from meshmon.sinks.base import MAX_CLOCK_SKEW_S, Event, sample_time
from meshmon.storage.database import SqliteWorker

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOSE_AFTER_S = 60.0
"""a bucket without a later sample of its series is stored this long after its end"""
PRUNE_INTERVAL_S = 3600.0
BUCKETS_PER_TRANSACTION = 500
"""closed buckets written per transaction (other writers of the file wait in between)"""
MAX_PENDING = 200_000
"""closed buckets kept for a retry while the file cannot be written; older ones are dropped"""

Queued = tuple[float, Report, list[str | None]]


class HistoryStore:
    """Raw samples and roll-ups of every series; a Sink, and the reader of the history."""

    name = "history"

    def __init__(
        self,
        path: str | Path,
        *,
        retention: Retention | None = None,
        flush_interval_s: float = 1.0,
        queue_max: int = 50_000,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        self.flush_interval_s = flush_interval_s
        self.queue_max = queue_max
        self.max_clock_skew_s = max_clock_skew_s
        self.clock = clock
        self._db = SqliteWorker(path, "history")
        self._queue: deque[Queued] = deque()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # worker-thread state
        self._tables: HistoryTables | None = None
        self._extractor = Extractor()
        self._open: dict[int, RawBucket] = {}
        self._pending: list[tuple[int, RawBucket]] = []
        """closed buckets not stored yet"""
        self._last_prune = 0.0
        # counters
        self.reports = 0
        self.dropped_reports = 0
        self.buckets_written = 0
        self.write_errors = 0
        self.dropped_buckets = 0
        self.pruned_rows = 0
        self.clock_fallbacks = 0
        self.last_write_ms = 0.0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the file (migrating it) and start the writer."""
        await self._db.start()
        try:
            await self._db.run(self._load)
        except BaseException:
            await self._db.close()
            raise
        self._task = asyncio.create_task(self._run(), name="sink-history")

    async def flush(self) -> None:
        """Add everything queued to the open buckets and store the closed ones."""
        async with self._lock:
            await self._process()

    async def close(self) -> None:
        """Store what is queued and every open bucket, then close the file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self._db.started:
            return
        try:
            async with self._lock:
                await self._process(close_all=True)
        finally:
            await self._db.close()

    def stats(self) -> dict[str, float]:
        """queued, written_points (buckets), dropped_points (reports), write errors, …"""
        return {
            "queued": float(len(self._queue)),
            "written_points": float(self.buckets_written),
            "dropped_points": float(self.dropped_reports + self.dropped_buckets),
            "write_errors": float(self.write_errors),
            "last_write_ms": self.last_write_ms,
            "pruned_rows": float(self.pruned_rows),
            "clock_fallbacks": float(self.clock_fallbacks),
            "open_buckets": float(len(self._open)),
        }

    # ------------------------------------------------------------------ Sink writes
    def write_report(self, report: Report, received_at: float, dsts: Sequence[str | None]
                     ) -> None:
        """Queue one report (never blocks, never raises; the oldest are dropped when the
        queue is full)."""
        try:
            ts = sample_time(report.ts, received_at, self.max_clock_skew_s)
            if ts != report.ts:
                self.clock_fallbacks += 1
            queue = self._queue
            queue.append((ts, report, list(dsts)))
            if len(queue) > self.queue_max:
                queue.popleft()
                self.dropped_reports += 1
        except Exception:
            log.exception("history: cannot queue the report of %s", report.node)

    def write_event(self, event: Event) -> None:
        """Events are kept by the event and alert logs, not here."""

    # ------------------------------------------------------------------ reads
    async def read(self, fn: Callable[[HistoryTables, dict[int, RawBucket]], T]) -> T:
        """`fn(tables, open buckets)` in the worker thread, after what was queued is added
        (a read sees every report handed to the store before it)."""
        async with self._lock:
            await self._process()
            return await self._db.run(self._read, fn)

    def _read(self, fn: Callable[[HistoryTables, dict[int, RawBucket]], T]) -> T:
        assert self._tables is not None
        return fn(self._tables, self._open)

    # ------------------------------------------------------------------ internals (loop)
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                async with self._lock:
                    await self._process()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("history: writer error")

    async def _process(self, close_all: bool = False) -> None:
        queued, self._queue = self._queue, deque()
        now = self.clock()
        started = time.perf_counter()
        try:
            written = await self._db.run(self._add_and_store, queued, now, close_all)
        except Exception as exc:
            self.write_errors += 1
            log.warning("history: storing samples failed (retried with the next batch): %s",
                        exc)
            return
        if written:
            self.buckets_written += written
            self.last_write_ms = (time.perf_counter() - started) * 1000

    # ------------------------------------------------------------------ internals (worker)
    def _load(self) -> None:
        self._tables = HistoryTables(self._db.conn)

    def _add_and_store(self, queued: deque[Queued], now: float, close_all: bool) -> int:
        tables = self._tables
        assert tables is not None
        pending = self._pending
        if queued:
            try:
                self._db.transaction(lambda _conn: self._add(tables, queued, pending))
            except Exception:
                self._reload()  # new series or metrics may be gone with the transaction
                raise
        self._close_idle(now, close_all, pending)
        written = 0
        try:
            while pending:
                part = pending[:BUCKETS_PER_TRANSACTION]
                self._db.transaction(functools.partial(self._write, tables, part))
                del pending[:len(part)]
                written += len(part)
        finally:
            if len(pending) > MAX_PENDING:  # the file cannot be written for a long time
                self.dropped_buckets += len(pending) - MAX_PENDING
                del pending[:len(pending) - MAX_PENDING]
        if now - self._last_prune >= PRUNE_INTERVAL_S:
            self._last_prune = now
            self.pruned_rows += self._db.transaction(
                lambda _conn: tables.prune(now, self.retention))
        return written

    def _reload(self) -> None:
        self._tables = tables = HistoryTables(self._db.conn)
        known = tables.keys
        for sid in [sid for sid in self._open if sid not in known]:
            del self._open[sid]
        self._pending[:] = [(sid, b) for sid, b in self._pending if sid in known]

    def _add(self, tables: HistoryTables, queued: deque[Queued],
             closed: list[tuple[int, RawBucket]]) -> None:
        extract = self._extractor.samples
        series_id, metric_ids = tables.series_id, tables.metric_ids
        open_buckets = self._open
        for ts, report, dsts in queued:
            try:
                samples = extract(report, ts, dsts)
            except Exception:  # a bug must not lose the other reports
                log.exception("history: cannot take samples from the report of %s",
                              report.node)
                continue
            self.reports += 1
            start = bucket_of(ts)
            for key, values in samples:
                sid = series_id(key)
                bucket = open_buckets.get(sid)
                if bucket is None or bucket.start != start:
                    if bucket is not None and start < bucket.start:  # a late sample
                        late = RawBucket(start)
                        late.add(ts, metric_ids(values))
                        closed.append((sid, late))
                        continue
                    if bucket is not None:
                        closed.append((sid, bucket))
                    bucket = open_buckets[sid] = RawBucket(start)
                bucket.add(ts, metric_ids(values))

    def _close_idle(self, now: float, close_all: bool,
                    closed: list[tuple[int, RawBucket]]) -> None:
        limit = now - BUCKET_S - CLOSE_AFTER_S
        open_buckets = self._open
        idle = [sid for sid, b in open_buckets.items() if close_all or b.start <= limit]
        for sid in idle:
            closed.append((sid, open_buckets.pop(sid)))

    def _write(self, tables: HistoryTables, closed: list[tuple[int, RawBucket]],
               _conn: object) -> None:
        for sid, bucket in closed:
            tables.write_bucket(sid, bucket)
