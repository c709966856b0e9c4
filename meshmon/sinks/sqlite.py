"""SQLite store (always on): current state, recent samples, the event log.

One connection lives in one worker thread (a single-thread executor); the event loop only
appends row tuples to bounded in-memory queues. Every `flush_interval_s` the queued rows
go to the worker and are written with `executemany` in one transaction. Samples older
than `sample_retention_h` are pruned once a minute.

`save_state` snapshots references to the (immutable once built) Info/Report models and
LinkSamples; serialising them to JSON happens in the worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import operator
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import AnyReport, to_json
from meshmon.model.state import LinkKey, LinkSample, LinkState, NodeState
from meshmon.model.wire import LINK_METRICS, Info
from meshmon.sinks.base import MAX_CLOCK_SKEW_S, Event, sample_time
from meshmon.sinks.lag import LagTracker
from meshmon.storage.database import open_database, rollback

log = logging.getLogger(__name__)
T = TypeVar("T")

NODE_SAMPLE_COLUMNS = (
    "uptime_s", "load1", "load5", "load15", "mem_total_kb", "mem_avail_kb",
    "rootfs_used_pct", "clients", "links", "seq",
)  # fmt: skip
NODE_HISTORY_COLUMNS = NODE_SAMPLE_COLUMNS[:-1]
"""what node_history answers: every column but seq"""
LINK_KEY_COLUMNS = ("src", "peer", "iface", "kind")
# the tables are made and changed by meshmon.storage.migrations: a new column there, here
# only once the migration adds it

_INSERT_NODE_SAMPLE = (
    f"INSERT INTO node_samples (node, ts, {', '.join(NODE_SAMPLE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (2 + len(NODE_SAMPLE_COLUMNS)))})"
)
_INSERT_LINK_SAMPLE = (
    f"INSERT INTO link_samples (src, peer, iface, kind, dst, ts, {', '.join(LINK_METRICS)}, "
    f"chains_dbm) VALUES ({', '.join('?' * (7 + len(LINK_METRICS)))})"
)
_INSERT_EVENT = "INSERT INTO events (ts, kind, node, summary, fields) VALUES (?, ?, ?, ?, ?)"
_UPSERT_NODE = (
    "INSERT OR REPLACE INTO nodes (id, info, online, first_seen, last_seen, interval_s, "
    "last_report) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_LINK = (
    "INSERT OR REPLACE INTO links (src, peer, iface, kind, dst, peer_mac, sample, first_seen, "
    "last_seen, report_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DELETE_LINK = "DELETE FROM links WHERE src = ? AND peer = ? AND iface = ? AND kind = ?"

_link_items = operator.itemgetter(*LINK_METRICS)
_link_values = operator.attrgetter(*LINK_METRICS, "iface", "kind", "chains_dbm")
_SAMPLE_JSON = TypeAdapter(LinkSample)
PRUNE_INTERVAL_S = 60.0
SEQ_LOOKBACK_ROWS = 200_000
"""node samples read at start for each node's last seq (the newest rows: a few minutes of
reports of a large network)"""
FAILURE_LOG_INTERVAL_S = 60.0
"""while writes keep failing (disk full), a reminder is logged this often"""

NodeSnapshot = tuple[str, Info | None, bool, float | None, float | None, float, AnyReport | None]
LinkSnapshot = tuple[LinkKey, str | None, str | None, LinkSample, float, float, float]


def link_peer(link: wire.Link | fast.Link, dst: str | None) -> str:
    """The `peer` of a LinkKey: resolved node id, else `mac:<peer_mac>`, else the agent's id."""
    if dst:
        return dst
    if link.peer_mac:
        return f"mac:{link.peer_mac}"
    return link.peer or "unknown"


def _sample_json(key: LinkKey, mac: str | None, sample: LinkSample) -> str:
    """The stored JSON of a link sample, shaped like the dumped `wire.Link` it replaced
    (identity, then the metrics present), so older collectors can still read it."""
    # a full state save writes every link: pydantic-core encodes the metrics and the
    # strings are quoted once each (json.dumps of a dict costs 3x as much)
    peer = "" if key.peer.startswith("mac:") else f'"peer":{_quoted(key.peer)},'
    peer_mac = "" if mac is None else f'"peer_mac":{_quoted(mac)},'
    head = f'{{{peer}{peer_mac}"iface":{_quoted(key.iface)},"kind":{_quoted(key.kind)}'
    metrics = _SAMPLE_JSON.dump_json(sample, exclude_none=True).decode()
    return head + "}" if metrics == "{}" else head + "," + metrics[1:]


@functools.lru_cache(maxsize=65536)
def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json_list(values: Sequence[float] | None) -> str | None:
    # a JSON array of floats, without json.dumps' per-call overhead (hot path)
    return None if values is None else "[" + ",".join(map(repr, values)) + "]"


class SqliteStore:
    """The always-on store: a Sink plus current state, history and the event log."""

    name = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        sample_retention_h: float = 48.0,
        flush_interval_s: float = 1.0,
        queue_max: int = 200_000,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.clock = clock
        self.sample_retention_s = sample_retention_h * 3600.0
        self.flush_interval_s = flush_interval_s
        self.queue_max = queue_max
        self.max_clock_skew_s = max_clock_skew_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._node_rows: deque[tuple[Any, ...]] = deque()
        self._link_rows: deque[tuple[Any, ...]] = deque()
        self._event_rows: list[tuple[Any, ...]] = []
        self._state_nodes: dict[str, NodeSnapshot] = {}
        self._state_links: dict[LinkKey, LinkSnapshot] = {}
        self._state_removed: set[LinkKey] = set()
        self._inflight = 0
        self._last_prune = 0.0
        self._last_seq: dict[str, int] = {}
        """the seq of each node's latest report (restored from the file at start)"""
        self.missed_reports = 0
        self._failing_since: float | None = None
        """monotonic time of the first failed write of the current stretch"""
        self._failure_logged_at = 0.0
        self._dropped_before_failing = 0
        self.written_rows = 0
        self.dropped_rows = 0
        self.reports_settled = 0
        """reports whose node row left the queue, written or dropped (oldest first: the
        queue drops from its front, and failed batches go back to it)"""
        self.write_errors = 0
        self.pruned_rows = 0
        self.clock_fallbacks = 0
        self.last_write_ms = 0.0
        self.lag = LagTracker()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the database (migrating its schema) and start the batch writer."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            await self._call(self._open)
        except BaseException:  # e.g. a file from a newer meshmon: nothing to flush or close
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        self._task = asyncio.create_task(self._run(), name="sink-sqlite")

    async def flush(self) -> None:
        """Write everything queued so far."""
        async with self._lock:
            await self._write_queued()

    async def close(self) -> None:
        """Write what is queued, then close the database."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is None:
            return
        try:
            await self.flush()
        finally:
            await self._call(self._close_conn)
            self._executor.shutdown(wait=True)
            self._executor = None

    def stats(self) -> dict[str, float]:
        """queued, written_points (rows), dropped_points, write_errors, last_write_ms, …"""
        return {
            "queued": float(
                len(self._node_rows) + len(self._link_rows) + len(self._event_rows) + self._inflight
            ),
            "written_points": float(self.written_rows),
            "dropped_points": float(self.dropped_rows),
            "write_errors": float(self.write_errors),
            "last_write_ms": self.last_write_ms,
            "pruned_rows": float(self.pruned_rows),
            "missed_reports": float(self.missed_reports),
            "clock_fallbacks": float(self.clock_fallbacks),
            **self.lag.quantiles_ms(),
        }

    # ------------------------------------------------------------------ Sink writes
    def write_report(self, report: AnyReport, received_at: float,
                     dsts: Sequence[str | None]) -> None:
        """Queue one node sample and one sample per link (never blocks, never raises)."""
        try:
            ts = sample_time(report.ts, received_at, self.max_clock_skew_s)
            if ts != report.ts:
                self.clock_fallbacks += 1
            node = report.node
            sys = report.sys
            if sys is not None:
                load = (sys.load or []) + [None, None, None]
                self._node_rows.append((
                    node, ts, sys.uptime_s, load[0], load[1], load[2], sys.mem_total_kb,
                    sys.mem_avail_kb, sys.rootfs_used_pct, report.clients, len(report.links),
                    report.seq,
                ))  # fmt: skip
            else:
                self._node_rows.append(
                    (node, ts, None, None, None, None, None, None, None, report.clients,
                     len(report.links), report.seq)
                )
            self._count_missed(node, report.seq)
            rows = self._link_rows
            links: Sequence[wire.Link | fast.Link] = report.links
            for link, dst in zip(links, dsts, strict=True):
                if isinstance(link, wire.Link):  # a model (tests): from its __dict__, as
                    fields = link.__dict__       # getattr on a pydantic model costs 3x
                    rows.append((
                        node, dst or link_peer(link, dst), fields["iface"], fields["kind"], dst,
                        ts, *_link_items(fields), _json_list(fields["chains_dbm"]),
                    ))  # fmt: skip
                    continue
                *metrics, iface, kind, chains = _link_values(link)
                rows.append((node, dst or link_peer(link, dst), iface, kind, dst, ts, *metrics,
                             _json_list(chains)))
            self._bound()
        except Exception:
            log.exception("sqlite: cannot queue report of %s", report.node)

    def write_event(self, event: Event) -> None:
        """Queue one event for the event log (events are never dropped for space)."""
        try:
            self._event_rows.append(
                (event.ts, event.kind, event.node, event.summary, json.dumps(event.fields))
            )
        except Exception:
            log.exception("sqlite: cannot queue event %r", event)

    def save_state(
        self, nodes: Iterable[NodeState], links: Iterable[LinkState], removed: Iterable[LinkKey]
    ) -> None:
        """Queue an upsert of these nodes and links and a delete of `removed` links."""
        for n in nodes:
            self._state_nodes[n.id] = (
                n.id, n.info, n.online, n.first_seen, n.last_seen, n.interval_s, n.last_report
            )
        for ls in links:
            self._state_removed.discard(ls.key)
            self._state_links[ls.key] = (
                ls.key, ls.dst, ls.peer_mac, ls.sample, ls.first_seen, ls.last_seen, ls.report_ts
            )
        for key in removed:
            self._state_links.pop(key, None)
            self._state_removed.add(key)

    # ------------------------------------------------------------------ reads
    async def load_state(self) -> tuple[list[NodeState], list[LinkState]]:
        """The nodes and links saved last (so a restarted collector resumes at once)."""
        async with self._lock:
            await self._write_queued()
        return await self._call(self._load_state)

    async def link_history(self, src: str, peer: str, since: float) -> list[dict[str, Any]]:
        """Samples of links src→peer (any iface/kind) with ts ≥ since, oldest first."""
        rows = await self._call(
            self._query,
            "SELECT * FROM link_samples WHERE src = ? AND peer = ? AND ts >= ? ORDER BY ts",
            (src, peer, since),
        )
        for r in rows:
            chains = r.pop("chains_dbm")
            r["chains_dbm"] = None if chains is None else json.loads(chains)
        return rows

    async def node_history(self, node: str, since: float) -> list[dict[str, Any]]:
        """Node samples with ts ≥ since, oldest first (without seq, which is for counting)."""
        return await self._call(
            self._query,
            f"SELECT node, ts, {', '.join(NODE_HISTORY_COLUMNS)} FROM node_samples "
            "WHERE node = ? AND ts >= ? ORDER BY ts",
            (node, since),
        )

    async def events(self, since: float, limit: int = 10_000) -> list[dict[str, Any]]:
        """Events with ts ≥ since, oldest first (at most `limit`, the newest of them)."""
        rows = await self._call(
            self._query,
            "SELECT * FROM (SELECT ts, kind, node, summary, fields FROM events WHERE ts >= ? "
            "ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY ts",
            (since, limit),
        )
        for r in rows:
            r["fields"] = json.loads(r["fields"])
        return rows

    async def prune(self, now: float | None = None) -> int:
        """Delete samples older than the retention now (also done once a minute); rows deleted."""
        async with self._lock:
            await self._write_queued(auto_prune=False)
            before = (self.clock() if now is None else now) - self.sample_retention_s
            return await self._call(self._prune_now, before)

    # ------------------------------------------------------------------ internals (loop)
    def _count_missed(self, node: str, seq: int) -> None:
        """Count the reports a jump in `seq` skipped: never received, or received by a
        collector that was killed before it wrote them. A lower seq is an agent restart
        (seq counts from 0 at each start), a repeated one a duplicate: neither counts."""
        last = self._last_seq.get(node)
        if last is not None and seq > last + 1:
            self.missed_reports += seq - last - 1
        if last is None or seq != last:
            self._last_seq[node] = seq

    def _bound(self) -> None:
        over = len(self._node_rows) + len(self._link_rows) + self._inflight - self.queue_max
        if over <= 0:
            return
        for rows in (self._link_rows, self._node_rows):
            while over > 0 and rows:
                rows.popleft()
                over -= 1
                self.dropped_rows += 1
                if rows is self._node_rows:
                    self.reports_settled += 1

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("SqliteStore is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                async with self._lock:
                    await self._write_queued()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sqlite: writer error")

    async def _write_queued(self, auto_prune: bool = True) -> None:
        node_rows, self._node_rows = self._node_rows, deque()
        link_rows, self._link_rows = self._link_rows, deque()
        event_rows, self._event_rows = self._event_rows, []
        state_nodes, self._state_nodes = self._state_nodes, {}
        state_links, self._state_links = self._state_links, {}
        removed, self._state_removed = self._state_removed, set()
        now = self.clock()
        prune_before = None
        if auto_prune and now - self._last_prune >= PRUNE_INTERVAL_S:
            self._last_prune = now
            prune_before = now - self.sample_retention_s
        n = len(node_rows) + len(link_rows) + len(event_rows)
        if not (n or state_nodes or state_links or removed or prune_before):
            return
        self._inflight = len(node_rows) + len(link_rows)
        t0 = time.perf_counter()
        try:
            await self._call(
                self._write_batch, node_rows, link_rows, event_rows,
                list(state_nodes.values()), list(state_links.values()), list(removed),
                prune_before,
            )  # fmt: skip
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O: keep and retry
            self.write_errors += 1
            self._log_failure(exc)
            self._node_rows.extendleft(reversed(node_rows))
            self._link_rows.extendleft(reversed(link_rows))
            self._event_rows[:0] = event_rows
            for k, v in state_nodes.items():
                self._state_nodes.setdefault(k, v)
            for lk, lv in state_links.items():
                if lk not in self._state_removed:
                    self._state_links.setdefault(lk, lv)
            self._state_removed.update(k for k in removed if k not in self._state_links)
            self._inflight = 0
            self._bound()
            return
        except Exception:
            self.write_errors += 1
            self.dropped_rows += n
            self.reports_settled += len(node_rows)
            log.exception("sqlite: batch of %d rows dropped", n)
            return
        finally:
            self._inflight = 0
        self.written_rows += n
        self.reports_settled += len(node_rows)
        self.last_write_ms = (time.perf_counter() - t0) * 1000
        if self._failing_since is not None:
            log.warning("sqlite: writing to %s again after %.0f s; %d rows were dropped "
                        "meanwhile", self.path, time.monotonic() - self._failing_since,
                        self.dropped_rows - self._dropped_before_failing)
            self._failing_since = None
        # one node row per report; row[1] is its sample time
        self.lag.stored([row[1] for row in node_rows], time.time())

    def _log_failure(self, exc: sqlite3.OperationalError) -> None:
        """A failed write: logged when a stretch of them starts and once a minute while it
        lasts (the writer retries every flush), with the rows dropped so far."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = self._failure_logged_at = now
            self._dropped_before_failing = self.dropped_rows
            log.warning("sqlite: cannot write to %s: %s. Samples wait in memory and the "
                        "write is retried every %g s; beyond storage.queue_max (%d rows) the "
                        "oldest are dropped and counted (meshmon_sink_dropped_total"
                        "{sink=\"sqlite\"}). Alerts and the web pages go on.", self.path, exc,
                        self.flush_interval_s, self.queue_max)
        elif now - self._failure_logged_at >= FAILURE_LOG_INTERVAL_S:
            self._failure_logged_at = now
            log.warning("sqlite: still cannot write to %s after %.0f s: %s; %d rows dropped "
                        "so far", self.path, now - self._failing_since, exc,
                        self.dropped_rows - self._dropped_before_failing)

    # ------------------------------------------------------------------ internals (worker thread)
    def _open(self) -> None:
        self._conn = open_database(self.path)
        # the last stored seq of each node that reported lately: a report lost by a
        # collector killed before it wrote them shows as a gap after the restart
        newest = self._conn.execute("SELECT max(rowid) FROM node_samples").fetchone()[0] or 0
        for node, seq in self._conn.execute(
            "SELECT node, seq FROM node_samples WHERE rowid > ? AND seq IS NOT NULL "
            "ORDER BY rowid", (newest - SEQ_LOOKBACK_ROWS,)):
            self._last_seq[node] = seq

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write_batch(
        self,
        node_rows: Iterable[tuple[Any, ...]],
        link_rows: Iterable[tuple[Any, ...]],
        event_rows: list[tuple[Any, ...]],
        state_nodes: list[NodeSnapshot],
        state_links: list[LinkSnapshot],
        removed: list[LinkKey],
        prune_before: float | None,
    ) -> None:
        conn = self._conn
        assert conn is not None
        node_state = [
            (
                nid, None if info is None else info.model_dump_json(exclude_none=True),
                int(online), first, last, interval,
                None if rep is None else to_json(rep).decode(),
            )
            for nid, info, online, first, last, interval, rep in state_nodes
        ]  # fmt: skip
        link_state = [
            (*key, dst, mac, _sample_json(key, mac, sample), first, last, rts)
            for key, dst, mac, sample, first, last, rts in state_links
        ]
        conn.execute("BEGIN")
        try:
            conn.executemany(_INSERT_NODE_SAMPLE, node_rows)
            conn.executemany(_INSERT_LINK_SAMPLE, link_rows)
            conn.executemany(_INSERT_EVENT, event_rows)
            conn.executemany(_UPSERT_NODE, node_state)
            conn.executemany(_UPSERT_LINK, link_state)
            conn.executemany(_DELETE_LINK, removed)
            if prune_before is not None:
                self.pruned_rows += self._prune(conn, prune_before)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise

    @staticmethod
    def _prune(conn: sqlite3.Connection, before: float) -> int:
        """Delete samples with ts < before.

        Rows are appended in about time order, so the first rowid with ts ≥ before bounds
        the delete and the scan costs what is deleted, not the whole table (no ts index).
        """
        pruned = 0
        for table in ("node_samples", "link_samples"):
            first_kept = conn.execute(
                f"SELECT rowid FROM {table} WHERE ts >= ? ORDER BY rowid LIMIT 1", (before,)
            ).fetchone()
            if first_kept is None:
                cur = conn.execute(f"DELETE FROM {table} WHERE ts < ?", (before,))
            else:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE rowid < ? AND ts < ?", (first_kept[0], before)
                )
            pruned += cur.rowcount
        return pruned

    def _prune_now(self, before: float) -> int:
        assert self._conn is not None
        self._conn.execute("BEGIN")
        try:
            n = self._prune(self._conn, before)
            self._conn.execute("COMMIT")
        except BaseException:
            rollback(self._conn)
            raise
        self.pruned_rows += n
        return n

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        assert self._conn is not None
        cur = self._conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def _load_state(self) -> tuple[list[NodeState], list[LinkState]]:
        assert self._conn is not None
        nodes = [
            NodeState(
                id=nid,
                info=None if info is None else Info.model_validate_json(info),
                online=bool(online),
                first_seen=first,
                last_seen=last,
                last_report=None if rep is None else wire.Report.model_validate_json(rep),
                interval_s=interval,
            )
            for nid, info, online, first, last, interval, rep in self._conn.execute(
                "SELECT id, info, online, first_seen, last_seen, interval_s, last_report FROM nodes"
            )
        ]
        links = [
            LinkState(
                key=LinkKey(src, peer, iface, kind),
                dst=dst,
                peer_mac=mac,
                sample=LinkSample.from_dict(json.loads(sample)),
                first_seen=first,
                last_seen=last,
                report_ts=rts,
            )
            for src, peer, iface, kind, dst, mac, sample, first, last, rts in self._conn.execute(
                "SELECT src, peer, iface, kind, dst, peer_mac, sample, first_seen, last_seen, "
                "report_ts FROM links"
            )
        ]
        return nodes, links
