"""Batching, bounded buffering and retry shared by the InfluxDB sinks.

`write_*` turn data into line protocol, one bytes chunk of newline-joined lines per report
or event, and append it to a bounded deque (the oldest are dropped and counted beyond
`buffer_max_points`). A background task sends
them as a group commit: as soon as something is queued and the previous write has
ended, but no sooner than `flush_interval_s` after the previous write started (at once
when a batch of `batch_size` lines is full), everything queued meanwhile in batches of up
to `batch_size` — so batches grow with the load, and a point waits at most
`flush_interval_s` plus one write while the server keeps up. A batch that fails for a
reason that may pass (server down, timeout, 5xx, 401/403, 404, 429) goes back to the
front of the buffer and is retried with exponential backoff; a batch the server rejects
as bad data (other 4xx) is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Sequence
from typing import TypedDict

from meshmon.model.fastwire import AnyReport
from meshmon.sinks.base import MAX_CLOCK_SKEW_S, Event, sample_time
from meshmon.sinks.lag import LagTracker
from meshmon.sinks.lineprotocol import event_line, report_chunk
from meshmon.tasks import spawn

log = logging.getLogger(__name__)

TRANSIENT_4XX = frozenset({401, 403, 404, 408, 425, 429})
"""4xx answers worth retrying (auth or database fixed later, throttling); others are bad data."""

_DROPPED_RE = re.compile(r"dropped=(\d+)")

HOLD_INGEST_AT_POINTS = 120_000
"""points waiting for a server that answers: the collector takes no more reports until
fewer wait (~20,000 reports of a node and five links; a backlog then waits in the broker
rather than as ~1.5 KB of lines a report here)"""


class TransientWriteError(Exception):
    """The batch may succeed later: keep it and retry."""


class BadDataError(Exception):
    """The server rejected the batch's content; `dropped` points of it were not stored
    (None: all of them)."""

    def __init__(self, message: str, dropped: int | None = None) -> None:
        super().__init__(message)
        self.dropped = dropped


def classify_http_error(status: int, body: str) -> Exception:
    """The exception for a non-2xx answer to a write."""
    if status >= 500 or status in TRANSIENT_4XX:
        return TransientWriteError(f"HTTP {status}: {body[:300]}")
    m = _DROPPED_RE.search(body)
    return BadDataError(f"HTTP {status}: {body[:300]}", int(m.group(1)) if m else None)


class BufferOptions(TypedDict, total=False):
    """Keyword arguments of BufferedLineSink, passed through by the backends."""

    batch_size: int
    flush_interval_s: float
    buffer_max_points: int
    max_clock_skew_s: float
    retry_initial_s: float
    retry_max_s: float


class BufferedLineSink:
    """Base of the line-protocol sinks; subclasses implement `_send` (and `_open`/`_close`)."""

    name = "influxdb"

    def __init__(
        self,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 0.2,
        buffer_max_points: int = 1_000_000,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
    ) -> None:
        self.buffer_max_points = buffer_max_points
        self.batch_size = max(1, min(batch_size, buffer_max_points // 2 or 1))
        self.flush_interval_s = flush_interval_s
        self.max_clock_skew_s = max_clock_skew_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._buffer: deque[tuple[bytes, int]] = deque()
        """(newline-joined lines, how many), one per report or event"""
        self._queued_points = 0
        """points in the buffer"""
        self._inflight = 0
        self._wake = asyncio.Event()
        """set when a full batch is queued"""
        self._queued = asyncio.Event()
        """set when anything is queued"""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._retry_delay = 0.0
        self._bad_data_logged = False
        self._down_logged = False
        self.written_points = 0
        self.dropped_points = 0
        self.rejected_points = 0
        self.write_errors = 0
        self.clock_fallbacks = 0
        self.last_write_ms = 0.0
        self.writes = 0
        self.write_s_total = 0.0
        """successful writes and their summed duration (s): per span, the mean write"""
        self.lag = LagTracker()

    # ------------------------------------------------------------------ backend hooks
    async def _open(self) -> None:
        """Open the connection (must not fail if the server is down)."""

    async def _close(self) -> None:
        """Release the connection."""

    async def _send(self, body: bytes, points: int) -> None:
        """Write one batch; raise TransientWriteError or BadDataError."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Sink protocol
    async def start(self) -> None:
        """Open the client and start the background flusher."""
        await self._open()
        self._task = spawn(self._run(), f"sink-{self.name}")

    @property
    def reports_settled(self) -> int:
        """Reports whose lines all left the buffer (written, rejected or dropped)."""
        return self.lag.reports_settled

    def write_report(self, report: AnyReport, received_at: float,
                     dsts: Sequence[str | None]) -> None:
        """Queue the lines of one report (never blocks, never raises)."""
        try:
            t = sample_time(report.ts, received_at, self.max_clock_skew_s)
            if t != report.ts:
                self.clock_fallbacks += 1
            chunk, points = report_chunk(report, received_at, dsts, t)
            self._append(chunk, points, report.ts)
        except Exception:  # a bug must not reach ingest
            log.exception("%s: cannot encode report of %s", self.name, report.node)

    def write_event(self, event: Event) -> None:
        """Queue one event point (never blocks, never raises)."""
        try:
            self._append(event_line(event).encode(), 1, None)
        except Exception:
            log.exception("%s: cannot encode event %r", self.name, event)

    async def flush(self) -> None:
        """Try to write everything queued now (one attempt per batch; failures stay queued)."""
        async with self._lock:
            while self._buffer:
                if not await self._send_one():
                    return

    async def close(self) -> None:
        """Stop the flusher, make one last attempt, count what could not be written."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        finally:
            if self._buffer:
                lost = self._queued_points
                log.warning("%s: %d points not written at shutdown", self.name, lost)
                self.dropped_points += lost
                self.lag.settle(lost, stored=False)
                self._buffer.clear()
                self._queued_points = 0
            await self._close()

    def behind(self) -> bool:
        """Whether ingest should wait: `HOLD_INGEST_AT_POINTS` points (at most half of
        `buffer_max_points`) wait for a server that answers. A server that is down does
        not hold ingest: the buffer rides it out, and what does not fit is dropped and
        counted."""
        waiting = self._queued_points + self._inflight
        return (waiting >= min(HOLD_INGEST_AT_POINTS, self.buffer_max_points // 2)
                and not self._retry_delay)

    def stats(self) -> dict[str, float]:
        """queued, written_points, dropped_points (incl. rejected), write_errors, last_write_ms…"""
        return {
            "queued": float(self._queued_points + self._inflight),
            "written_points": float(self.written_points),
            "dropped_points": float(self.dropped_points),
            "rejected_points": float(self.rejected_points),
            "write_errors": float(self.write_errors),
            "last_write_ms": self.last_write_ms,
            "writes": float(self.writes),
            "write_s_total": self.write_s_total,
            "clock_fallbacks": float(self.clock_fallbacks),
            **self.lag.quantiles_ms(),
        }

    # ------------------------------------------------------------------ internals
    def _append(self, chunk: bytes, points: int, report_ts: float | None) -> None:
        self._buffer.append((chunk, points))
        self._queued_points += points
        self.lag.mark(points, report_ts)
        over = self._queued_points + self._inflight - self.buffer_max_points
        if over > 0:
            self._drop_oldest(over)
        self._queued.set()
        if self._queued_points >= self.batch_size:
            self._wake.set()

    def _drop_oldest(self, over: int) -> None:
        """Drop the oldest reports and events, at least `over` points of them (counted)."""
        buf = self._buffer
        dropped = 0
        while buf and dropped < over:
            dropped += buf.popleft()[1]
        self._queued_points -= dropped
        self.dropped_points += dropped
        self.lag.settle(dropped, stored=False)

    async def _run(self) -> None:
        """The group commit: wait for something queued, for `flush_interval_s` since the
        last write started (or a full batch), then send all that is queued."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            if self._retry_delay:  # backing off: a full buffer must not hasten the retry
                await asyncio.sleep(self._retry_delay)
            else:
                await self._queued.wait()
                pause = started + self.flush_interval_s - loop.time()
                if pause > 0:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                    # that arrives as the event is set, and close() would then wait forever
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await self._wake.wait()
            self._wake.clear()
            self._queued.clear()
            started = loop.time()
            try:
                async with self._lock:
                    while self._buffer:
                        if not await self._send_one():
                            self._queued.set()  # retried after the backoff
                            break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: flusher error", self.name)

    async def _send_one(self) -> bool:
        """Send the oldest batch; True when it left the buffer (written or rejected)."""
        buf = self._buffer
        batch: list[tuple[bytes, int]] = []
        n = 0
        # whole reports, up to `batch_size` points (one report more than that alone)
        while buf and (not batch or n + buf[0][1] <= self.batch_size):
            chunk = buf.popleft()
            batch.append(chunk)
            n += chunk[1]
        self._queued_points -= n
        self._inflight = n
        t0 = time.perf_counter()
        try:
            await self._send(b"\n".join([chunk for chunk, _ in batch]), n)
        except BadDataError as exc:
            dropped = n if exc.dropped is None else min(exc.dropped, n)
            self.rejected_points += dropped
            self.dropped_points += dropped
            self.written_points += n - dropped
            self.write_errors += 1
            self.lag.settle(n, stored=False)
            if not self._bad_data_logged:
                self._bad_data_logged = True
                log.error("%s: server rejected a batch of %d points (%d dropped): %s "
                          "(logged once)", self.name, n, dropped, exc)
            return True
        except (TransientWriteError, OSError, TimeoutError) as exc:
            self._requeue(batch)
            self.write_errors += 1
            self._retry_delay = min(
                self.retry_max_s, max(self.retry_initial_s, self._retry_delay * 2)
            )
            if not self._down_logged:
                self._down_logged = True
                log.warning("%s: write failed, keeping %d points and retrying: %s",
                            self.name, self._queued_points, exc or type(exc).__name__)
            return False
        except Exception as exc:  # unknown client error: treat as transient, but log it
            self._requeue(batch)
            self.write_errors += 1
            self._retry_delay = min(
                self.retry_max_s, max(self.retry_initial_s, self._retry_delay * 2)
            )
            log.warning("%s: unexpected write error: %r", self.name, exc)
            return False
        finally:
            self._inflight = 0
        took = time.perf_counter() - t0
        self.last_write_ms = took * 1000
        self.writes += 1
        self.write_s_total += took
        self.written_points += n
        self.lag.settle(n, stored=True)
        if self._down_logged:
            log.info("%s: writes succeed again", self.name)
            self._down_logged = False
        self._retry_delay = 0.0
        return True

    def _requeue(self, batch: list[tuple[bytes, int]]) -> None:
        self._buffer.extendleft(reversed(batch))
        self._queued_points += sum(points for _, points in batch)
        if self._queued_points > self.buffer_max_points:
            self._drop_oldest(self._queued_points - self.buffer_max_points)
