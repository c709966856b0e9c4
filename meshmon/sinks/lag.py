"""Report-to-stored lag of a sink: how long after a report's `ts` its data was written.

Sinks mark each queued group of rows/lines with the report's timestamp (None for rows
that are not reports) in queue order, and settle rows in the same order as they leave
the queue, stored or dropped. The last `keep` lags give p50/p99 for /metrics and bench.
"""

from __future__ import annotations

import time
from collections import deque


class LagTracker:
    """FIFO bookkeeping of queued rows and the lag of the reports they belong to."""

    def __init__(self, keep: int = 20_000) -> None:
        self._marks: deque[tuple[int, float | None]] = deque()
        self._lags: deque[float] = deque(maxlen=keep)
        self._queued = 0
        self._settled = 0
        self.reports_settled = 0
        """marks with a report time that left the queue (stored or dropped)"""

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
                    self._lags.append(when - ts)

    def stored(self, report_times: list[float], now: float) -> None:
        """Reports taken at `report_times` were written at `now` (sinks without a FIFO)."""
        self._lags.extend(now - ts for ts in report_times)

    def quantiles_ms(self) -> dict[str, float]:
        """p50 and p99 of the recent lags in ms (empty before the first stored report)."""
        if not self._lags:
            return {}
        ordered = sorted(self._lags)
        last = len(ordered) - 1
        return {
            "lag_p50_ms": ordered[int(0.50 * last)] * 1000,
            "lag_p99_ms": ordered[int(0.99 * last)] * 1000,
        }
