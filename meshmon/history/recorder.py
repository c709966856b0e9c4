"""The history side of the SQLite store: reports in, raw buckets and roll-ups out.

Runs in the store's worker (a thread or a process), next to its batch writes
(`meshmon.sinks.sqlite`):

- `add` turns queued reports into samples (`meshmon.history.samples`) and adds each to the
  open 5-minute bucket of its series, in memory. A sample of a later bucket closes the
  open one; a sample of an earlier bucket is late and is merged into the stored row.
- `write`, inside the store's batch transaction, appends the samples added since the last
  write to `history_journal`, all in one row (a kill loses at most one flush interval, and
  an open bucket is not re-encoded at every flush), and stores buckets that closed: their
  raw row, written once, and their 5-minute, hourly and daily records. Journal rows go
  once every bucket they hold is stored. A stop stores no open bucket (nor the closed ones
  not due yet): a collector that stopped, or was killed, takes what the journal holds back
  into memory when it starts again (`open`).
- Closed buckets are stored a slice at a time (`write(conn, close_budget_s)`). Every
  series closes its bucket within one report interval after each 5-minute boundary:
  ~245,000 closes at guifi.net's size, ~150 µs each, ~37 s of work that stored in one
  write held the reports behind it for as long. A closed bucket waits in memory, where
  reads find it (`in_memory`), and is stored at the latest `CLOSE_SPREAD_S` after it
  closed; a sample that comes late for it is added to it there.
- When the transaction fails (disk full), nothing is forgotten: `write` changes no memory
  and the next batch writes it all again. What waits is bounded: while writes fail, once
  `max_waiting` samples wait, further reports are dropped whole and counted
  (`dropped_reports`) until a write succeeds.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, TypeVar

import msgspec

from meshmon.disposal import empty
from meshmon.history.chunks import BUCKET_S, BucketsInMemory, RawBucket, bucket_of, stored_time
from meshmon.history.packing import PACK_SLICE_S, Packer
from meshmon.history.samples import Extractor
from meshmon.history.tables import HistoryTables, Retention
from meshmon.model.fastwire import AnyReport
from meshmon.msgpack_slices import encoded_slices

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOSE_AFTER_S = 60.0
"""a bucket without a later sample of its series is rolled up this long after its end"""

CLOSE_SPREAD_S = 240.0
"""a closed bucket is stored at the latest this long after it closed (sooner while
`write`'s slices have time for it)"""

CLOSE_SLICE_S = 0.04
"""how long one write of the running store may spend storing closed buckets that are not
due yet (the reports written with it wait for it)"""

Queued = tuple[float, AnyReport, Sequence[str | None]]
"""(sample time, report, resolved peer of each link)"""
Reader = Callable[[HistoryTables, BucketsInMemory], T]
JournalSample = tuple[int, float, dict[int, float]]
"""(series, time, {metric id: value}): what a journal row holds a list of"""
_journal_encoder = msgspec.msgpack.Encoder()
_journal_decoder = msgspec.msgpack.Decoder(list[JournalSample])
_NO_OPEN_BUCKET = 2**62


def _journal_row(samples: Sequence[JournalSample]) -> bytes:
    """What a journal row holds: the samples as MessagePack, compressed. Encoded and
    compressed a slice at a time: a write after a drain journals tens of thousands of
    samples, and the event loop, in another thread, takes the GIL between the slices
    (`meshmon.msgpack_slices`)."""
    compressor = zlib.compressobj(1)
    parts = [compressor.compress(piece) for piece in encoded_slices(_journal_encoder, samples)]
    parts.append(compressor.flush())
    return b"".join(parts)


def journal_buckets(conn: sqlite3.Connection) -> dict[tuple[int, int], RawBucket]:
    """(series, start) → the samples the journal holds of that bucket, at the times its raw
    row gives them (a sample stored already is the same sample)."""
    buckets: dict[tuple[int, int], RawBucket] = {}
    for (data,) in conn.execute("SELECT data FROM history_journal ORDER BY id").fetchall():
        try:
            samples = _journal_decoder.decode(zlib.decompress(data))
        except (msgspec.DecodeError, zlib.error) as exc:
            log.warning("history: a journal row cannot be read (%s): skipped", exc)
            continue
        for sid, ts, values in samples:
            start = bucket_of(ts)
            bucket = buckets.get((sid, start))
            if bucket is None:
                bucket = buckets[(sid, start)] = RawBucket(start)
            bucket.add(stored_time(ts, start), values)
    return buckets


def pending_buckets(tables: HistoryTables) -> dict[int, list[RawBucket]]:
    """What a running (or killed) collector holds in memory, read from its file: every
    bucket in the journal, with what is stored of it (for a reader in another process;
    `query.samples(tables, pending_buckets(tables), key)`)."""
    out: dict[int, list[RawBucket]] = {}
    for (sid, _), bucket in sorted(journal_buckets(tables.conn).items()):
        out.setdefault(sid, []).append(tables.with_stored(sid, bucket))
    return out


class _Closed(NamedTuple):
    sid: int
    bucket: RawBucket
    late: bool
    """samples of a bucket stored already (merged into its row)"""
    due: float
    """monotonic time by which it is stored"""


class _BucketsInMemory(Mapping[int, Sequence[RawBucket]]):
    """The recorder's `BucketsInMemory`: closed buckets not stored yet, then the open one."""

    def __init__(self, unstored: dict[int, list[RawBucket]], open_buckets: dict[int, RawBucket]
                 ) -> None:
        self._unstored, self._open = unstored, open_buckets

    def __getitem__(self, sid: int) -> Sequence[RawBucket]:
        waiting, live = self._unstored.get(sid), self._open.get(sid)
        if waiting is None:
            if live is None:
                raise KeyError(sid)
            return (live,)
        return (*waiting, live) if live is not None else tuple(waiting)

    def __iter__(self) -> Iterator[int]:
        yield from self._open
        yield from (sid for sid in self._unstored if sid not in self._open)

    def __len__(self) -> int:
        return len(self._open.keys() | self._unstored.keys())


class HistoryRecorder:
    """Open buckets in memory, and what the next write stores."""

    def __init__(self, retention: Retention | None = None, max_waiting: int = 1_000_000
                 ) -> None:
        self.retention = retention or Retention()
        self.max_waiting = max_waiting
        self.extractor: Extractor[int] = Extractor(self._metric_id)
        """samples by metric id (`open` gives it the file's)"""
        self.tables: HistoryTables | None = None
        self.packer: Packer | None = None
        """packs the rows of finished spans (`meshmon.history.packing`)"""
        self.open_buckets: dict[int, RawBucket] = {}
        self._unjournaled: list[JournalSample] = []
        """samples of open buckets added since the last write"""
        self._closing: deque[_Closed] = deque()
        """closed buckets to store and roll up, in the order they closed"""
        self._unstored: dict[int, list[RawBucket]] = {}
        """series → its closed buckets (not late ones) waiting in `_closing`"""
        self._held_starts: Counter[int] = Counter()
        """bucket start → how many buckets with it are held, open or waiting to be stored
        (journal rows with their samples stay)"""
        self._writing = 0
        """how many of `_closing` the last write stored (gone once it commits)"""
        self.in_memory: BucketsInMemory = _BucketsInMemory(self._unstored, self.open_buckets)
        self._last_closed: dict[int, int] = {}
        """series → start of its newest closed bucket (a sample up to it is late)"""
        self._oldest_open = _NO_OPEN_BUCKET
        """no open bucket starts before this (it may be older than the oldest: then the
        next `close_idle` looks at every open bucket and finds it again)"""
        self._known_up_to = 0
        """series ids up to this one were in the file at start (newer ones have no rows)"""
        self._waiting_samples = 0
        self._waiting_times: list[float] = []
        """sample times of the reports added since the last commit"""
        self.samples = 0
        self.dropped_reports = 0

    # ------------------------------------------------------------------ start
    def open(self, conn: sqlite3.Connection) -> dict[str, int]:
        """Load the registries; what the last run left in the journal (open buckets, and
        closed ones not stored yet: a stop stores neither, a kill could not) goes back into
        memory as it was, stored as it closes (merged with what is stored of it), and read
        from there meanwhile; the last `seq` of each node (its reports lost since then show
        as a gap). Storing it all here held the start for ~30 s at 35,000 nodes."""
        self.tables = tables = HistoryTables(conn)
        self.packer = Packer(tables)
        self.extractor = Extractor(tables.metric_id)
        self._known_up_to = max(tables.keys, default=0)
        buckets = journal_buckets(conn)
        for (sid, start), bucket in sorted(buckets.items()):
            bucket.unknown_stored = True  # (some may be stored already: merged, the same)
            before = self.open_buckets.get(sid)
            if before is not None:
                self._close(sid, before)
            self.open_buckets[sid] = bucket
            self._held_starts[start] += 1  # their journal rows stay until they are stored
            self._oldest_open = min(self._oldest_open, start)
        if buckets:
            log.info("history: %d buckets the last run left in its journal are back in "
                     "memory (stored as they close)", len(buckets))
        return self._last_seqs(tables)

    def _metric_id(self, name: str) -> int:
        assert self.tables is not None, "the recorder is not open"
        return self.tables.metric_id(name)

    def _last_seqs(self, tables: HistoryTables) -> dict[str, int]:
        seq = tables.metrics.get("seq")
        if seq is None:
            return {}
        out: dict[str, int] = {}
        for sid, key in tables.keys.items():
            if key.kind != "node":
                continue
            bucket = self.open_buckets.get(sid) or tables.newest_raw(sid)
            if bucket is None or seq not in bucket.values:
                continue
            column = bucket.values[seq]
            last = next((v for v in reversed(column) if v == v), None)
            if last is not None:
                out[key.node] = int(last)
        return out

    # ------------------------------------------------------------------ writing
    def add(self, queued: Iterable[Queued]) -> int:
        """Add the samples of queued reports to the open buckets (memory; reads the file
        only for a series' first bucket since start); how many samples."""
        tables = self.tables
        assert tables is not None
        extract = self.extractor.samples
        series, series_id = tables.series, tables.series_id
        open_buckets, journal = self.open_buckets, self._unjournaled
        added = 0
        failing = self._waiting_samples > 0  # the last write did not get through
        for ts, report, dsts in queued:
            if failing and self._waiting_samples >= self.max_waiting:
                self.dropped_reports += 1  # the file cannot be written for a long time
                continue
            try:
                samples = extract(report, ts, dsts)
            except Exception:  # a bug must not lose the other reports
                log.exception("history: cannot take samples from the report of %s",
                              report.node)
                continue
            self._waiting_samples += len(samples)
            self._waiting_times.append(ts)
            start = bucket_of(ts)
            for key, sample in samples:
                sid = series.get(key)
                if sid is None:
                    sid = series_id(key)
                bucket = open_buckets.get(sid)
                if bucket is None or bucket.start != start:
                    if start < (bucket.start if bucket is not None
                                else self._last_closed.get(sid, -1) + 1):
                        self._late(sid, start, ts, sample)
                        added += 1
                        continue
                    if bucket is not None:
                        self._close(sid, bucket)
                    bucket = open_buckets[sid] = self._first_bucket(sid, start)
                    self._held_starts[start] += 1
                    if start < self._oldest_open:
                        self._oldest_open = start
                bucket.add(ts, sample)
                journal.append((sid, ts, sample))
                added += 1
        self.samples += added
        return added

    def _late(self, sid: int, start: int, ts: float, sample: dict[int, float]) -> None:
        """A sample of a bucket that closed: added to it while it waits to be stored,
        merged into its stored row otherwise."""
        waiting = self._unstored.get(sid, ())
        closed = next((b for b in waiting if b.start == start), None)
        if closed is not None:
            closed.add(ts, sample)
            self._unjournaled.append((sid, ts, sample))
            return
        late = RawBucket(start)
        late.add(ts, sample)
        self._closing.append(_Closed(sid, late, True, time.monotonic() + CLOSE_SPREAD_S))

    def _first_bucket(self, sid: int, start: int) -> RawBucket:
        """A new open bucket. A series' first one since start may continue what the last
        run stored of it (a restart within the bucket): it is merged with that row when
        it is stored, and by reads meanwhile (`query`). Reading the row here, for every
        series, took ~20 s of the worker's time while the backlog after a restart drained
        at 35,000 nodes (bench/README.md, 2026-12-07)."""
        if sid in self._last_closed or sid > self._known_up_to:
            return RawBucket(start)
        return RawBucket(start, unknown_stored=True)

    def _close(self, sid: int, bucket: RawBucket) -> None:
        self._closing.append(_Closed(sid, bucket, False, time.monotonic() + CLOSE_SPREAD_S))
        self._unstored.setdefault(sid, []).append(bucket)
        self._last_closed[sid] = bucket.start

    @property
    def busy(self) -> bool:
        """Whether a write has something to do (open buckets wait to be closed, closed
        ones to be stored)."""
        return bool(self.open_buckets or self._closing or self._unjournaled)

    @property
    def closed_waiting(self) -> int:
        """Closed buckets not stored yet."""
        return len(self._closing)

    def close_idle(self, now: float, close_all: bool = False) -> None:
        """Close the buckets that ended more than CLOSE_AFTER_S ago (all of them at stop)."""
        limit = now - BUCKET_S - CLOSE_AFTER_S
        if not close_all and self._oldest_open > limit:
            return  # every write asks: looking at 210,000 open buckets took ~10 ms
        idle = [sid for sid, b in self.open_buckets.items() if close_all or b.start <= limit]
        for sid in idle:
            self._close(sid, self.open_buckets.pop(sid))
        self._oldest_open = min((b.start for b in self.open_buckets.values()),
                                default=_NO_OPEN_BUCKET)

    def write(self, conn: sqlite3.Connection, close_budget_s: float | None = None) -> int:
        """Store what changed, in the caller's transaction (no memory changes until
        `committed`): the journal row, and the closed buckets, in the order they closed;
        with `close_budget_s`, those that are due and then others for that long. How many
        raw rows it wrote."""
        tables = self.tables
        assert tables is not None and tables.conn is conn
        tables.begin()
        assert self.packer is not None
        self.packer.begin()
        tables.save_registry()
        journal = self._unjournaled
        if journal:
            # every journal sample is of a report added since the last commit, at its time
            conn.execute("INSERT INTO history_journal (last_start, data) VALUES (?, ?)",
                         (bucket_of(max(self._waiting_times)),
                          _journal_row(journal)))
        rows = 0
        now = time.monotonic()
        clock = time.perf_counter
        deadline = math.inf if close_budget_s is None else clock() + close_budget_s
        stored_starts: Counter[int] = Counter()
        for sid, closed, late, due in self._closing:
            if due > now and clock() > deadline:
                break
            if late or closed.unknown_stored:
                closed = tables.merge_raw(sid, closed)
            else:
                tables.store_raw(sid, closed)
            if not late:
                stored_starts[closed.start] += 1
            tables.roll_up(sid, closed)
            rows += 1
        self._writing = rows
        if rows:
            # rows whose buckets are all stored now (every open or waiting bucket starts
            # later) go; only a stored bucket moves the oldest start on
            oldest = min(self._held_starts - stored_starts, default=_NO_OPEN_BUCKET)
            conn.execute("DELETE FROM history_journal WHERE last_start < ?", (oldest,))
        return rows

    def committed(self) -> list[float]:
        """The write's transaction committed; the sample times of the reports it made
        durable."""
        assert self.tables is not None and self.packer is not None
        self.tables.committed()
        self.packer.committed()
        closing, unstored, starts = self._closing, self._unstored, self._held_starts
        for _ in range(self._writing):
            sid, bucket, late, _due = closing.popleft()
            if late:
                continue
            waiting = unstored[sid]
            del waiting[0]  # a series' buckets close, and are stored, in time order
            if not waiting:
                del unstored[sid]
            starts[bucket.start] -= 1
            if not starts[bucket.start]:
                del starts[bucket.start]
        self._writing = 0
        empty(self._unjournaled)  # a slice at a time, as `_journal_row` encodes them
        self._waiting_samples = 0
        durable, self._waiting_times = self._waiting_times, []
        return durable

    def packing_due(self, now: float) -> bool:
        """Whether finished spans wait to be packed (`pack`)."""
        return self.packer is not None and self.packer.due(now)

    def pack(self, now: float, budget_s: float = PACK_SLICE_S) -> int:
        """After `write`, in its transaction: pack finished spans for up to `budget_s`,
        unless closed buckets still wait to be stored (they go first); packed rows
        written."""
        if self.packer is None or len(self._closing) > self._writing:
            return 0
        return self.packer.pack(now, budget_s)

    def prune(self, conn: sqlite3.Connection, now: float) -> int:
        """Delete rows past their retention (in the caller's transaction); how many."""
        assert self.tables is not None
        return self.tables.prune(now, self.retention)

    # ------------------------------------------------------------------ reading
    def read(self, fn: Reader[T]) -> T:
        """`fn(tables, the buckets in memory)` (in the store's worker)."""
        assert self.tables is not None
        return fn(self.tables, self.in_memory)
