"""Opening the collector's SQLite file, and a worker thread to use one connection from.

Every connection to the file comes from `open_database`: it refuses a file written by a
newer meshmon before touching it, sets WAL mode, and applies the pending migrations, so the
first store to open the file migrates it and the others find it current.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from meshmon.errors import StartupError
from meshmon.storage.migrations import migrate, refuse_newer, schema_version

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
"""a write waits this long for another connection's transaction instead of failing"""


class StorageError(Exception):
    """The file cannot be written or read right now (disk full, I/O error, locked too
    long): the caller keeps what it can, logs it and goes on."""


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not done so itself: after a full disk
    or an I/O error it may have, and a ROLLBACK then would raise and hide that error."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def open_database(path: str | Path) -> sqlite3.Connection:
    """A connection (autocommit mode, WAL) to the file, its schema migrated to the latest.

    Raises StartupError naming the file when it cannot be opened, is not a database, was
    written by a newer meshmon (then it is left as it was), or a migration fails (rolled
    back)."""
    path = str(path)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StartupError(f"cannot open the SQLite database {path}: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS:d}")
        # before anything that writes: journal_mode=WAL alone rewrites the file header
        refuse_newer(path, schema_version(conn))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        before, after = migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise StartupError(
            f"cannot use the SQLite database {path}: {exc} (a schema upgrade that failed is "
            "rolled back: the file is as it was)") from None
    except BaseException:
        conn.close()
        raise
    if before != after:
        if before == 0:
            log.info("%s: schema version %d", path, after)
        else:
            log.info("%s: schema upgraded from version %d to %d", path, before, after)
    return conn


class SqliteWorker:
    """One connection to the file, used only from its own thread (a single-thread executor),
    so the event loop never waits on SQLite."""

    def __init__(self, path: str | Path, name: str) -> None:
        self.path = str(path)
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    async def start(self) -> None:
        """Open (and migrate) the file in the worker thread."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        try:
            await self.run(self._open)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and the thread (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_conn)
        finally:
            executor.shutdown(wait=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the worker thread (it may use `self.conn`); StorageError when
        SQLite cannot do it now (disk full, I/O error, locked)."""
        if self._executor is None:
            raise RuntimeError(f"{self.name}: the SQLite store is not started")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection (worker thread only)."""
        assert self._conn is not None
        return self._conn

    def transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """`body(conn)` in one write transaction (worker thread only).

        `BEGIN IMMEDIATE`: a write waits on another connection's batch (busy timeout) at
        the start instead of failing half-way."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        return result

    def _open(self) -> None:
        self._conn = open_database(self.path)

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
