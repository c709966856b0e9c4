"""What the chaos runs found, one plain test each. A database that reaches its
`max_page_count` fails like one on a full disk (SQLITE_FULL), without mounting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshmon.storage.database import SqliteWorker, StorageError


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

