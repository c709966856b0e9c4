"""Closed buckets are stored a slice at a time: after a 5-minute boundary every series
closes one (~245,000 at guifi.net's size, ~37 s of work), and stored in one write they held
every report behind them for as long. A closed bucket waits in memory, where reads find it,
until a write has time for it or it is due; a late sample joins it there; a kill loses
nothing of it (its samples are in the journal)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from meshmon.history import recorder
from meshmon.history.samples import SeriesKey
from meshmon.sinks.sqlite import SqliteStore
from tests.history.helpers import T0, Recorder, node_report

NODES = [f"n{i:02d}" for i in range(30)]
QUERIES = ({"from": str(T0), "to": str(T0 + 600), "step": "raw"},  # raw samples
           {"from": str(T0 - 3600), "to": str(T0 + 3600), "step": "300"},  # 5-minute records
           {"from": str(T0 - 86_400), "to": str(T0 + 86_400), "step": "3600"})  # hourly


def batch(i: int, nodes: list[str] = NODES) -> list[Any]:
    ts = T0 + 30.0 * i
    return [(ts, node_report(n, ts, i + 1, uptime=1000 + 30.0 * i, rx_bytes=1000 * i,
                             signal=-60.0 - i % 7), ["peer"]) for n in nodes]


def answers(rec: Recorder, now: float) -> list[dict[str, Any]]:
    """What the API answers for every node's and link's load, memory and signal."""
    out = []
    for node in NODES:
        for key, metrics in ((SeriesKey("node", node), ["load", "mem_avail_kb"]),
                             (SeriesKey("link", node, "peer", "wlan0", "wifi"),
                              ["signal_dbm"])):
            out += [rec.answer(key, metrics, q, now) for q in QUERIES]
    return out


def raw_rows(rec: Recorder, start: float) -> int:
    return int(rec.conn.execute("SELECT count(*) FROM history_raw WHERE start = ?",
                                (int(start),)).fetchone()[0])


def fed_across_a_boundary(path: Path, budget: float | None) -> Recorder:
    """Ten reports a node in the first bucket, then the first of the next: every series
    closes its bucket in that last write, which stores them for `budget`."""
    rec = Recorder(path)
    for i in range(10):
        rec.feed(batch(i), T0 + 30.0 * i)
    rec.feed(batch(10), T0 + 300.0, close_budget_s=budget)
    return rec


def test_closed_buckets_wait_in_memory_where_reads_find_them(tmp_path: Path) -> None:
    at_once = fed_across_a_boundary(tmp_path / "at_once.sqlite", None)
    series = raw_rows(at_once, T0)
    assert series == len(NODES) * 3  # node, interface, link
    assert at_once.rec.closed_waiting == 0
    expected = answers(at_once, T0 + 330)
    assert all(a["series"] for a in expected)

    sliced = fed_across_a_boundary(tmp_path / "sliced.sqlite", 0.0)
    assert raw_rows(sliced, T0) == 0  # nothing was due, and no time was left for them
    assert sliced.rec.closed_waiting == series
    assert sliced.conn.execute("SELECT count(*) FROM history_5min").fetchone()[0] == 0
    assert answers(sliced, T0 + 330) == expected  # the API reads them in memory
    # their samples stay in the journal until they are stored: a kill loses none
    journal_rows = sliced.conn.execute("SELECT count(*) FROM history_journal").fetchone()[0]
    assert journal_rows == 11
    sliced.close()
    at_once.close()
    # a restart takes them back into memory from the journal, and its first write
    # stores them (compared with the other one restarted too, as an hour's record read
    # from the file is at its stored resolution)
    again = Recorder(tmp_path / "sliced.sqlite")
    assert raw_rows(again, T0) == 0 and again.rec.closed_waiting == series
    again.feed([], T0 + 330)
    assert raw_rows(again, T0) == series
    at_once = Recorder(tmp_path / "at_once.sqlite")
    assert answers(again, T0 + 330) == answers(at_once, T0 + 330)
    again.close()
    at_once.close()


def test_later_writes_store_them_in_the_order_they_closed(tmp_path: Path) -> None:
    at_once = fed_across_a_boundary(tmp_path / "at_once.sqlite", None)
    sliced = fed_across_a_boundary(tmp_path / "sliced.sqlite", 0.0)
    waiting = sliced.rec.closed_waiting
    sliced.feed(batch(11), T0 + 330, close_budget_s=0.0)
    assert sliced.rec.closed_waiting == waiting  # still no time for them
    at_once.feed(batch(11), T0 + 330)
    expected = answers(at_once, T0 + 360)
    assert answers(sliced, T0 + 360) == expected
    sliced.feed(batch(12), T0 + 360, close_budget_s=10.0)  # time for all of them
    assert sliced.rec.closed_waiting == 0
    at_once.feed(batch(12), T0 + 360)
    assert raw_rows(sliced, T0) == raw_rows(at_once, T0)
    for table in ("history_raw", "history_5min", "history_1h"):
        mine = sliced.conn.execute(f"SELECT series, start, data FROM {table} ORDER BY 1, 2")
        theirs = at_once.conn.execute(f"SELECT series, start, data FROM {table} ORDER BY 1, 2")
        assert mine.fetchall() == theirs.fetchall(), table
    assert answers(sliced, T0 + 390) == answers(at_once, T0 + 390)
    # the journal rows of the first bucket went once its buckets were all stored
    assert sliced.conn.execute("SELECT min(last_start) FROM history_journal").fetchone()[0] \
        == int(T0 + 300)
    sliced.close()
    at_once.close()


def test_a_bucket_is_stored_once_it_is_due(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "CLOSE_SPREAD_S", 0.0)  # due as soon as it closed
    rec = fed_across_a_boundary(tmp_path / "due.sqlite", 0.0)
    assert rec.rec.closed_waiting == 0
    assert raw_rows(rec, T0) == len(NODES) * 3
    rec.close()


def test_journal_rows_stay_while_a_bucket_of_theirs_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(tmp_path / "kill.sqlite")
    for i in range(10):
        rec.feed(batch(i), T0 + 30.0 * i)
    half = len(NODES) // 2
    monkeypatch.setattr(recorder, "CLOSE_SPREAD_S", 0.0)
    rec.rec.add(batch(10, NODES[:half]))  # these close due at once
    monkeypatch.setattr(recorder, "CLOSE_SPREAD_S", 3600.0)
    rec.feed(batch(10, NODES[half:]), T0 + 300, close_budget_s=0.0)  # these wait
    assert raw_rows(rec, T0) == half * 3
    assert rec.rec.closed_waiting == (len(NODES) - half) * 3
    rec.close()  # killed: what waited is in the journal
    again = Recorder(tmp_path / "kill.sqlite")
    again.feed([], T0 + 330)  # the first write after the restart stores it
    assert raw_rows(again, T0) == len(NODES) * 3
    again.close()


def test_a_late_sample_joins_its_bucket_while_it_waits(tmp_path: Path) -> None:
    rec = fed_across_a_boundary(tmp_path / "late.sqlite", 0.0)
    waiting = rec.rec.closed_waiting
    late_ts = T0 + 285.0  # in the first bucket, after its last sample
    late = [(late_ts, node_report("n00", late_ts, 99, uptime=1290, rx_bytes=9_500,
                                  signal=-80.0), ["peer"])]
    rec.feed(late, T0 + 340, close_budget_s=0.0)
    assert rec.rec.closed_waiting == waiting  # it joined the waiting bucket
    link = SeriesKey("link", "n00", "peer", "wlan0", "wifi")
    raw = {"from": str(T0), "to": str(T0 + 300), "step": "raw"}
    seen = rec.answer(link, ["signal_dbm"], raw, T0 + 340)["series"][0]
    assert seen["t"][-1] == late_ts and seen["mean"][-1] == -80.0
    rec.close()  # killed before it was stored: the journal holds the late sample too
    again = Recorder(tmp_path / "late.sqlite")
    assert again.answer(link, ["signal_dbm"], raw, T0 + 340)["series"][0] == seen
    again.close()


async def test_the_running_store_acknowledges_reports_while_closed_buckets_wait(
        tmp_path: Path) -> None:
    """With no time for closed buckets in its writes, the store still makes every report
    durable at once; reads see the waiting buckets; `flush` stores them."""
    now = [T0]
    store = SqliteStore(tmp_path / "store.sqlite", flush_interval_s=0.01,
                        clock=lambda: now[0])
    store.close_slice_s = 0.0
    await store.start()
    try:
        published = 0
        for i in range(11):
            now[0] = T0 + 30.0 * i
            for ts, report, dsts in batch(i):
                store.write_report(report, ts, dsts)
                published += 1
            async with asyncio.timeout(10):  # the writer task's own writes
                while store.reports_settled < published:
                    await asyncio.sleep(0.01)
        waiting = store.worker_status.closed_waiting
        assert waiting == len(NODES) * 3
        seen = await store.samples(SeriesKey("node", "n05"))
        assert [s["seq"] for s in seen] == list(range(1, 12))
        assert store.worker_status.closed_waiting == waiting  # a read does not store them
        await store.flush()
        assert store.worker_status.closed_waiting == 0
        assert await store.samples(SeriesKey("node", "n05")) == seen
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    assert conn.execute("SELECT count(*) FROM history_raw WHERE start = ?",
                        (int(T0),)).fetchone()[0] == len(NODES) * 3
    conn.close()


def test_a_series_that_stops_reporting_closes_its_bucket_after_the_idle_time(
        tmp_path: Path) -> None:
    """A write does not look at every open bucket while none can be idle; a series that
    stops reporting is still closed (stored) once its bucket ended CLOSE_AFTER_S ago, and
    one that moved on to a later bucket is not closed early."""
    rec = Recorder(tmp_path / "idle.sqlite")
    quiet, busy = NODES[:3], NODES[3:]
    rec.feed(batch(0), T0)
    bucket_end = T0 + 300.0
    for i in range(1, 12):  # 5.5 minutes: the busy nodes move on to the next bucket
        rec.feed(batch(i, busy), T0 + 30.0 * i)
    per_node = 3  # series: the node, its interface, its link
    assert raw_rows(rec, T0) == per_node * len(busy)  # closed by a sample of the next one
    rec.feed([], bucket_end + recorder.CLOSE_AFTER_S - 1)
    assert raw_rows(rec, T0) == per_node * len(busy)  # the quiet ones not idle long enough
    rec.feed([], bucket_end + recorder.CLOSE_AFTER_S)
    assert raw_rows(rec, T0) == per_node * len(NODES)
    assert raw_rows(rec, bucket_end) == 0  # the busy nodes' open buckets stay open
    for node in quiet:
        key = SeriesKey("node", node)
        assert rec.rec.tables is not None
        assert rec.rec.tables.series[key] not in rec.rec.open_buckets
    rec.close()


async def test_a_stop_leaves_closed_buckets_in_the_journal_for_the_next_start(
        tmp_path: Path) -> None:
    """A store closed while closed buckets wait stores none of them (after a 5-minute
    boundary at 35,000 nodes that was ~37 s of the stop); the next one reads them back
    and stores them."""
    now = [T0]
    path = tmp_path / "store.sqlite"
    store = SqliteStore(path, flush_interval_s=60, clock=lambda: now[0])
    store.close_slice_s = 0.0
    await store.start()
    for i in range(11):
        now[0] = T0 + 30.0 * i
        for ts, report, dsts in batch(i):
            store.write_report(report, ts, dsts)
    await store.flush(closed_buckets=False)  # (what `Service.stop` does first)
    waiting = store.worker_status.closed_waiting
    assert waiting == len(NODES) * 3
    seen = await store.samples(SeriesKey("node", "n05"))
    await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM history_raw").fetchone()[0] == 0
    conn.close()
    again = SqliteStore(path, flush_interval_s=60, clock=lambda: now[0])
    await again.start()
    try:
        assert again.worker_status.closed_waiting == waiting
        assert await again.samples(SeriesKey("node", "n05")) == seen
        await again.flush()
        assert again.worker_status.closed_waiting == 0
    finally:
        await again.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM history_raw WHERE start = ?",
                        (int(T0),)).fetchone()[0] == len(NODES) * 3
    conn.close()
