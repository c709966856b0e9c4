"""Packing: the rows of a finished span go into one row of the level's packed table.

The running collector writes small rows: a raw row per 5-minute bucket, a 5-minute row per
hour, an hourly row per day (`tables`), so that a bucket that closes costs two keyed writes
of a few hundred bytes. Once a span is over they are read far more often than written,
and small rows cost room: each has its header, its own deflate tables and the first value
of every column, and a WITHOUT ROWID table stores a row of more than ~1 kB with an
overflow page that is mostly empty. So a span that ended `PACK_AFTER_S` ago is packed:

    history_raw   → history_raw_packed    4 hours of raw samples per row
    history_5min  → history_5min_packed   a day of 5-minute records per row
    history_1h    → history_1h_packed     16 days of hourly records per row

The packed tables are rowid tables (a long row fills its overflow pages). Packed rows are
chunks of the same format with a longer span (`RawBucket.joined`, `RollupChunk.joined`:
the stored numbers move as they are, nothing is rounded again), and reads take them with
the rows of the level (`HistoryTables.raw`, `rollups`). A 5-minute or hourly span is packed
only once the series has a newer row after it, so each of its records has gone up to the
level above, and the newest row of a series (`newest_records`) is never packed. A write
into a packed span (a late sample, a back-fill) first puts its row back
(`HistoryTables._unpack`); the next pass packs it again.

Work is done a slice at a time (`PACK_SLICE_S`) in the store's write transaction, one
series after another; a pass over every series starts when a level's cutoff moves on (every
4 hours for raw rows) and when the collector starts. Measured cost: bench/history.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from meshmon.history.chunks import RawBucket, RollupChunk, bucket_of
from meshmon.history.codec import ChunkError
from meshmon.history.tables import PACKED_LEVELS, RAW_LEVEL, HistoryTables, Level

log = logging.getLogger(__name__)

PACK_AFTER_S = 3600.0
"""a span is packed once it ended this long ago (closed buckets are stored within
minutes of their end: `recorder.CLOSE_SPREAD_S`)"""
PACK_SLICE_S = 0.02
"""how long one write of the running store may spend packing"""

Cutoffs = tuple[int, ...]
"""per packed level, spans that end by this time are packed"""


def cutoffs(now: float) -> Cutoffs:
    """The spans that may be packed at `now`, per level."""
    return tuple(bucket_of(now - PACK_AFTER_S, level.pack_span) for level in PACKED_LEVELS)


def pack_series(tables: HistoryTables, sid: int, until: Cutoffs) -> int:
    """Pack every finished span of one series (in the caller's transaction); how many
    packed rows it wrote."""
    written = 0
    for level, cutoff in zip(PACKED_LEVELS, until, strict=True):
        if level is not RAW_LEVEL:  # not the span of its newest row (not gone up yet)
            newest = tables.conn.execute(f"SELECT max(start) FROM {level.table} WHERE "
                                         "series = ?", (sid,)).fetchone()[0]
            if newest is None:
                continue
            cutoff = min(cutoff, bucket_of(newest, level.pack_span))
        rows = tables.conn.execute(
            f"SELECT start, data FROM {level.table} WHERE series = ? AND start < ? "
            "ORDER BY start", (sid, cutoff)).fetchall()
        spans: dict[int, list[tuple[int, bytes]]] = {}
        for start, data in rows:
            spans.setdefault(bucket_of(start, level.pack_span), []).append((start, data))
        for span, found in spans.items():
            written += _pack_span(tables, level, sid, span, found)
    return written


def _pack_span(tables: HistoryTables, level: Level, sid: int, span: int,
               rows: Sequence[tuple[int, bytes]]) -> int:
    conn = tables.conn
    packed_row = (conn.execute(f"SELECT data FROM {level.packed} WHERE series = ? AND "
                               "start = ?", (sid, span)).fetchone()
                  if span < tables.packed_until[level.packed] else None)
    try:
        if level is RAW_LEVEL:
            blob = None if packed_row is not None else RawBucket.joined_stored(span, rows)
            if blob is None:  # buckets of other metrics, or a packed row there already
                buckets = [RawBucket.decode(data, start, tables.scales) for start, data in rows]
                if packed_row is not None:  # (a span unpacked for a write, packed again)
                    buckets[:0] = RawBucket.decode(packed_row[0], span, tables.scales).split()
                blob = RawBucket.joined(span, buckets).encode(tables.scales)
        else:
            joined = (None if packed_row is not None else
                      RollupChunk.joined_stored(span, level.step, rows))
            if joined is None:
                chunks = [RollupChunk.decode(data, start, level.step) for start, data in rows]
                if packed_row is not None:
                    chunks.insert(0, RollupChunk.decode(packed_row[0], span, level.step))
                joined = RollupChunk.joined(span, level.step, chunks)
            blob = joined.encode()
    except ChunkError as exc:  # left as it is: read as far as it can be, as before
        tables.damaged += 1
        log.warning("history: a %s span of series %d at %d cannot be packed (%s): left "
                    "unpacked", level.table, sid, span, exc)
        return 0
    conn.execute(f"INSERT OR REPLACE INTO {level.packed} (series, start, data) "
                 "VALUES (?, ?, ?)", (sid, span, blob))
    conn.execute(f"DELETE FROM {level.table} WHERE series = ? AND start >= ? AND start < ?",
                 (sid, span, span + level.pack_span))
    tables.packed_until[level.packed] = max(tables.packed_until[level.packed],
                                            span + level.pack_span)
    return 1


class Packer:
    """Passes over every series, a slice per write; what a write did counts once its
    transaction commits (`begin`, `committed`)."""

    def __init__(self, tables: HistoryTables) -> None:
        self.tables = tables
        self._done: Cutoffs | None = None
        """the cutoffs of the last finished pass (None: none since start)"""
        self._queue: list[int] = []
        """series the running pass has not packed yet (last first)"""
        self._until: Cutoffs = ()
        self._taken = 0
        """series the current write took from the queue"""
        self._finishing: Cutoffs | None = None
        self._written = 0
        """packed rows the current write wrote"""
        self.packed_rows = 0
        self.series_packed = 0
        self.busy_s = 0.0

    def due(self, now: float) -> bool:
        """Whether a pass runs or should start."""
        return bool(self._queue) or cutoffs(now) != self._done

    def begin(self) -> None:
        """A write starts: what a failed one did is done again."""
        self._taken = 0
        self._written = 0
        self._finishing = None

    def pack(self, now: float, budget_s: float = PACK_SLICE_S) -> int:
        """Pack series for up to `budget_s` (in the caller's transaction); packed rows
        written."""
        if not self._queue:
            if cutoffs(now) == self._done:
                return 0
            self._until = cutoffs(now)
            self._queue = sorted(self.tables.keys, reverse=True)
        t0 = time.perf_counter()
        deadline = t0 + budget_s
        written = 0
        queue = self._queue
        while len(queue) > self._taken:  # at least one series a write
            if self._taken and time.perf_counter() > deadline:
                break
            self._taken += 1
            written += pack_series(self.tables, queue[-self._taken], self._until)
        if len(queue) == self._taken:
            self._finishing = self._until
        self.busy_s += time.perf_counter() - t0
        self._written += written
        return written

    def committed(self) -> None:
        """The write's transaction committed."""
        if self._taken:
            del self._queue[-self._taken:]
            self.series_packed += self._taken
            self.packed_rows += self._written
            self._taken = self._written = 0
        if self._finishing is not None and not self._queue:
            self._done, self._finishing = self._finishing, None
