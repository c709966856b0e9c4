"""SQLite store (always on): current state, the history of every node and link, the
event log.

One connection lives in one worker thread (a single-thread executor); the event loop only
appends reports, events and state to bounded in-memory queues. They go to the worker as
a group commit: a write starts as soon as something is queued and the previous write has
ended, but no sooner than `flush_interval_s` after the previous write started, and takes
everything queued meanwhile in one transaction (so batches grow with the load by
themselves, and a report waits at most `flush_interval_s` plus one write while the store
keeps up). The reports go through the history recorder (`meshmon.history.recorder`: raw
samples in 5-minute buckets, 5-minute and hourly roll-ups), the events and state with
`executemany`. With nothing queued the store still writes every `HOUSEKEEPING_S` while
history buckets are open (idle ones are rolled up); history past its retention is pruned
once an hour. Closed history buckets are stored `CLOSE_SLICE_S` at a time with each write
(after a 5-minute boundary every series closes one), or at once by `flush`. After a
failed write it waits `max(flush_interval_s, HOUSEKEEPING_S)`.

`save_state` snapshots references to the (immutable once built) Info/Report models and
LinkSamples; serialising them to JSON happens in the worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from meshmon.history import query
from meshmon.history.recorder import CLOSE_SLICE_S, HistoryRecorder, Queued, Reader
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import HistoryTables, Retention
from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import AnyReport, to_json
from meshmon.model.state import LinkKey, LinkSample, LinkState, NodeState
from meshmon.model.wire import Info
from meshmon.sinks.base import MAX_CLOCK_SKEW_S, Event, sample_time
from meshmon.sinks.lag import LagTracker
from meshmon.storage.database import open_database, rollback
from meshmon.tasks import spawn

log = logging.getLogger(__name__)
T = TypeVar("T")

# the tables are made and changed by meshmon.storage.migrations

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

_encode = msgspec.json.Encoder().encode
"""a LinkSample's metrics present, as JSON (a Struct that omits its None defaults)"""
PRUNE_INTERVAL_S = 3600.0
HOUSEKEEPING_S = 1.0
"""with nothing queued, open history buckets are looked at (idle ones rolled up) this often;
also the least pause after a failed write"""
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
    metrics = _encode(sample).decode()
    return head + "}" if metrics == "{}" else head + "," + metrics[1:]


@functools.lru_cache(maxsize=65536)
def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


HOLD_INGEST_AT = 20_000
"""reports waiting for a working write: the collector takes no more until fewer wait"""


class SqliteStore:
    """The always-on store: a Sink plus current state, history and the event log."""

    name = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        sample_retention_h: float = 48.0,
        history_5min_days: float = 30.0,
        history_1h_days: float = 366.0,
        flush_interval_s: float = 0.2,
        queue_max: int = 200_000,
        max_clock_skew_s: float = MAX_CLOCK_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.clock = clock
        self.history = HistoryRecorder(
            Retention(raw=sample_retention_h * 3600.0, fine=history_5min_days * 86_400.0,
                      coarse=history_1h_days * 86_400.0),
            max_waiting=queue_max)
        self.flush_interval_s = flush_interval_s
        self.close_slice_s: float | None = CLOSE_SLICE_S
        """how long a write spends storing closed history buckets before they are due
        (None: all of them in the write that closed them)"""
        self.queue_max = queue_max
        self.max_clock_skew_s = max_clock_skew_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._queued = asyncio.Event()
        """set when something is queued for the next write"""
        self._last_idle_check = 0.0
        """monotonic time the writer last looked for idle history buckets"""
        self._reports: deque[Queued] = deque()
        self._event_rows: list[tuple[Any, ...]] = []
        self._state_nodes: dict[str, NodeSnapshot] = {}
        self._state_links: dict[LinkKey, LinkSnapshot] = {}
        self._state_removed: set[LinkKey] = set()
        self._inflight = 0
        self._durable: list[float] = []
        """sample times of the reports the last batch made durable (worker → loop)"""
        self._last_prune = 0.0
        self._last_seq: dict[str, int] = {}
        """the seq of each node's latest report (restored from the file at start)"""
        self._info_json: dict[str, tuple[Info, str]] = {}
        """node → its info and that info's JSON as saved last (worker thread): an info is
        replaced, never changed, and most state saves carry the same one again"""
        self.missed_reports = 0
        self._failing_since: float | None = None
        """monotonic time of the first failed write of the current stretch"""
        self._failure_logged_at = 0.0
        self._dropped_before_failing = 0
        self.written_rows = 0
        self._history_dropped_settled = 0
        self.reports_settled = 0
        """reports stored in a committed batch or dropped and counted (the collector
        acknowledges a report to the broker once every ack sink settled it)"""
        self.dropped_rows = 0
        self.write_errors = 0
        self.pruned_rows = 0
        self.clock_fallbacks = 0
        self.last_write_ms = 0.0
        self.writes = 0
        self.write_s_total = 0.0
        """successful writes and their summed duration (s): per span, the mean write"""
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
        self._task = spawn(self._run(), "sink-sqlite")

    async def flush(self) -> None:
        """Write everything queued so far, every closed history bucket included."""
        async with self._lock:
            await self._write_queued(all_closed=True)

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
            async with self._lock:  # every open bucket of the history is rolled up
                await self._write_queued(close_all=True)
        finally:
            await self._call(self._close_conn)
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def dropped(self) -> int:
        """Reports (and events) dropped: beyond the queue, or while the file could not be
        written for long."""
        return self.dropped_rows + self.history.dropped_reports

    def stats(self) -> dict[str, float]:
        """queued, written_points (reports and events stored), dropped_points, write_errors,
        last_write_ms, …"""
        return {
            "queued": float(len(self._reports) + len(self._event_rows) + self._inflight),
            "written_points": float(self.written_rows),
            "dropped_points": float(self.dropped),
            "write_errors": float(self.write_errors),
            "last_write_ms": self.last_write_ms,
            "writes": float(self.writes),
            "write_s_total": self.write_s_total,
            "pruned_rows": float(self.pruned_rows),
            "missed_reports": float(self.missed_reports),
            "clock_fallbacks": float(self.clock_fallbacks),
            **self.lag.quantiles_ms(),
        }

    # ------------------------------------------------------------------ Sink writes
    def behind(self) -> bool:
        """Whether ingest should wait: `HOLD_INGEST_AT` reports (at most half of
        `queue_max`) wait for writes that succeed. A failing file does not hold ingest: the
        collector stays current and what does not fit is dropped and counted."""
        waiting = len(self._reports) + self._inflight
        return (waiting >= min(HOLD_INGEST_AT, self.queue_max // 2)
                and self._failing_since is None)

    def write_report(self, report: AnyReport, received_at: float,
                     dsts: Sequence[str | None]) -> None:
        """Queue one report for the history (never blocks, never raises)."""
        try:
            ts = sample_time(report.ts, received_at, self.max_clock_skew_s)
            if ts != report.ts:
                self.clock_fallbacks += 1
            reports = self._reports
            reports.append((ts, report, dsts))
            self._queued.set()
            self._count_missed(report.node, report.seq)
            if len(reports) + self._inflight > self.queue_max:
                self._bound()
        except Exception:
            log.exception("sqlite: cannot queue report of %s", report.node)

    def write_event(self, event: Event) -> None:
        """Queue one event for the event log (events are never dropped for space)."""
        try:
            self._event_rows.append(
                (event.ts, event.kind, event.node, event.summary, json.dumps(event.fields))
            )
            self._queued.set()
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
        self._queued.set()

    # ------------------------------------------------------------------ reads
    async def load_state(self) -> tuple[list[NodeState], list[LinkState]]:
        """The nodes and links saved last (so a restarted collector resumes at once)."""
        async with self._lock:
            await self._write_queued()
        return await self._call(self._load_state)

    @property
    def history_retention(self) -> Retention:
        """How long each level of the history is kept."""
        return self.history.retention

    async def read_history(self, fn: Reader[T]) -> T:
        """`fn(tables, the buckets in memory)` in the worker thread, after everything queued so far
        is written (`meshmon.history.query` reads with it)."""
        async with self._lock:
            await self._write_queued()
        return await self._call(self.history.read, fn)

    async def samples(self, key: SeriesKey, since: float = 0.0) -> list[dict[str, float]]:
        """The stored samples of one series with ts ≥ since, oldest first (`{"ts", metric:
        value, …}`), everything queued so far included."""
        return await self.read_history(
            lambda tables, in_memory: query.samples(tables, in_memory, key, since))

    async def write_history(self, fn: Callable[[HistoryTables], None]) -> None:
        """`fn(tables)` in one transaction of the worker thread, after everything queued is
        written (the demo's back-fill writes whole spans of history this way)."""
        async with self._lock:
            await self._write_queued(all_closed=True)
            await self._call(self._write_history, fn)

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
        """Delete history past its retention now (also done once an hour); rows deleted."""
        async with self._lock:
            await self._write_queued(auto_prune=False)
            return await self._call(self._prune_now, self.clock() if now is None else now)

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
        reports = self._reports
        while len(reports) + self._inflight > self.queue_max and reports:
            reports.popleft()
            self.dropped_rows += 1
            self.reports_settled += 1

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("SqliteStore is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self) -> None:
        """The group commit: wait for something queued (or the housekeeping time), for
        `flush_interval_s` since the last write started, then write all that is queued."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            pause = started + self.flush_interval_s - loop.time()
            if self._failing_since is not None:
                pause = max(pause, started + HOUSEKEEPING_S - loop.time())
            if pause > 0:
                await asyncio.sleep(pause)
            if not self.history.closed_waiting:  # (closed buckets: a slice each write)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HOUSEKEEPING_S):
                        await self._queued.wait()
            started = loop.time()
            idle_check = started - self._last_idle_check >= HOUSEKEEPING_S
            if idle_check:
                self._last_idle_check = started
            try:
                async with self._lock:
                    await self._write_queued(close_idle=idle_check)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sqlite: writer error")

    async def _write_queued(self, auto_prune: bool = True, close_all: bool = False,
                            close_idle: bool = True, all_closed: bool = False) -> None:
        """Write everything queued in one transaction (`close_idle`: roll up the history
        buckets that ended long enough ago; looking costs a pass over every open one).
        Closed history buckets are stored for up to `close_slice_s` beyond those due, or
        all of them (`all_closed`, `close_all`; `HistoryRecorder.write`)."""
        self._queued.clear()
        reports, self._reports = self._reports, deque()
        event_rows, self._event_rows = self._event_rows, []
        state_nodes, self._state_nodes = self._state_nodes, {}
        state_links, self._state_links = self._state_links, {}
        removed, self._state_removed = self._state_removed, set()
        now = self.clock()
        prune = auto_prune and now - self._last_prune >= PRUNE_INTERVAL_S
        if prune:
            self._last_prune = now
        n = len(reports) + len(event_rows)
        if not (n or state_nodes or state_links or removed or prune
                or self.history.closed_waiting or (close_idle and self.history.busy)
                or self.history.packing_due(now)):
            return
        self._inflight = len(reports)
        t0 = time.perf_counter()
        try:
            await self._call(
                self._write_batch, reports, event_rows,
                list(state_nodes.values()), list(state_links.values()), list(removed),
                now, prune, close_all, close_idle,
                None if all_closed or close_all else self.close_slice_s,
            )  # fmt: skip
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O: keep and retry
            self.write_errors += 1
            self._log_failure(exc)
            # the reports are in the history recorder's memory: it writes them next time
            self._event_rows[:0] = event_rows
            for k, v in state_nodes.items():
                self._state_nodes.setdefault(k, v)
            for lk, lv in state_links.items():
                if lk not in self._state_removed:
                    self._state_links.setdefault(lk, lv)
            self._state_removed.update(k for k in removed if k not in self._state_links)
            self._inflight = 0
            self._bound()
            self._queued.set()  # retried after the pause
            return
        except Exception:  # a bug: the events are lost; the history retries its part
            self.write_errors += 1
            self.dropped_rows += len(event_rows)
            log.exception("sqlite: batch failed, %d events dropped", len(event_rows))
            return
        finally:
            self._inflight = 0
        durable, self._durable = self._durable, []
        self.written_rows += len(durable) + len(event_rows)
        # settled: the reports this batch made durable, and those the history dropped while
        # the file could not be written (a report waiting in its memory settles later)
        dropped = self.history.dropped_reports
        self.reports_settled += len(durable) + dropped - self._history_dropped_settled
        self._history_dropped_settled = dropped
        took = time.perf_counter() - t0
        self.last_write_ms = took * 1000
        self.writes += 1
        self.write_s_total += took
        if self._failing_since is not None:
            log.warning("sqlite: writing to %s again after %.0f s; %d reports were dropped "
                        "meanwhile", self.path, time.monotonic() - self._failing_since,
                        self.dropped - self._dropped_before_failing)
            self._failing_since = None
        self.lag.stored(durable, time.time())

    def _log_failure(self, exc: sqlite3.OperationalError) -> None:
        """A failed write: logged when a stretch of them starts and once a minute while it
        lasts (the writer retries every flush), with the rows dropped so far."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = self._failure_logged_at = now
            self._dropped_before_failing = self.dropped
            log.warning("sqlite: cannot write to %s: %s. Samples wait in memory and the "
                        "write is retried every %g s; once storage.queue_max (%d) samples "
                        "wait, further reports are dropped and counted "
                        "(meshmon_sink_dropped_total{sink=\"sqlite\"}). Alerts and the web "
                        "pages go on.", self.path, exc, max(self.flush_interval_s, HOUSEKEEPING_S),
                        self.queue_max)
        elif now - self._failure_logged_at >= FAILURE_LOG_INTERVAL_S:
            self._failure_logged_at = now
            log.warning("sqlite: still cannot write to %s after %.0f s: %s; %d reports "
                        "dropped so far", self.path, now - self._failing_since, exc,
                        self.dropped - self._dropped_before_failing)

    # ------------------------------------------------------------------ internals (worker thread)
    def _open(self) -> None:
        self._conn = open_database(self.path)
        # the last stored seq of each node: a report lost by a collector killed before it
        # wrote them shows as a gap after the restart
        self._last_seq.update(self.history.open(self._conn))

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write_batch(
        self,
        reports: Iterable[Queued],
        event_rows: list[tuple[Any, ...]],
        state_nodes: list[NodeSnapshot],
        state_links: list[LinkSnapshot],
        removed: list[LinkKey],
        now: float,
        prune: bool,
        close_all: bool,
        close_idle: bool,
        close_budget_s: float | None,
    ) -> None:
        conn = self._conn
        assert conn is not None
        history = self.history
        history.add(reports)  # in memory: kept there if the transaction fails
        if close_idle or close_all:
            history.close_idle(now, close_all)
        node_state = [
            (
                nid, self._info_as_json(nid, info), int(online), first, last, interval,
                None if rep is None else to_json(rep).decode(),
            )
            for nid, info, online, first, last, interval, rep in state_nodes
        ]  # fmt: skip
        link_state = [
            (*key, dst, mac, _sample_json(key, mac, sample), first, last, rts)
            for key, dst, mac, sample, first, last, rts in state_links
        ]
        # IMMEDIATE: the write lock at the start (waiting for another connection's
        # write, the busy timeout), not at the first write after reads, where SQLite
        # fails at once when another connection wrote meanwhile ("database is locked")
        conn.execute("BEGIN IMMEDIATE")
        try:
            history.write(conn, close_budget_s)
            if close_budget_s is not None:  # the running store: a slice of packing
                history.pack(now)
            conn.executemany(_INSERT_EVENT, event_rows)
            conn.executemany(_UPSERT_NODE, node_state)
            conn.executemany(_UPSERT_LINK, link_state)
            conn.executemany(_DELETE_LINK, removed)
            pruned = history.prune(conn, now) if prune else 0
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        self._durable = history.committed()
        self.pruned_rows += pruned

    def _info_as_json(self, node: str, info: Info | None) -> str | None:
        """The stored JSON of a node's info (serialised again only when it was replaced)."""
        if info is None:
            return None
        saved = self._info_json.get(node)
        if saved is not None and saved[0] is info:
            return saved[1]
        text = info.model_dump_json(exclude_none=True)
        self._info_json[node] = (info, text)
        return text

    def _write_history(self, fn: Callable[[HistoryTables], None]) -> None:
        conn = self._conn
        tables = self.history.tables
        assert conn is not None and tables is not None
        conn.execute("BEGIN IMMEDIATE")  # (see _write_batch)
        try:
            fn(tables)
            tables.save_registry()
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        tables.committed()

    def _prune_now(self, now: float) -> int:
        assert self._conn is not None
        self._conn.execute("BEGIN IMMEDIATE")  # (see _write_batch)
        try:
            n = self.history.prune(self._conn, now)
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
