"""Maintainer sessions for `/admin`, kept on the server (table `admin_sessions`).

Signing in with the maintainer token makes a session: a random cookie value for the
browser, and on the server a row keyed by HMAC-SHA256(token, cookie value) with its
expiry. A request's cookie is good while that key is here and not expired. So:

- signing out deletes the row: the cookie is dead at once, and after a restart too;
- a changed token derives other keys: every session made with the old one is dead
  (its rows are never matched again and go when they expire);
- neither the token nor a cookie can be read back from the file (or a backup of it).

Live sessions are also kept in memory (one process owns the file), so checking a request
costs one HMAC and no database read; creating and ending one is written before answering.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from meshmon.storage.database import SqliteWorker

log = logging.getLogger(__name__)

DEFAULT_LIFETIME_S = 7 * 86_400.0
MAX_SESSIONS = 1000
"""live sessions kept; signing in beyond this ends the oldest"""
MAX_COOKIE_LEN = 200


def session_key(token: str, value: str) -> str:
    """The row key of cookie `value` under `token` (hex HMAC-SHA256)."""
    return hmac.new(
        token.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape"),
        hashlib.sha256,
    ).hexdigest()  # fmt: skip


class SessionStore:
    """Sessions in the collector's SQLite file, mirrored in memory."""

    def __init__(
        self,
        path: str | Path,
        *,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._db = SqliteWorker(path, "sessions")
        self._live: dict[str, float] = {}
        """key → expires_at, oldest first"""

    async def start(self) -> None:
        """Open the file, forget expired sessions, load the live ones."""
        await self._db.start()
        self._live = await self._db.run(self._load, self.clock())
        log.info("maintainer sessions: %d live", len(self._live))

    async def close(self) -> None:
        await self._db.close()

    def __len__(self) -> int:
        return len(self._live)

    async def create(self, token: str) -> str:
        """A new session for `token`: the cookie value (saved before it is returned)."""
        now = self.clock()
        value = secrets.token_urlsafe(32)
        key = session_key(token, value)
        expires_at = now + self.lifetime_s
        ended = [k for k, until in self._live.items() if until <= now]
        overflow = len(self._live) - len(ended) + 1 - MAX_SESSIONS
        if overflow > 0:
            ended += [k for k, until in self._live.items() if until > now][:overflow]
        await self._db.run(self._insert, key, now, expires_at, ended)
        for k in ended:
            self._live.pop(k, None)
        self._live[key] = expires_at
        return value

    def valid(self, token: str, value: str) -> bool:
        """Whether cookie `value` is a live session made with `token`."""
        if not token or not value or len(value) > MAX_COOKIE_LEN:
            return False
        expires_at = self._live.get(session_key(token, value))
        return expires_at is not None and self.clock() < expires_at

    async def end(self, token: str, value: str) -> bool:
        """Sign out: delete the session (False if it was not a live one)."""
        if not self.valid(token, value):
            return False
        key = session_key(token, value)
        await self._db.run(self._delete, [key])
        self._live.pop(key, None)
        return True

    # ------------------------------------------------------------------ worker thread
    def _load(self, now: float) -> dict[str, float]:
        def load(conn: sqlite3.Connection) -> list[tuple[str, float]]:
            conn.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", (now,))
            return conn.execute(
                "SELECT key, expires_at FROM admin_sessions ORDER BY created_at").fetchall()

        return dict(self._db.transaction(load))

    def _insert(self, key: str, now: float, expires_at: float, ended: list[str]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM admin_sessions WHERE key = ?", [(k,) for k in ended])
            conn.execute(
                "INSERT INTO admin_sessions (key, created_at, expires_at) VALUES (?, ?, ?)",
                (key, now, expires_at),
            )

        self._db.transaction(insert)

    def _delete(self, keys: list[str]) -> None:
        self._db.transaction(lambda conn: conn.executemany(
            "DELETE FROM admin_sessions WHERE key = ?", [(k,) for k in keys]))
