"""Open buckets are not re-encoded at every write: a write appends the samples it got to
one journal row; a collector killed before its buckets closed finds every sample again,
and journal rows go once their buckets are stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meshmon.history import query
from meshmon.history.recorder import pending_buckets
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import HistoryTables
from meshmon.msgpack_slices import SLICE
from tests.history.helpers import T0, Recorder, node_report

NODES = ("a", "b", "c")


def batch(i: int) -> list:
    ts = T0 + 30.0 * i
    return [(ts, node_report(n, ts, i + 1, uptime=1000 + 30.0 * i, signal=-60.0 - i),
             ["peer"]) for n in NODES]


def test_a_write_within_a_bucket_is_one_journal_row_and_a_kill_loses_nothing(
        tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "h.sqlite")
    rec.feed(batch(0), T0)
    rec.feed(batch(1), T0 + 30)  # (the first rates: their metrics are registered)
    seen: list[str] = []
    rec.conn.set_trace_callback(seen.append)
    rec.feed(batch(2), T0 + 60)  # the same 5-minute bucket: nothing closes
    rec.conn.set_trace_callback(None)
    writes = [s for s in seen if s.startswith(("INSERT", "UPDATE", "REPLACE"))]
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO history_journal"), writes
    # a reader in another process finds them in the file
    other = sqlite3.connect(f"file:{tmp_path / 'h.sqlite'}?mode=ro", uri=True)
    tables = HistoryTables(other)
    found = query.samples(tables, pending_buckets(tables), SeriesKey("node", "a"))
    assert [s["seq"] for s in found] == [1, 2, 3]
    other.close()
    rec.close()  # killed: the buckets are open, their samples only in the journal

    rec = Recorder(tmp_path / "h.sqlite")  # its buckets are back in memory, open: their
    # journal rows stay until they are stored
    assert rec.conn.execute("SELECT count(*) FROM history_journal").fetchone()[0] == 3
    link = SeriesKey("link", "b", "peer", "wlan0", "wifi")
    answer = rec.answer(link, ["signal_dbm"], {"from": str(T0), "to": str(T0 + 300),
                                                "step": "raw"}, T0 + 90)
    assert answer["series"][0]["mean"] == [-60.0, -61.0, -62.0]
    # the bucket goes on after the restart; once it is stored, no journal row is left
    rec.feed(batch(3), T0 + 90)
    assert rec.conn.execute("SELECT count(*) FROM history_journal").fetchone()[0] == 4
    rec.feed(batch(10), T0 + 300)  # the next bucket: the first one is stored
    rec.feed([], T0 + 1000, close_all=True)
    assert rec.conn.execute("SELECT count(*) FROM history_journal").fetchone()[0] == 0
    answer = rec.answer(link, ["signal_dbm"], {"from": str(T0), "to": str(T0 + 600),
                                                "step": "raw"}, T0 + 1000)
    assert answer["series"][0]["mean"] == [-60.0, -61.0, -62.0, -63.0, -70.0]
    rec.close()


def test_a_journal_row_of_many_slices_comes_back_whole_after_a_kill(tmp_path: Path) -> None:
    # one write after a drain journals more samples than one slice of its encoding
    # (`meshmon.msgpack_slices`): three samples a report, node, interface and link
    nodes = [f"n{i:04d}" for i in range(SLICE)]
    rec = Recorder(tmp_path / "h.sqlite")
    rec.feed([(T0 + i / 100, node_report(n, T0 + i / 100, 1, signal=-50.0 - i % 40),
               ["peer"]) for i, n in enumerate(nodes)], T0 + 30)
    (journaled,) = rec.conn.execute("SELECT count(*) FROM history_journal").fetchone()
    assert journaled == 1
    assert rec.rec._unjournaled == []  # freed once the write committed
    rec.close()  # killed: every bucket open

    rec = Recorder(tmp_path / "h.sqlite")
    for i in (0, 1, SLICE // 3 + 1, SLICE - 1):
        link = SeriesKey("link", nodes[i], "peer", "wlan0", "wifi")
        answer = rec.answer(link, ["signal_dbm"], {"from": str(T0), "to": str(T0 + 300),
                                                    "step": "raw"}, T0 + 60)
        assert answer["series"][0]["mean"] == [-50.0 - i % 40], nodes[i]
    assert len(rec.rec.open_buckets) == 3 * SLICE
    rec.close()
