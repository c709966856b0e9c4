"""What the chaos runs found, one plain test each. A database that reaches its
`max_page_count` fails like one on a full disk (SQLITE_FULL), without mounting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshmon.history.samples import SeriesKey
from meshmon.model.wire import Report
from meshmon.sinks.sqlite import SqliteStore
from meshmon.storage.database import SqliteWorker, StorageError

NOW = 1_800_000_000.0


async def test_a_full_database_says_so_instead_of_cannot_rollback(tmp_path: Path) -> None:
    # found: after SQLITE_FULL at COMMIT, SQLite had rolled back by itself and our ROLLBACK
    # raised "cannot rollback - no transaction is active", hiding the real error
    worker = SqliteWorker(tmp_path / "m.sqlite", "test")
    await worker.start()
    try:
        def cap(_: object = None) -> None:
            pages = worker.conn.execute("PRAGMA page_count").fetchone()[0]
            worker.conn.execute(f"PRAGMA max_page_count = {pages + 2}")

        def write_a_lot() -> None:
            worker.transaction(lambda conn: conn.executemany(
                "INSERT INTO events (ts, kind, node, summary, fields) VALUES (1, 'x', 'n', ?, "
                "'{}')", [("x" * 4000,)] * 50))

        await worker.run(cap)
        with pytest.raises(StorageError, match="database or disk is full"):
            await worker.run(write_a_lot)
        assert not await worker.run(lambda: worker.conn.in_transaction)
        # and the connection still works once there is room
        await worker.run(lambda: worker.conn.execute("PRAGMA max_page_count = 1000000"))
        await worker.run(write_a_lot)
        count = await worker.run(
            lambda: worker.conn.execute("SELECT count(*) FROM events").fetchone()[0])
        assert count == 50
    finally:
        await worker.close()




def report(node: str, seq: int) -> Report:
    return Report.model_validate({"v": 1, "node": node, "ts": NOW + seq, "seq": seq,
                                  "interval_s": 1})


async def test_reports_that_never_got_stored_are_counted_by_their_seq(tmp_path: Path) -> None:
    # found: a collector killed with SIGKILL loses the reports it had received and not yet
    # written (the broker had their PUBACK); now the next collector counts them as missed
    path = tmp_path / "m.sqlite"
    first = SqliteStore(path, flush_interval_s=3600)
    await first.start()
    second = SqliteStore(path)
    try:
        for seq in (0, 1, 2):
            first.write_report(report("a", seq), NOW + seq, [])
        await first.flush()
        first.write_report(report("a", 3), NOW + 3, [])  # received, never written: "killed"
        assert first.missed_reports == 0
        await second.start()  # the next collector, on the same file
        for seq, missed in [(5, 2), (5, 2), (0, 2), (1, 2), (3, 3)]:
            # 3 and 4 never stored; a duplicate; the agent restarted (seq from 0); 2 skipped
            second.write_report(report("a", seq), NOW + 10 + seq, [])
            assert second.missed_reports == missed, seq
        second.write_report(report("new-node", 7), NOW, [])  # nothing known of it before
        assert second.missed_reports == 3
        await second.flush()
        rows = await second.samples(SeriesKey("node", "a"))
        # one sample per time: the duplicate 5, and 0 and 1 again (made at the times of the
        # first 0 and 1) replace what was stored at their time
        assert [r["seq"] for r in rows] == [0, 1, 2, 3, 5]
    finally:
        await second.close()
        await first.close()
