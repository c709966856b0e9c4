"""What the alert engine keeps across restarts: its open incidents, the alert log, silences
and the delivery queue.

It shares the collector's SQLite file (tables: `meshmon.storage.migrations`) but has its own
connection in its own worker thread (`meshmon.storage.database.SqliteWorker`). Writes here
are rare and small, so each is its own transaction. JSON is encoded on the event loop (the
caller's dicts may change later) and decoded in the worker thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from meshmon.alerts.model import Alert, Silence
from meshmon.storage.database import SqliteWorker

log = logging.getLogger(__name__)
T = TypeVar("T")

RETENTION_S = 30 * 86400.0
OUTAGE_RETENTION_S = 366 * 86400.0
"""outages stay in the log for a year: the node pages list them with the node's history"""
MAX_ERROR_CHARS = 500
MAX_ROW_ID = 2**63 - 1
"""SQLite's largest INTEGER (row ids are positive)"""

_SILENCE_COLUMNS = "id, node, tag, starts_at, ends_at, reason, created_by, created_at, ended_early"


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """One queued notification not yet delivered nor dropped."""

    id: int
    notifier: str
    payload: dict[str, Any]
    """`Alert.to_payload()` of the alert to send"""
    recipient: str | None
    attempts: int
    next_at: float
    """no attempt before this (unix seconds)"""
    created_at: float


class AlertStore:
    """The alert engine's tables in the shared SQLite database."""

    def __init__(
        self,
        path: str | Path,
        *,
        retention_s: float = RETENTION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.retention_s = retention_s
        self.clock = clock
        self._db = SqliteWorker(path, "alert-store")

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open (and migrate) the database, prune finished rows past the retention."""
        if self._db.started:
            return
        await self._db.start()
        try:
            pruned = await self._call(self._prune, self.clock() - self.retention_s)
        except BaseException:
            await self.close()
            raise
        if pruned:
            log.info(
                "alert store: pruned %d rows older than %.0f days", pruned, self.retention_s / 86400
            )

    async def close(self) -> None:
        """Close the database (idempotent)."""
        await self._db.close()

    # ------------------------------------------------------------------ engine state
    async def save_engine_state(self, state: dict[str, Any]) -> None:
        """Replace the saved engine state (one JSON document) with `state`."""
        text = json.dumps(state)
        await self._write(
            "INSERT OR REPLACE INTO engine_state (id, saved_at, state) VALUES (1, ?, ?)",
            (self.clock(), text),
        )

    async def load_engine_state(self) -> dict[str, Any] | None:
        """The state saved last, or None when none was ever saved."""
        rows = await self._read("SELECT state FROM engine_state WHERE id = 1", ())
        if not rows:
            return None
        state: dict[str, Any] = json.loads(rows[0][0])
        return state

    # ------------------------------------------------------------------ alert log
    async def log_alert(self, alert: Alert, notifiers: list[str], silenced: bool) -> None:
        """Append one alert the engine made, with the notifiers it went to (if not silenced)."""
        row = (
            alert.sent_at, alert.id, alert.status, alert.kind, alert.severity, alert.summary,
            json.dumps(list(notifiers)), int(silenced), json.dumps(alert.to_payload()),
        )  # fmt: skip
        await self._write(
            "INSERT INTO alert_log (ts, alert_id, status, kind, severity, summary, notifiers, "
            "silenced, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    async def outages_of(self, node: str, since: float, until: float) -> list[dict[str, Any]]:
        """The outages `node` was part of (as a cause or cut off) that overlap [since,
        until], oldest first: `{id, started_at, ended_at, cause, cause_links, affected,
        role}` as the newest notice of each says (times in unix seconds, ended_at None while
        open)."""
        return await self._call(self._outages_of, node, since, until)

    async def alerts(self, since: float = 0, limit: int = 500) -> list[dict[str, Any]]:
        """Logged alerts with ts ≥ since, oldest first (at most `limit`, the newest of them)."""
        return await self._call(self._alerts, since, limit)

    # ------------------------------------------------------------------ silences
    async def add_silence(self, s: Silence) -> Silence:
        """Save a new silence; returns a copy with its `id`."""
        row = (
            s.node, s.tag, s.starts_at, s.ends_at, s.reason, s.created_by, s.created_at,
            int(s.ended_early),
        )  # fmt: skip
        silence_id = await self._call(self._insert_silence, row)
        return dataclasses.replace(s, id=silence_id)

    async def end_silence(self, silence_id: int, now: float) -> bool:
        """End a silence early at `now`; False if it is unknown or already over."""
        if not 0 < silence_id <= MAX_ROW_ID:
            return False  # no such row, and SQLite could not even take the number
        changed = await self._write(
            "UPDATE silences SET ended_early = 1, ends_at = ? "
            "WHERE id = ? AND ended_early = 0 AND ends_at > ?",
            (now, silence_id, now),
        )
        return changed > 0

    async def silences(self, now: float, include_expired: bool = False) -> list[Silence]:
        """Active and future silences (all of them with `include_expired`), by start time."""
        where = "" if include_expired else "WHERE ended_early = 0 AND ends_at > ?"
        params: tuple[Any, ...] = () if include_expired else (now,)
        rows = await self._read(
            f"SELECT {_SILENCE_COLUMNS} FROM silences {where} ORDER BY starts_at, id", params
        )
        return [
            Silence(
                id=sid, node=node, tag=tag, starts_at=starts, ends_at=ends, reason=reason,
                created_by=by, created_at=created, ended_early=bool(early),
            )
            for sid, node, tag, starts, ends, reason, by, created, early in rows
        ]  # fmt: skip

    # ------------------------------------------------------------------ delivery queue
    async def enqueue_delivery(
        self, notifier: str, payload: dict[str, Any], recipient: str | None, created_at: float
    ) -> int:
        """Queue one notification (due at once); returns its delivery id."""
        text = json.dumps(payload)
        return await self._call(self._insert_delivery, (notifier, text, recipient, created_at))

    async def mark_delivered(self, ids: list[int], at: float) -> None:
        """These deliveries went out at `at` (one transaction)."""
        if ids:
            await self._call(self._mark_delivered, list(ids), at)

    async def mark_failed(
        self, delivery_id: int, attempts: int, next_at: float, error: str
    ) -> None:
        """An attempt failed: `attempts` made so far, the next one not before `next_at`."""
        await self._write(
            "UPDATE deliveries SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
            (attempts, next_at, error[:MAX_ERROR_CHARS], delivery_id),
        )

    async def drop_delivery(self, delivery_id: int, reason: str) -> None:
        """Give up on a delivery; the row stays (with the reason) for the log."""
        await self._write(
            "UPDATE deliveries SET dropped_at = ?, drop_reason = ? WHERE id = ?",
            (self.clock(), reason[:MAX_ERROR_CHARS], delivery_id),
        )

    async def pending_deliveries(self) -> list[PendingDelivery]:
        """Deliveries neither delivered nor dropped, oldest (lowest id) first."""
        return await self._call(self._pending)

    async def deliveries(self, limit: int = 500) -> list[dict[str, Any]]:
        """The newest `limit` delivery rows of any state, oldest first (for the log)."""
        rows = await self._call(self._deliveries, limit)
        return rows

    # ------------------------------------------------------------------ internals (loop)
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._db.run(fn, *args)

    async def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        return await self._call(self._execute_write, sql, params)

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._call(self._execute_read, sql, params)

    # ------------------------------------------------------------------ internals (worker thread)
    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        return self._db.transaction(body)

    def _execute_write(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._transaction(lambda conn: conn.execute(sql, params).rowcount)

    def _execute_read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._db.conn.execute(sql, params).fetchall()

    def _insert_silence(self, row: tuple[Any, ...]) -> int:
        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO silences (node, tag, starts_at, ends_at, reason, created_by, "
                "created_at, ended_early) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return self._transaction(insert)

    def _insert_delivery(self, row: tuple[Any, ...]) -> int:
        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO deliveries (notifier, payload, recipient, created_at, next_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (*row, row[3]),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return self._transaction(insert)

    def _mark_delivered(self, ids: list[int], at: float) -> None:
        self._transaction(
            lambda conn: conn.executemany(
                "UPDATE deliveries SET delivered_at = ? WHERE id = ?", [(at, i) for i in ids]
            )
        )

    def _alerts(self, since: float, limit: int) -> list[dict[str, Any]]:
        rows = self._execute_read(
            "SELECT ts, alert_id, status, kind, severity, summary, notifiers, silenced, payload "
            "FROM (SELECT * FROM alert_log WHERE ts >= ? ORDER BY ts DESC, id DESC LIMIT ?) "
            "ORDER BY ts, id",
            (since, limit),
        )
        return [
            {
                "ts": ts, "id": alert_id, "status": status, "kind": kind, "severity": severity,
                "summary": summary, "notifiers": json.loads(notifiers),
                "silenced": bool(silenced), "payload": json.loads(payload),
            }
            for ts, alert_id, status, kind, severity, summary, notifiers, silenced, payload in rows
        ]  # fmt: skip

    def _outages_of(self, node: str, since: float, until: float) -> list[dict[str, Any]]:
        # a cheap text match first (node ids hold no quote; `_` is a LIKE wildcard)
        pattern = '%"' + node.replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + '"%'
        rows = self._execute_read(
            "SELECT alert_id, payload FROM alert_log WHERE kind = 'outage' AND payload LIKE ? "
            "ESCAPE '\\' ORDER BY ts, id", (pattern,))
        newest: dict[str, dict[str, Any]] = {}
        for alert_id, payload in rows:
            newest[alert_id] = json.loads(payload)
        found = []
        for alert_id, p in newest.items():
            cause = p.get("cause") or {}
            nodes, links = list(cause.get("nodes", [])), list(cause.get("links", []))
            affected = list(p.get("affected", []))
            if node in nodes or any(node in (ln.get("a"), ln.get("b")) for ln in links):
                role = "cause"
            elif node in affected:
                role = "affected"
            else:
                continue
            started, ended = p.get("started_at_ts"), p.get("ended_at_ts")
            if started is None or started > until or (ended is not None and ended < since):
                continue
            found.append({"id": alert_id, "started_at": started, "ended_at": ended,
                          "cause": nodes, "cause_links": links, "affected": affected,
                          "role": role})
        return sorted(found, key=lambda o: (o["started_at"], o["id"]))

    def _pending(self) -> list[PendingDelivery]:
        rows = self._execute_read(
            "SELECT id, notifier, payload, recipient, attempts, next_at, created_at "
            "FROM deliveries WHERE delivered_at IS NULL AND dropped_at IS NULL ORDER BY id",
            (),
        )
        return [
            PendingDelivery(did, notifier, json.loads(payload), recipient, attempts, nxt, created)
            for did, notifier, payload, recipient, attempts, nxt, created in rows
        ]

    def _deliveries(self, limit: int) -> list[dict[str, Any]]:
        rows = self._execute_read(
            "SELECT id, notifier, payload, recipient, created_at, attempts, next_at, last_error, "
            "delivered_at, dropped_at, drop_reason FROM "
            "(SELECT * FROM deliveries ORDER BY id DESC LIMIT ?) ORDER BY id",
            (limit,),
        )
        names = (
            "id", "notifier", "payload", "recipient", "created_at", "attempts", "next_at",
            "last_error", "delivered_at", "dropped_at", "drop_reason",
        )  # fmt: skip
        out = [dict(zip(names, row, strict=True)) for row in rows]
        for r in out:
            r["alert_id"] = json.loads(r.pop("payload")).get("id")
        return out

    def _prune(self, before: float) -> int:
        def prune(conn: sqlite3.Connection) -> int:
            n = conn.execute(
                "DELETE FROM deliveries WHERE created_at < ? "
                "AND (delivered_at IS NOT NULL OR dropped_at IS NOT NULL)",
                (before,),
            ).rowcount
            n += conn.execute(
                "DELETE FROM alert_log WHERE ts < ? AND (kind != 'outage' OR ts < ?)",
                (before, self.clock() - OUTAGE_RETENTION_S)).rowcount
            n += conn.execute("DELETE FROM silences WHERE ends_at < ?", (before,)).rowcount
            return n

        return self._transaction(prune)
