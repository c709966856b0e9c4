"""Packing finished spans into long rows (`meshmon.history.packing`): every answer of the API
is the same before and after, a late sample into a packed span is merged as into any
other, the store packs a slice at a time in its writes, and the file gets smaller."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from meshmon.history import query
from meshmon.history.chunks import DAY_S, HOUR_S, RawBucket, Record, RollupChunk, Stat
from meshmon.history.packing import PACK_AFTER_S, Packer
from meshmon.history.resolution import rounding_for
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import COARSE, FINE, PACKED_LEVELS, RAW_LEVEL, Retention
from meshmon.model.wire import Report
from tests.history.helpers import T0, Recorder, node_report

D0 = T0 - T0 % (16 * DAY_S)
"""the start of a 16-day span (the hourly level's packed rows)"""
DAYS = 18
INTERVAL = 600.0
END = D0 + DAYS * DAY_S
NOW = END + 2 * PACK_AFTER_S
LINK = SeriesKey("link", "a", "peer", "wlan0", "wifi")
NODE = SeriesKey("node", "a")
RETENTION = Retention(raw=(DAYS + 2) * DAY_S)
"""raw samples kept for the whole test, so that every level has packed rows"""
Queued = tuple[float, Report, list[str | None]]


def reports(start: float = D0, end: float = END, seed: int = 11) -> list[Queued]:
    rng = random.Random(seed)
    out: list[Queued] = []
    for i in range(int((end - start) / INTERVAL)):
        ts = start + i * INTERVAL + rng.uniform(0, 5)
        out.append((ts, node_report("a", ts, i + 1, uptime=1000 + i * INTERVAL,
                                    signal=round(rng.uniform(-80, -50), 1),
                                    rx_bytes=i * 1_000_000), ["peer"]))
    return out


def feed(rec: Recorder, queued: list[Queued]) -> None:
    for i in range(0, len(queued), 50):
        batch = queued[i:i + 50]
        rec.feed(batch, max(ts for ts, _, _ in batch))
    rec.feed([], queued[-1][0] + 3600, close_all=True)


QUESTIONS = [
    (key, metrics, {"from": str(int(frm)), "to": str(int(to)), "step": step})
    for key, metrics in ((LINK, ["signal_dbm", "tx_rate_mbps"]),
                         (NODE, ["load1", "clients", "availability"]))
    for frm, to, step in ((D0 + DAY_S + 1234, D0 + 2 * DAY_S, "raw"),
                          (D0 + 3 * DAY_S - 7200, D0 + 3 * DAY_S + 7200, "raw"),
                          (END - 6 * HOUR_S, NOW, "raw"),
                          (D0 + 5 * DAY_S + 600, D0 + 9 * DAY_S, "300"),
                          (D0 - DAY_S, NOW, "3600"),
                          (D0 + 3 * DAY_S, NOW, "86400"))]


def answers(rec: Recorder) -> list[dict[str, Any]]:
    out = [rec.answer(key, metrics, q, NOW) for key, metrics, q in QUESTIONS]
    assert rec.rec.tables is not None
    out.append({"samples": query.samples(rec.rec.tables, rec.rec.in_memory, LINK,
                                         D0 + DAY_S, D0 + 3 * DAY_S)})
    return out


def pack_all(rec: Recorder, now: float = NOW) -> Packer:
    """Passes of the store's packing, a write each, until none is due."""
    packer = rec.rec.packer
    assert packer is not None
    for _ in range(10_000):
        if not packer.due(now):
            return packer
        rec.conn.execute("BEGIN")
        packer.begin()
        rec.rec.pack(now, 0.0)  # one series a write
        rec.conn.execute("COMMIT")
        packer.committed()
    raise AssertionError("packing never finished")


def rows(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Queued], Path]:
    """A file with 18 days of a node's reports (every 10 minutes), not packed."""
    queued = reports()
    path = tmp_path_factory.mktemp("packing") / "unpacked.sqlite"
    rec = Recorder(path, RETENTION)
    feed(rec, queued)
    rec.close()
    return queued, path


def copy(src: Path, dst: Path) -> Recorder:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return Recorder(dst, RETENTION)


def test_every_answer_is_the_same_once_packed(fed: tuple[list[Queued], Path],
                                              tmp_path: Path) -> None:
    _, path = fed
    rec = copy(path, tmp_path / "h.sqlite")
    before = answers(rec)
    small = {t: rows(rec.conn, t) for t in ("history_raw", "history_5min", "history_1h")}
    packer = pack_all(rec)
    after = answers(rec)
    assert after == before
    # every level packed all but its newest spans: raw up to an hour before now, the
    # 5-minute records but the newest day's, the hourly but the newest 16 days'
    conn = rec.conn
    series = len(rec.rec.tables.keys) if rec.rec.tables else 0
    assert series == 3  # the node, its interface, its link
    assert rows(conn, RAW_LEVEL.packed) == series * (END - D0) // RAW_LEVEL.pack_span
    assert rows(conn, FINE.packed) == series * (DAYS - 1)
    assert rows(conn, COARSE.packed) == series
    assert rows(conn, "history_raw") == 0
    assert rows(conn, "history_5min") == series * 24
    assert rows(conn, "history_1h") == series * (DAYS - 16)
    assert sum(small.values()) > 40 * sum(rows(conn, t) for t in small)
    assert packer.packed_rows == sum(rows(conn, level.packed) for level in PACKED_LEVELS)
    # a collector started on the file reads the same
    rec.close()
    rec = Recorder(tmp_path / "h.sqlite", RETENTION)
    assert answers(rec) == before
    assert not pack_all(rec).packed_rows  # nothing left to pack


@pytest.mark.parametrize("late_day", [1, 9])
def test_a_late_sample_into_a_packed_span_is_merged(fed: tuple[list[Queued], Path],
                                                     tmp_path: Path, late_day: int) -> None:
    _, path = fed
    late = [(ts, report.model_copy(update={"ts": ts}), peers) for ts, report, peers in
            reports(D0 + late_day * DAY_S + 30, D0 + late_day * DAY_S + 3630, seed=5)]
    plain = copy(path, tmp_path / "plain.sqlite")
    plain.feed(late, NOW)
    packed = copy(path, tmp_path / "packed.sqlite")
    pack_all(packed)
    packed.feed(late, NOW)
    assert answers(packed) == answers(plain)
    # the spans the late samples went into were put back, and the next pass (when the
    # raw rows' cutoff moves on) packs them again
    assert rows(packed.conn, "history_raw") > 0
    pack_all(packed, NOW + RAW_LEVEL.pack_span)
    assert rows(packed.conn, "history_raw") == 0
    assert answers(packed) == answers(plain)


def test_packed_rows_go_with_their_retention(fed: tuple[list[Queued], Path],
                                             tmp_path: Path) -> None:
    _, path = fed
    rec = copy(path, tmp_path / "h.sqlite")
    pack_all(rec)
    assert rec.rec.tables is not None
    short = Retention(raw=2 * DAY_S, fine=7 * DAY_S, coarse=RETENTION.coarse)
    rec.rec.tables.prune(NOW, short)
    conn = rec.conn
    oldest_raw = conn.execute(f"SELECT min(start) FROM {RAW_LEVEL.packed}").fetchone()[0]
    oldest_fine = conn.execute(f"SELECT min(start) FROM {FINE.packed}").fetchone()[0]
    # a packed row goes when all of its span is past the retention, not before
    assert NOW - short.raw - RAW_LEVEL.pack_span < oldest_raw <= NOW - short.raw
    assert NOW - short.fine - DAY_S < oldest_fine <= NOW - short.fine
    assert rows(conn, COARSE.packed) == 3


def test_the_running_store_packs_in_its_writes(fed: tuple[list[Queued], Path],
                                               tmp_path: Path) -> None:
    """`HistoryRecorder.pack` in the write's transaction: a failed write packs nothing,
    closed buckets waiting to be stored go first."""
    _, path = fed
    rec = copy(path, tmp_path / "h.sqlite")
    packer = rec.rec.packer
    assert packer is not None and packer.due(NOW)
    rec.conn.execute("BEGIN")
    packer.begin()
    assert rec.rec.pack(NOW, 10.0) > 0
    rec.conn.execute("ROLLBACK")  # (the store's write failed: disk full)
    assert rows(rec.conn, RAW_LEVEL.packed) == 0
    pack_all(rec)
    assert rows(rec.conn, RAW_LEVEL.packed) > 0 and rows(rec.conn, "history_raw") == 0
    # a new day's reports: their buckets close, and nothing is packed while one waits
    more = reports(END, END + 2 * HOUR_S, seed=3)
    rec.rec.add(more)
    rec.rec.close_idle(NOW + DAY_S)
    assert rec.rec.closed_waiting
    later = NOW + DAY_S
    rec.conn.execute("BEGIN")
    rec.rec.write(rec.conn, close_budget_s=0.0)  # stores only what is due: none yet
    assert rec.rec.pack(later) == 0
    rec.conn.execute("COMMIT")
    rec.rec.committed()


def size(rec: Recorder) -> int:
    rec.conn.execute("VACUUM")
    rec.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return rec.path.stat().st_size


def test_packing_makes_the_file_smaller(fed: tuple[list[Queued], Path],
                                        tmp_path: Path) -> None:
    _, path = fed
    rec = copy(path, tmp_path / "h.sqlite")
    before = size(rec)
    pack_all(rec)
    after = size(rec)
    assert after < 0.8 * before, (before, after)


def test_joining_stored_numbers_is_joining_the_decoded_rows() -> None:
    """The packer's numpy path (`joined_stored`) writes what joining decoded rows writes:
    roll-ups with min and max stored either way, rows without a metric, raw buckets."""
    rng = random.Random(4)
    scales = {1: 100, 2: 1, 3: 100}
    roundings = {1: rounding_for("signal_dbm", 100), 2: rounding_for("rx_bps", 1)}
    start = int(D0)
    hours = []
    for h in range(6):
        chunk = RollupChunk(start + h * HOUR_S, 300)
        for slot in range(12):
            if rng.random() < 0.1:
                continue  # a 5-minute step without a report
            mean = rng.uniform(-80, -50)
            stats = {1: Stat(10, mean - rng.uniform(0, 3), mean, mean + rng.uniform(0, 3)),
                     2: Stat(9, 100, rng.uniform(100, 9e6), 9e6)}
            if h % 2:
                stats[3] = Stat(10, 1.0, rng.uniform(1, 2), 2.0)
            chunk.put(chunk.start + slot * 300, Record(10, stats), scales, roundings)
        hours.append((chunk.start, chunk.encode()))
    same = [row for i, row in enumerate(hours) if i % 2 == 0]
    for rows_ in (same, hours):
        expected = RollupChunk.joined(start, 300, [RollupChunk.decode(data, at, 300)
                                                   for at, data in rows_]).encode()
        stored = RollupChunk.joined_stored(start, 300, rows_)
        if rows_ is same:
            assert stored is not None and stored.encode() == expected
        else:
            assert stored is None  # other metrics in some hours: the caller joins them
    buckets = []
    for b in range(6):
        bucket = RawBucket(start + b * 300)
        for i in range(10):
            bucket.add(bucket.start + 30 * i + rng.random(),
                       {1: round(rng.uniform(-80, -50), 2), 2: float(rng.randrange(10**7))})
        buckets.append((bucket.start, bucket.encode(scales)))
    assert RawBucket.joined_stored(start, buckets) == RawBucket.joined(
        start, [RawBucket.decode(data, at, scales) for at, data in buckets]).encode(scales)
