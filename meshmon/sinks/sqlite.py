"""SQLite store (always on): current state, the history of every node and link, the
event log.

The connection and the history recorder's memory live in a worker
(`meshmon.storage.store_worker`): a thread of the collector (`worker="thread"`, the
default), or a process of its own (`worker="process"`, `meshmon.worker_process`), where
that work does not share the interpreter lock with the event loop. The event loop only
appends reports, events and state to bounded in-memory queues. They go to the worker as a
group commit: a write starts as soon as something is queued and the previous write has
ended, but no sooner than `flush_interval_s` after the previous write started, and takes
everything queued meanwhile in one transaction (so batches grow with the load by
themselves, and a report waits at most `flush_interval_s` plus one write while the store
keeps up). A write is one `store_worker.Batch` (to a process, as one MessagePack blob).
The reports go through the history recorder (`meshmon.history.recorder`: raw samples in
5-minute buckets, 5-minute and hourly roll-ups), the events and state with
`executemany`. With nothing queued the store still writes every `HOUSEKEEPING_S` while
history buckets are open (idle ones are rolled up); history past its retention is pruned
once an hour. Closed history buckets are stored `CLOSE_SLICE_S` at a time with each write
(after a 5-minute boundary every series closes one), or at once by `flush`; a stop leaves
them, and the open ones, in the history's journal for the next start. After a failed
write it waits `max(flush_interval_s, HOUSEKEEPING_S)`. When a worker process dies
(killed, out of memory), the reports it held and had not stored are counted as dropped
and the next write starts a new one.
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
from pathlib import Path
from typing import Any, TypeVar

from meshmon.disposal import DISPOSER
from meshmon.history import query
from meshmon.history.chunks import BucketsInMemory
from meshmon.history.recorder import CLOSE_SLICE_S, Reader
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import HistoryTables, Retention
from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import AnyReport, to_struct
from meshmon.model.state import LinkKey, LinkSample, LinkState, NodeState
from meshmon.model.wire import Info
from meshmon.sinks.base import MAX_CLOCK_SKEW_S, Event, sample_time
from meshmon.sinks.lag import LagTracker
from meshmon.storage import store_worker
from meshmon.storage.store_worker import Batch, LinkRow, NodeRow, WorkerStatus, encode_batch
from meshmon.tasks import spawn
from meshmon.worker_process import WORKERS, WorkerDied, WorkerThread

log = logging.getLogger(__name__)
T = TypeVar("T")

# the tables are made and changed by meshmon.storage.migrations

PRUNE_INTERVAL_S = 3600.0
HOUSEKEEPING_S = 1.0
"""with nothing queued, open history buckets are looked at (idle ones rolled up) this often;
also the least pause after a failed write"""
FAILURE_LOG_INTERVAL_S = 60.0
"""while writes keep failing (disk full), a reminder is logged this often"""

NodeSnapshot = tuple[str, Info | None, bool, float | None, float | None, float, AnyReport | None]
LinkSnapshot = LinkRow


def link_peer(link: wire.Link | fast.Link, dst: str | None) -> str:
    """The `peer` of a LinkKey: resolved node id, else `mac:<peer_mac>`, else the agent's id."""
    if dst:
        return dst
    if link.peer_mac:
        return f"mac:{link.peer_mac}"
    return link.peer or "unknown"


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
        worker: str = "thread",
    ) -> None:
        self.path = str(path)
        self.clock = clock
        self.retention = Retention(
            raw=sample_retention_h * 3600.0, fine=history_5min_days * 86_400.0,
            coarse=history_1h_days * 86_400.0)
        self._worker = WORKERS[worker](
            "sqlite", store_worker.__name__, store_worker.StoreWorker,
            (self.path, self.retention, queue_max, worker == "process"))
        self.worker_status = WorkerStatus([], False, 0, 0, 0, 0, 0.0)
        """the worker's answer to its last call (history buckets waiting, drops, packing)"""
        self.flush_interval_s = flush_interval_s
        self.close_slice_s: float | None = CLOSE_SLICE_S
        """how long a write spends storing closed history buckets before they are due
        (None: all of them in the write that closed them)"""
        self.queue_max = queue_max
        self.max_clock_skew_s = max_clock_skew_s
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._queued = asyncio.Event()
        """set when something is queued for the next write"""
        self._last_idle_check = 0.0
        """monotonic time the writer last looked for idle history buckets"""
        self._reports: deque[tuple[float, fast.Report, Sequence[str | None]]] = deque()
        self._event_rows: list[tuple[Any, ...]] = []
        self._state_nodes: dict[str, NodeSnapshot] = {}
        self._state_links: dict[LinkKey, LinkSnapshot] = {}
        self._state_removed: set[LinkKey] = set()
        self._inflight = 0
        self._held = 0
        """reports handed to the worker and neither stored nor dropped by it yet (lost
        with it if it dies)"""
        self._started = False
        self._last_prune = 0.0
        self._last_seq: dict[str, int] = {}
        """the seq of each node's latest report (restored from the file at start)"""
        self._info_json: dict[str, tuple[Info, str]] = {}
        """node → its info and that info's JSON as saved last: an info is replaced, never
        changed, and most state saves carry the same one again"""
        self.missed_reports = 0
        self._failing_since: float | None = None
        """monotonic time of the first failed write of the current stretch"""
        self._failure_logged_at = 0.0
        self._dropped_before_failing = 0
        self.written_rows = 0
        self.worker_losses = 0
        """reports lost with a worker process that died"""
        self.worker_deaths = 0
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
        # e.g. a file from a newer meshmon raises here, and the worker ends again
        last_seqs = await self._start_worker()
        # the last stored seq of each node: a report lost by a collector killed before it
        # wrote them shows as a gap after the restart
        self._last_seq.update(last_seqs)
        self._started = True
        self._task = spawn(self._run(), "sink-sqlite")

    @property
    def worker_pid(self) -> int | None:
        """The worker process's pid (None while there is none)."""
        return self._worker.pid if self._worker.running else None

    def worker_object(self) -> store_worker.StoreWorker:
        """The worker itself, when it runs in a thread (`worker="thread"`: benchmarks
        look into its memory)."""
        found = getattr(self._worker, "object", None)
        if found is None:
            raise RuntimeError("the store's worker is not in this process")
        return found

    async def _start_worker(self) -> dict[str, int]:
        await self._worker.start()
        last_seqs, self.worker_status = await self._worker.call("opened")
        return last_seqs

    async def flush(self, closed_buckets: bool = True) -> None:
        """Write everything queued so far (its history samples durable in the journal),
        and store every closed history bucket with it (`closed_buckets`: a stop leaves
        them in the journal, where the next start finds them)."""
        async with self._lock:
            await self._write_queued(closed_buckets=closed_buckets)

    async def close(self) -> None:
        """Write what is queued, then close the database."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self._started:
            return
        self._started = False
        try:
            # what is queued; the history's open and closed buckets stay in its journal
            # (the next start takes them back: storing them here took ~27 s at 35,000
            # nodes, bench/drain.py)
            async with self._lock:
                await self._write_queued()
        finally:
            if self._worker.running:
                with contextlib.suppress(WorkerDied):
                    await self._worker.call("close")
            await self._worker.stop()

    @property
    def dropped(self) -> int:
        """Reports (and events) dropped: beyond the queue, or while the file could not be
        written for long."""
        return self.dropped_rows + self.worker_status.dropped_reports

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
            "worker_losses": float(self.worker_losses),
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
            reports.append((ts, to_struct(report), dsts))
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
        nodes, links = await self._call("state_rows")
        return _node_states(nodes), _link_states(links)

    @property
    def history_retention(self) -> Retention:
        """How long each level of the history is kept."""
        return self.retention

    async def read_history(self, fn: Reader[T]) -> T:
        """`fn(tables, the buckets in memory)` in the worker, after everything
        queued so far is written (`meshmon.history.query` reads with it). `fn` and its
        answer are pickled for a worker process: a module-level function or a
        `functools.partial` of one."""
        async with self._lock:
            await self._write_queued()
        return await self._call("read", fn)

    async def samples(self, key: SeriesKey, since: float = 0.0) -> list[dict[str, float]]:
        """The stored samples of one series with ts ≥ since, oldest first (`{"ts", metric:
        value, …}`), everything queued so far included."""
        return await self.read_history(functools.partial(_samples_of, key, since))

    async def write_history(self, fn: Callable[[HistoryTables], None]) -> None:
        """`fn(tables)` in one transaction of the worker, after everything queued
        is written (the demo's back-fill writes whole spans of history this way; `fn` is
        pickled for a worker process, as by `read_history`)."""
        async with self._lock:
            await self._write_queued(closed_buckets=True)
            self.worker_status = await self._call("write_history", fn)

    async def events(self, since: float, limit: int = 10_000) -> list[dict[str, Any]]:
        """Events with ts ≥ since, oldest first (at most `limit`, the newest of them)."""
        rows: list[dict[str, Any]] = await self._call(
            "query",
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
            n, self.worker_status = await self._call(
                "prune_now", self.clock() if now is None else now)
            self.pruned_rows = self.worker_status.pruned_rows
            return n

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

    async def _call(self, method: str, *args: Any) -> Any:
        return await self._worker.call(method, *args)

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
            if not self.worker_status.closed_waiting:  # (closed: a slice each write)
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

    async def _write_queued(self, auto_prune: bool = True, close_idle: bool = True,
                            closed_buckets: bool = False) -> None:
        """Write everything queued in one transaction (`close_idle`: roll up the history
        buckets that ended long enough ago; looking costs a pass over every open one).
        Closed history buckets are stored for up to `close_slice_s` beyond those due, or
        all of them (`closed_buckets`; `HistoryRecorder.write`)."""
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
        # (close_idle: the worker also looks whether finished spans wait to be packed)
        if not (n or state_nodes or state_links or removed or prune or close_idle
                or self.worker_status.closed_waiting or not self._worker.running):
            return
        self._inflight = len(reports)
        t0 = time.perf_counter()
        sent = False
        try:
            if not self._worker.running:  # it died: a new one (raises as a write would)
                if not self._started:
                    raise RuntimeError("SqliteStore is not started")
                await self._start_worker()
            batch = Batch(
                list(reports), event_rows,
                [self._node_row(node) for node in state_nodes.values()],
                list(state_links.values()), list(removed))
            # (a thread takes the batch as it is; a process gets it as one blob)
            blob = batch if isinstance(self._worker, WorkerThread) else encode_batch(batch)
            sent = True
            status: WorkerStatus = await self._call(
                "write_batch", blob, now, prune, close_idle,
                None if closed_buckets else self.close_slice_s)
        except (sqlite3.OperationalError, WorkerDied) as exc:
            # locked, disk full, I/O: keep and retry (the reports are in the history
            # recorder's memory: it writes them next time); or the worker died
            self.write_errors += 1
            if isinstance(exc, WorkerDied):
                self._lost_with_worker(exc)
            else:
                self._log_failure(exc)
            if sent and not isinstance(exc, WorkerDied):
                self._held += len(reports)
            else:  # written again (a report a dead worker stored already is not stored
                # twice: the history keeps one sample per series and time)
                self._reports.extendleft(reversed(reports))
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
            if sent:
                self._held += len(reports)
            else:  # (not handed over: dropped and counted)
                self.dropped_rows += len(reports)
                self.reports_settled += len(reports)
            log.exception("sqlite: batch failed, %d events dropped", len(event_rows))
            return
        finally:
            self._inflight = 0
        durable = status.durable
        self.written_rows += len(durable) + len(event_rows)
        # settled: the reports this batch made durable, and those the history dropped while
        # the file could not be written (a report waiting in its memory settles later)
        dropped = status.dropped_reports
        newly_dropped = dropped - self.worker_status.dropped_reports
        self.reports_settled += len(durable) + newly_dropped
        self._held += len(reports) - len(durable) - newly_dropped
        self.worker_status = status
        self.pruned_rows = status.pruned_rows
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
        # after a drain a batch holds every link's state row and thousands of reports:
        # freed on the event loop, they held it 50–90 ms (`meshmon.disposal`)
        DISPOSER.dispose(reports, batch.reports, batch.nodes, batch.links, batch.removed,
                         state_nodes, state_links, removed)

    def _node_row(self, node: NodeSnapshot) -> NodeRow:
        nid, info, online, first, last, interval, rep = node
        return (nid, self._info_as_json(nid, info), online, first, last, interval,
                None if rep is None else to_struct(rep))

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

    def _lost_with_worker(self, exc: WorkerDied) -> None:
        """The worker process died: the reports it held and had not stored are gone
        (counted as dropped and settled); the next write starts a new one."""
        lost, self._held = self._held, 0
        self.worker_losses += lost
        self.dropped_rows += lost
        self.reports_settled += lost
        # a new worker counts its history's drops from 0 (those of this one settled)
        self.dropped_rows += self.worker_status.dropped_reports
        self.worker_status = self.worker_status._replace(dropped_reports=0)
        self.worker_deaths += 1
        log.error("%s; %d reports it held and had not stored are lost (counted in "
                  "meshmon_sink_dropped_total{sink=\"sqlite\"}). A new worker process "
                  "starts with the next write.", exc, lost)

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


def _samples_of(key: SeriesKey, since: float, tables: HistoryTables,
                in_memory: BucketsInMemory) -> list[dict[str, float]]:
    return query.samples(tables, in_memory, key, since)


def _node_states(rows: list[tuple[Any, ...]]) -> list[NodeState]:
    return [
        NodeState(
            id=nid,
            info=None if info is None else Info.model_validate_json(info),
            online=bool(online),
            first_seen=first,
            last_seen=last,
            last_report=None if rep is None else wire.Report.model_validate_json(rep),
            interval_s=interval,
        )
        for nid, info, online, first, last, interval, rep in rows
    ]


def _link_states(rows: list[tuple[Any, ...]]) -> list[LinkState]:
    return [
        LinkState(
            key=LinkKey(src, peer, iface, kind),
            dst=dst,
            peer_mac=mac,
            sample=LinkSample.from_dict(json.loads(sample)),
            first_seen=first,
            last_seen=last,
            report_ts=rts,
        )
        for src, peer, iface, kind, dst, mac, sample, first, last, rts in rows
    ]
