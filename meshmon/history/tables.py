"""The history tables of the collector's SQLite file, on one connection (one thread).

    history_series   id → (kind, node, peer, iface, link_kind)      one row per series
    history_metrics  id → (name, scale)                              one row per metric name
    history_raw      (series, bucket start) → raw bucket             kept `raw` seconds
    history_5min     (series, hour start)   → 12 five-minute records kept `fine` seconds
    history_1h       (series, day start)    → 24 hourly records      kept `coarse` seconds
    history_1d       (series, 16-day start) → 16 daily records       kept `coarse` seconds

Metric names are rows, and every row of samples names its metrics by id, so a new metric
needs no migration. Writing a closed raw bucket recomputes its 5-minute record from the
bucket (`write_bucket`); an hour's record goes up into history_1h, and a day's into
history_1d, when the series moves on to the next hour or day, or at once for a late sample
(`_span_written`): incremental, and the same whether samples came in order, late, or
across a restart. Until it goes up, the newest hour and day of a series are read from the
level below (`newest_records`). A bucket already stored (late samples, a bucket cut by a
restart) is merged.
"""

from __future__ import annotations

import itertools
import logging
import operator
import sqlite3
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshmon.disposal import empty
from meshmon.history.chunks import (
    BUCKET_S,
    DAY_S,
    HOUR_S,
    RawBucket,
    Record,
    RecordArrays,
    RollupChunk,
    bucket_of,
    rollup_arrays,
    scale_for,
)
from meshmon.history.codec import ChunkError, decode_all
from meshmon.history.resolution import Rounding, rounding_for
from meshmon.history.samples import SeriesKey

log = logging.getLogger(__name__)

_INSERT_SERIES = ("INSERT OR IGNORE INTO history_series (id, kind, node, peer, iface, link_kind) "
                  "VALUES (?, ?, ?, ?, ?, ?)")
_INSERT_METRIC = "INSERT OR IGNORE INTO history_metrics (id, name, scale) VALUES (?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Level:
    """One table of records: its bucket length (step) and how much one row spans; rows of
    a finished span of `pack_span` move into one row of the `packed` table
    (`meshmon.history.packing`)."""

    table: str
    step: int
    span: int
    packed: str = ""
    pack_span: int = 0

    def __reduce__(self) -> tuple[Callable[[str], Level], tuple[str]]:
        # the levels are this module's constants, told apart by identity (`level is
        # COARSE`): a window pickled for the store's worker process must find them there
        return level_of, (self.table,)


RAW_LEVEL = Level("history_raw", 0, BUCKET_S, "history_raw_packed", 4 * HOUR_S)
FINE = Level("history_5min", BUCKET_S, HOUR_S, "history_5min_packed", DAY_S)
COARSE = Level("history_1h", HOUR_S, DAY_S, "history_1h_packed", 16 * DAY_S)
DAILY = Level("history_1d", DAY_S, 16 * DAY_S)
"""each day's record merged from its hours: a year is 23 rows per series, not 365"""
ROLLUP_LEVELS = (FINE, COARSE, DAILY)
PACKED_LEVELS = (RAW_LEVEL, FINE, COARSE)
_LEVELS = {level.table: level for level in (RAW_LEVEL, *ROLLUP_LEVELS)}


def level_of(table: str) -> Level:
    """The level whose rows `table` holds."""
    return _LEVELS[table]


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each level is kept (seconds)."""

    raw: float = 48 * 3600.0
    fine: float = 30 * 86_400.0
    coarse: float = 366 * 86_400.0


class HistoryTables:
    """Registries, bucket writes, reads and pruning over one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.series: dict[SeriesKey, int] = {}
        self.keys: dict[int, SeriesKey] = {}
        for sid, kind, node, peer, iface, link_kind in conn.execute(
                "SELECT id, kind, node, peer, iface, link_kind FROM history_series"):
            # interned: the same few names repeat in 210,000 keys at guifi.net's size
            key = SeriesKey(*map(sys.intern, (kind, node, peer, iface, link_kind)))
            self.series[key] = sid
            self.keys[sid] = key
        self.metrics: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.scales: dict[int, int] = {}
        self.roundings: dict[int, Rounding] = {}
        """metric id → the resolution of its roll-up figures"""
        for mid, name, scale in conn.execute("SELECT id, name, scale FROM history_metrics"):
            self._known_metric(mid, name, scale)
        self.damaged = 0
        """stored chunks that could not be decoded (skipped when read, replaced when written)"""
        self._next_series = max(self.keys, default=0) + 1
        self._next_metric = max(self.names, default=0) + 1
        self.unsaved: list[tuple[str, tuple[Any, ...]]] = []
        """registry rows given out but not committed yet (`save_registry`)"""
        self._newest: dict[str, dict[int, int]] = {FINE.table: {}, COARSE.table: {}}
        """per level, series → start of its newest row (the level above holds every older
        one: `_span_written`)"""
        self._newest_unsaved: dict[str, dict[int, int]] = {FINE.table: {}, COARSE.table: {}}
        self.packed_until: dict[str, int] = {}
        """per level, the end of its newest packed row (of any series): a write of an older
        bucket first looks for the packed row that holds it (`_unpack`)"""
        for level in PACKED_LEVELS:
            try:
                newest = conn.execute(f"SELECT max(start) FROM {level.packed}").fetchone()[0]
            except sqlite3.OperationalError:  # an older schema's migration (before 6)
                newest = None
            self.packed_until[level.packed] = -1 if newest is None else newest + level.pack_span

    # ------------------------------------------------------------------ registries
    def series_id(self, key: SeriesKey) -> int:
        """The id of a series; a new one is given at once and saved with the next write."""
        sid = self.series.get(key)
        if sid is None:
            sid = self._next_series
            self._next_series += 1
            self.series[key] = sid
            self.keys[sid] = key
            self.unsaved.append((_INSERT_SERIES, (sid, *key)))
        return sid

    def metric_id(self, name: str) -> int:
        """The id of a metric name; a new name is registered (saved with the next write)."""
        mid = self.metrics.get(name)
        return self._register_metric(name) if mid is None else mid

    def metric_ids(self, values: Mapping[str, float]) -> dict[int, float]:
        """The sample with metric ids for names (new names registered)."""
        return {self.metric_id(name): value for name, value in values.items()}

    def _register_metric(self, name: str) -> int:
        scale = scale_for(name)
        mid = self._next_metric
        self._next_metric += 1
        self.unsaved.append((_INSERT_METRIC, (mid, name, scale)))
        self._known_metric(mid, name, scale)
        return mid

    def _known_metric(self, mid: int, name: str, scale: int) -> None:
        self.metrics[name] = mid
        self.names[mid] = name
        self.scales[mid] = scale
        self.roundings[mid] = rounding_for(name, scale)

    def save_registry(self) -> None:
        """Write the series and metrics given out since the last commit (in the caller's
        transaction; `committed` forgets them once it is done)."""
        for sql, rows in itertools.groupby(self.unsaved, key=operator.itemgetter(0)):
            self.conn.executemany(sql, [row for _, row in rows])

    def begin(self) -> None:
        """A write starts: what a failed one did not commit is forgotten (it does it
        again)."""
        for unsaved in self._newest_unsaved.values():
            unsaved.clear()

    def committed(self) -> None:
        """The caller's transaction committed: the registry rows are saved."""
        empty(self.unsaved)  # a slice at a time: ~210,000 rows after a first start
        for table, unsaved in self._newest_unsaved.items():
            self._newest[table].update(unsaved)
            unsaved.clear()

    # ------------------------------------------------------------------ writes
    def store_raw(self, sid: int, bucket: RawBucket) -> None:
        """Write a bucket's raw row as it is (it holds every sample of its bucket)."""
        self._unpack(RAW_LEVEL, sid, bucket.start)
        self.conn.execute(
            "INSERT OR REPLACE INTO history_raw (series, start, data) VALUES (?, ?, ?)",
            (sid, bucket.start, bucket.encode(self.scales)))

    def stored_raw(self, sid: int, start: int) -> RawBucket | None:
        """The stored raw bucket (None: none, or unreadable)."""
        return self._raw(sid, start)

    def merge_raw(self, sid: int, bucket: RawBucket) -> RawBucket:
        """Write samples that came after their bucket was stored (late, or a bucket cut by
        a restart) into its raw row; the bucket as stored now."""
        self._unpack(RAW_LEVEL, sid, bucket.start)
        bucket = self.with_stored(sid, bucket)
        self.store_raw(sid, bucket)
        return bucket

    def with_stored(self, sid: int, bucket: RawBucket) -> RawBucket:
        """`bucket`'s samples merged into what is stored of its bucket (a new bucket;
        `bucket` itself when nothing is stored, or the row is unreadable)."""
        stored = self._raw(sid, bucket.start)
        if stored is None:
            return bucket
        stored.merge(bucket)
        return stored

    def roll_up(self, sid: int, bucket: RawBucket) -> None:
        """Recompute the 5-minute record of a stored bucket (and the records above it, when
        its series moved on to a new hour or the sample was late)."""
        hour = self._put_record(FINE, sid, bucket.start, bucket.rollup())
        self._span_written(FINE, sid, hour)

    def _span_written(self, level: Level, sid: int, chunk: RollupChunk) -> None:
        """Keep the level above (history_1h over history_5min, history_1d over history_1h)
        up to date for every row of a series but its newest (`newest_records` gives that
        one): its record goes up once, when the series moves on to the next hour or day,
        and again when a late sample changes it, not at every bucket."""
        upper = COARSE if level is FINE else DAILY
        unsaved = self._newest_unsaved[level.table]
        newest = unsaved.get(sid, self._newest[level.table].get(sid))
        if newest is None:  # first write since start: the newest other row is the one
            row = self.conn.execute(  # the last run may not have merged yet
                f"SELECT max(start) FROM {level.table} WHERE series = ? AND start != ?",
                (sid, chunk.start)).fetchone()
            newest = row[0] if row is not None and row[0] is not None else chunk.start
        if chunk.start > newest:
            before = self._rollup(level, sid, newest)
            if before is not None:
                self._merge_up(upper, sid, before)
        elif chunk.start < newest:
            self._merge_up(upper, sid, chunk)
        unsaved[sid] = max(newest, chunk.start)

    def _merge_up(self, upper: Level, sid: int, chunk: RollupChunk) -> None:
        written = self._put_record(upper, sid, chunk.start, chunk.merged(self.scales))
        if upper is COARSE:
            self._span_written(COARSE, sid, written)

    def rebuild_daily(self, sid: int) -> int:
        """Write history_1d of a series from its history_1h (a migration, a back-fill);
        how many days."""
        days: dict[int, RollupChunk] = {}
        for day in self._day_chunks(sid):
            start, record = day.start, day.merged(self.scales)
            span = bucket_of(start, DAILY.span)
            chunk = days.get(span)
            if chunk is None:
                chunk = days[span] = self._rollup(DAILY, sid, span) or RollupChunk(span, DAY_S)
            chunk.put(start, record, self.scales, self.roundings)
        for chunk in days.values():
            self._write_chunk(DAILY, sid, chunk)
        return sum(len(c.slots) for c in days.values())

    def _day_chunks(self, sid: int) -> list[RollupChunk]:
        """Every day of history_1h of a series (packed rows split into their days), in
        time order; unreadable rows left out."""
        days = []
        tables = [(COARSE.table, DAY_S)]
        if self.packed_until[COARSE.packed] >= 0:  # (before schema 6 there is no table)
            tables.append((COARSE.packed, COARSE.pack_span))
        for table, span in tables:
            for start, data in self.conn.execute(
                    f"SELECT start, data FROM {table} WHERE series = ?", (sid,)).fetchall():
                try:
                    chunk = RollupChunk.decode(data, start, HOUR_S)
                except ChunkError as exc:
                    self._damaged(table, sid, start, exc)
                    continue
                days += chunk.split(DAY_S) if span != DAY_S else [chunk]
        return sorted(days, key=lambda day: day.start)

    def newest_records(self, level: Level, sid: int, in_memory: Iterable[int] = ()
                       ) -> list[tuple[int, Record]]:
        """The records of `level` that a series' newest rows below give and `level` may
        not hold yet (`_span_written`): its newest hour; for days, the newest day of
        history_1h (with that hour) and the newest hour's day. The 5-minute records of
        buckets `in_memory` (starts) are left out: the caller has them from memory."""
        hour = self._newest_row(FINE, sid)
        if hour is not None:
            for start in in_memory:
                if hour.start <= start < hour.start + HOUR_S:
                    hour.put(start, None, self.scales, self.roundings)
        hour_record = None if hour is None else hour.merged(self.scales)
        if level is COARSE:
            return ([] if hour is None or hour_record is None else
                    [(hour.start, self._as_stored(hour.start, hour_record))])
        days: dict[int, RollupChunk] = {}
        day = self._newest_row(COARSE, sid)
        if day is not None:
            days[day.start] = day
        if hour is not None:
            start = bucket_of(hour.start, DAY_S)
            chunk = days.setdefault(start, RollupChunk(start, HOUR_S))
            chunk.put(hour.start, hour_record, self.scales, self.roundings)
        return [(start, self._as_stored(start, record)) for start, chunk in days.items()
                for record in [chunk.merged(self.scales)] if record is not None]

    def _as_stored(self, start: int, record: Record) -> Record:
        """A record at the resolution it will have when its level stores it."""
        chunk = RollupChunk(start, 1)
        chunk.put(start, record, self.scales, self.roundings)
        return chunk.merged(self.scales) or record

    def _newest_row(self, level: Level, sid: int) -> RollupChunk | None:
        row = self.conn.execute(
            f"SELECT start, data FROM {level.table} WHERE series = ? ORDER BY start DESC "
            "LIMIT 1", (sid,)).fetchone()
        if row is None:
            return None
        try:
            return RollupChunk.decode(row[1], row[0], level.step)
        except ChunkError as exc:
            self._damaged(level.table, sid, row[0], exc)
            return None

    def write_bucket(self, sid: int, bucket: RawBucket) -> None:
        """Store a closed bucket (merged with what is stored for it) and roll it up."""
        self.roll_up(sid, self.merge_raw(sid, bucket))

    def write_span(self, sid: int, buckets: Sequence[RawBucket], now: float,
                   retention: Retention) -> None:
        """Write a series' buckets of a past span at once, in time order (the demo's
        back-fill): raw rows within the raw retention, each hour's 5-minute chunk and each
        day's hourly chunk written once. Replaces what is stored for those buckets and
        hours; call it only for a span no other write touches (before the collector takes
        reports for it)."""
        hours: dict[int, RollupChunk] = {}
        for bucket in buckets:
            if bucket.start >= now - retention.raw:
                self.store_raw(sid, bucket)
            hour = bucket_of(bucket.start, HOUR_S)
            chunk = hours.get(hour)
            if chunk is None:
                self._unpack(FINE, sid, hour)
                chunk = hours[hour] = self._rollup(FINE, sid, hour) or RollupChunk(hour, BUCKET_S)
            chunk.put(bucket.start, bucket.rollup(), self.scales, self.roundings)
        days: dict[int, RollupChunk] = {}
        for hour, chunk in hours.items():
            if hour >= now - retention.fine - HOUR_S:
                self._write_chunk(FINE, sid, chunk)
            day = bucket_of(hour, DAY_S)
            coarse = days.get(day)
            if coarse is None:
                self._unpack(COARSE, sid, day)
                coarse = days[day] = self._rollup(COARSE, sid, day) or RollupChunk(day, HOUR_S)
            coarse.put(hour, chunk.merged(self.scales), self.scales, self.roundings)
        for chunk in days.values():
            self._write_chunk(COARSE, sid, chunk)
        self.rebuild_daily(sid)

    def _write_chunk(self, level: Level, sid: int, chunk: RollupChunk) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO {level.table} (series, start, data) VALUES (?, ?, ?)",
            (sid, chunk.start, chunk.encode()))

    def _put_record(self, level: Level, sid: int, bucket_start: int,
                    record: Record | None) -> RollupChunk:
        start = bucket_of(bucket_start, level.span)
        self._unpack(level, sid, start)
        chunk = self._rollup(level, sid, start) or RollupChunk(start, level.step)
        chunk.put(bucket_start, record, self.scales, self.roundings)
        self._write_chunk(level, sid, chunk)
        return chunk

    def _raw(self, sid: int, start: int) -> RawBucket | None:
        row = self.conn.execute(
            "SELECT data FROM history_raw WHERE series = ? AND start = ?", (sid, start)
        ).fetchone()
        if row is None:
            if start < self.packed_until[RAW_LEVEL.packed]:  # read from its packed row
                packed = self._packed_raw(sid, bucket_of(start, RAW_LEVEL.pack_span))
                return next((b for b in packed if b.start == start), None)
            return None
        try:
            return RawBucket.decode(row[0], start, self.scales)
        except ChunkError as exc:
            self._damaged("history_raw", sid, start, exc)
            return None

    def _packed_raw(self, sid: int, start: int) -> list[RawBucket]:
        """The buckets of a packed raw row ([] when there is none, or it is unreadable)."""
        row = self.conn.execute(f"SELECT data FROM {RAW_LEVEL.packed} WHERE series = ? AND "
                                "start = ?", (sid, start)).fetchone()
        if row is None:
            return []
        try:
            return RawBucket.decode(row[0], start, self.scales).split()
        except ChunkError as exc:
            self._damaged(RAW_LEVEL.packed, sid, start, exc)
            return []

    def newest_raw(self, sid: int) -> RawBucket | None:
        """The newest stored raw bucket of a series (None: none, or unreadable)."""
        newest = self.conn.execute("SELECT max(start) FROM history_raw WHERE series = ?",
                                   (sid,)).fetchone()[0]
        if newest is not None:
            return self._raw(sid, newest)
        if self.packed_until[RAW_LEVEL.packed] < 0:
            return None
        newest = self.conn.execute(f"SELECT max(start) FROM {RAW_LEVEL.packed} WHERE "
                                   "series = ?", (sid,)).fetchone()[0]
        buckets = [] if newest is None else self._packed_raw(sid, newest)
        return buckets[-1] if buckets else None

    def _unpack(self, level: Level, sid: int, start: int) -> None:
        """Before a write at `start` (a late sample, a back-fill): the packed row that holds
        it, if any, goes back into rows of `level.table` (packing takes them again)."""
        if not level.packed or start >= self.packed_until[level.packed]:
            return  # (every write of the running collector: nothing that new is packed)
        span = bucket_of(start, level.pack_span)
        row = self.conn.execute(f"SELECT data FROM {level.packed} WHERE series = ? AND "
                                "start = ?", (sid, span)).fetchone()
        if row is None:
            return
        try:
            rows = ([(b.start, b.encode(self.scales))
                     for b in RawBucket.decode(row[0], span, self.scales).split()]
                    if level is RAW_LEVEL else
                    [(c.start, c.encode())
                     for c in RollupChunk.decode(row[0], span, level.step).split(level.span)])
        except ChunkError as exc:  # unreadable: it goes (a write replaces a damaged row)
            self._damaged(level.packed, sid, span, exc)
            rows = []
        # a row of the level that is there already is newer than the packed one
        self.conn.executemany(f"INSERT OR IGNORE INTO {level.table} (series, start, data) "
                              "VALUES (?, ?, ?)", [(sid, s, data) for s, data in rows])
        self.conn.execute(f"DELETE FROM {level.packed} WHERE series = ? AND start = ?",
                          (sid, span))

    def _rollup(self, level: Level, sid: int, start: int) -> RollupChunk | None:
        row = self.conn.execute(
            f"SELECT data FROM {level.table} WHERE series = ? AND start = ?", (sid, start)
        ).fetchone()
        if row is None:
            return None
        try:
            return RollupChunk.decode(row[0], start, level.step)
        except ChunkError as exc:
            self._damaged(level.table, sid, start, exc)
            return None

    def _damaged(self, table: str, sid: int, start: int, exc: Exception) -> None:
        self.damaged += 1
        log.warning("history: %s row of series %d at %d cannot be read (%s): skipped",
                    table, sid, start, exc)

    def prune(self, now: float, retention: Retention) -> int:
        """Delete rows past their level's retention; how many. Per series, so each delete
        is a range at the start of that series' rows (no scan of the table)."""
        pruned = 0
        sids = [(sid,) for sid in self.keys]
        # the newest hour of a series that stopped reporting is only in history_5min (it
        # goes up when the series moves on): up it goes before it is deleted
        before_fine = int(now - retention.fine) - HOUR_S
        for sid in self.keys:  # (a keyed look-up each: no scan of the table)
            newest = self.conn.execute("SELECT max(start) FROM history_5min WHERE series = ?",
                                       (sid,)).fetchone()[0]
            if newest is not None and newest <= before_fine:
                chunk = self._rollup(FINE, sid, newest)
                if chunk is not None:
                    self._merge_up(COARSE, sid, chunk)
                for known in (*self._newest.values(), *self._newest_unsaved.values()):
                    known.pop(sid, None)  # read from the file again if it comes back
        for table, keep, span in (("history_raw", retention.raw, BUCKET_S),
                                  ("history_5min", retention.fine, HOUR_S),
                                  ("history_1h", retention.coarse, DAY_S),
                                  ("history_1d", retention.coarse, DAILY.span),
                                  (RAW_LEVEL.packed, retention.raw, RAW_LEVEL.pack_span),
                                  (FINE.packed, retention.fine, FINE.pack_span),
                                  (COARSE.packed, retention.coarse, COARSE.pack_span)):
            # a row goes when all of its span is past the retention
            before = int(now - keep) - span
            before_rows = self.conn.total_changes
            self.conn.executemany(
                f"DELETE FROM {table} WHERE series = ? AND start <= {before:d}", sids)
            pruned += self.conn.total_changes - before_rows
        return pruned

    # ------------------------------------------------------------------ reads
    def raw(self, sids: Iterable[int], start: float, end: float) -> dict[int, list[RawBucket]]:
        """Stored raw buckets of the series that overlap [start, end), in time order."""
        out: dict[int, list[RawBucket]] = {}
        first = bucket_of(start)
        packed = RAW_LEVEL.packed
        first_packed = bucket_of(start, RAW_LEVEL.pack_span)
        for sid in sids:
            found = []
            for bucket_start, data in self.conn.execute(
                    "SELECT start, data FROM history_raw WHERE series = ? AND start >= ? "
                    "AND start < ? ORDER BY start", (sid, first, end)):
                try:
                    found.append(RawBucket.decode(data, bucket_start, self.scales))
                except ChunkError as exc:
                    self._damaged("history_raw", sid, bucket_start, exc)
            if first_packed < self.packed_until[packed]:
                for span, data in self.conn.execute(
                        f"SELECT start, data FROM {packed} WHERE series = ? AND start >= ? "
                        "AND start < ?", (sid, first_packed, end)).fetchall():
                    try:
                        found += (b for b in RawBucket.decode(data, span, self.scales).split()
                                  if first <= b.start < end)
                    except ChunkError as exc:
                        self._damaged(packed, sid, span, exc)
                found.sort(key=lambda b: b.start)
            if found:
                out[sid] = found
        return out

    def first_start(self, sid: int) -> int | None:
        """The start of the oldest hourly chunk of a series (when its history begins)."""
        found = self.conn.execute("SELECT min(start) FROM history_1h WHERE series = ?",
                                  (sid,)).fetchone()[0]
        row = None if self.packed_until[COARSE.packed] < 0 else self.conn.execute(
            f"SELECT start, data FROM {COARSE.packed} WHERE series = ? ORDER BY start LIMIT 1",
            (sid,)).fetchone()
        if row is not None:
            try:
                ((_, columns),) = decode_all([row[1]])  # (its slots: the first column)
            except ChunkError as exc:
                self._damaged(COARSE.packed, sid, row[0], exc)
            else:
                first = row[0] + int(columns[0][0]) * HOUR_S
                found = first if found is None else min(found, first)
        return found

    def rollups(self, level: Level, sids: Iterable[int], mids: Iterable[int], start: float,
                end: float) -> dict[int, dict[int, RecordArrays]]:
        """Stored records of `level` in [start, end): series → metric → its records."""
        wanted = list(mids)
        out: dict[int, dict[int, RecordArrays]] = {}
        first = bucket_of(start, level.span)
        first_packed = bucket_of(start, level.pack_span) if level.packed else 0
        with_packed = bool(level.packed) and first_packed < self.packed_until[level.packed]
        for sid in sids:
            rows = self.conn.execute(
                f"SELECT start, data FROM {level.table} WHERE series = ? AND start >= ? "
                "AND start < ? ORDER BY start", (sid, first, end)).fetchall()
            if with_packed:  # packed rows hold whole spans before any row of the level
                rows[:0] = self.conn.execute(
                    f"SELECT start, data FROM {level.packed} WHERE series = ? AND start >= ? "
                    "AND start < ? ORDER BY start", (sid, first_packed, end)).fetchall()

            def damaged(chunk_start: int, exc: ChunkError, sid: int = sid) -> None:
                self._damaged(level.table, sid, chunk_start, exc)

            per_metric = rollup_arrays(rows, level.step, self.scales, wanted, damaged)
            if per_metric:
                out[sid] = per_metric
        return out
