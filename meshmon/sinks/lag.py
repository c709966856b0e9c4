"""Report-to-stored lag of a sink: how long after a report's `ts` its data was written.

Sinks mark each queued group of rows/lines with the report's timestamp (None for rows
that are not reports) in queue order, and settle rows in the same order as they leave
the queue, stored or dropped. The last `keep` lags give p50/p99 for /metrics; cumulative
counts of the reports stored within each of `LAG_BOUNDS_S` (like a Prometheus histogram's
buckets) let a reader take the quantiles of any span between two reads (bench/ingest.py
does, per phase).
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections import deque

LAG_BOUNDS_S = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0,
                5.0, 10.0, 30.0, 60.0, 300.0)
"""upper bounds (s) of the stored-lag buckets; reports beyond the last count in +Inf only"""
QUANTILE_SAMPLE = 2000
"""the recent lags the quantiles are taken of, at most (evenly spread over the window)"""


class LagTracker:
    """FIFO bookkeeping of queued rows and the lag of the reports they belong to."""

    def __init__(self, keep: int = 20_000) -> None:
        self._marks: deque[tuple[int, float | None]] = deque()
        self._lags: deque[float] = deque(maxlen=keep)
        self._queued = 0
        self._settled = 0
        self.reports_settled = 0
        """marks with a report time that left the queue (stored or dropped)"""
        self._within = [0] * (len(LAG_BOUNDS_S) + 1)
        """reports stored with a lag in each bucket (not cumulative; the last is beyond
        every bound)"""

    def mark(self, rows: int, ts: float | None) -> None:
        """`rows` more rows were queued, belonging to a report taken at `ts`."""
        self._queued += rows
        self._marks.append((self._queued, ts))

    def settle(self, rows: int, stored: bool, now: float | None = None) -> None:
        """The oldest `rows` queued rows left the queue (written when `stored`)."""
        self._settled += rows
        marks = self._marks
        when = time.time() if now is None else now
        while marks and marks[0][0] <= self._settled:
            _, ts = marks.popleft()
            if ts is not None:
                self.reports_settled += 1
                if stored:
                    self._add(when - ts)

    def stored(self, report_times: list[float], now: float) -> None:
        """Reports taken at `report_times` were written at `now` (sinks without a FIFO)."""
        for ts in report_times:
            self._add(now - ts)

    def _add(self, lag: float) -> None:
        self._lags.append(lag)
        self._within[bisect_left(LAG_BOUNDS_S, lag)] += 1

    def stored_within(self) -> dict[str, float]:
        """Reports stored so far within each bound's seconds of their `ts`, cumulative,
        by bound (`"+Inf"`: all of them)."""
        out: dict[str, float] = {}
        total = 0
        for bound, n in zip((*map(str, LAG_BOUNDS_S), "+Inf"), self._within, strict=True):
            total += n
            out[bound] = float(total)
        return out

    def quantiles_ms(self) -> dict[str, float]:
        """p50 and p99 of the recent lags in ms (empty before the first stored report):
        of every k-th of them when there are more than `QUANTILE_SAMPLE` (a /metrics
        scrape sorted all 20,000 on the event loop, up to a second while it was busy)."""
        if not self._lags:
            return {}
        step = (len(self._lags) - 1) // QUANTILE_SAMPLE + 1
        ordered = sorted(itertools.islice(self._lags, 0, None, step))
        last = len(ordered) - 1
        return {
            "lag_p50_ms": ordered[int(0.50 * last)] * 1000,
            "lag_p99_ms": ordered[int(0.99 * last)] * 1000,
        }
