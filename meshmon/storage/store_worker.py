"""The SQLite store's worker: the one connection to the file and the history recorder's
memory, in a thread of the collector or a process of its own (`meshmon.worker_process`,
`[storage] worker`; `meshmon.sinks.sqlite` is the collector's side).

Each write comes as one `Batch` (to a process, encoded by the collector with msgspec as
MessagePack and decoded here into the same Structs): reports, events, the nodes and
links whose state changed. It answers with a `WorkerStatus`: the sample times the write
made durable and what the collector needs to know of the history without asking.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import msgspec

from meshmon.history.recorder import HistoryRecorder, Reader
from meshmon.history.tables import Retention
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import to_json
from meshmon.model.state import LinkKey, LinkSample
from meshmon.runtime import Freezer, tune_gc
from meshmon.storage.database import open_database, rollback

T = TypeVar("T")

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

EventRow = tuple[float, str, str | None, str, str]
NodeRow = tuple[str, str | None, bool, float | None, float | None, float, fast.Report | None]
"""id, info as JSON, online, first and last seen, interval, latest report"""
LinkRow = tuple[LinkKey, str | None, str | None, LinkSample, float, float, float]
"""key, dst, peer MAC, sample, first and last seen, report ts"""


class Batch(msgspec.Struct, array_like=True, gc=False):
    """One write: what the collector queued since the last one."""

    reports: list[tuple[float, fast.Report, Sequence[str | None]]]
    events: list[EventRow]
    nodes: list[NodeRow]
    links: list[LinkRow]
    removed: list[LinkKey]


encode_batch = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(Batch).decode


class WorkerStatus(NamedTuple):
    """What the collector knows of the worker after a call."""

    durable: list[float]
    """sample times of the reports the write made durable"""
    busy: bool
    """open buckets wait to be closed, or closed ones to be stored"""
    closed_waiting: int
    """closed buckets not stored yet"""
    dropped_reports: int
    """reports the history dropped (so far)"""
    pruned_rows: int
    packed_rows: int
    pack_busy_s: float


class StoreWorker:
    """The connection and the history recorder (in the worker's thread or process)."""

    def __init__(self, path: str, retention: Retention, max_waiting: int,
                 own_process: bool = False) -> None:
        if own_process:
            tune_gc()  # (a thread's GC is the collector's, tuned already)
        self.history = HistoryRecorder(retention, max_waiting=max_waiting)
        self.conn = open_database(path)
        self.last_seqs = self.history.open(self.conn)
        """the last stored seq of each node (a gap after a restart counts as missed)"""
        self.pruned_rows = 0
        self._freezer = Freezer() if own_process else None
        """the GC regime of a worker process; in a thread, the collector's own
        (`run_freezing_survivors`) covers the whole process: a second one collected and
        froze every 5 s again, holding the GIL up to ~15 ms more"""

    def status(self, durable: list[float] | None = None) -> WorkerStatus:
        history = self.history
        packer = history.packer
        return WorkerStatus(
            durable or [], history.busy, history.closed_waiting, history.dropped_reports,
            self.pruned_rows, packer.packed_rows if packer else 0,
            packer.busy_s if packer else 0.0)

    def opened(self) -> tuple[dict[str, int], WorkerStatus]:
        return self.last_seqs, self.status()

    def close(self) -> None:
        self.conn.close()

    def write_batch(self, blob: bytes | Batch, now: float, prune: bool, close_idle: bool,
                    close_budget_s: float | None) -> WorkerStatus:
        """Store one batch, encoded (from another process) or as it is (from a thread of
        the same one); `SqliteStore._write_queued` says what the flags do. With nothing
        to do it touches nothing."""
        batch = blob if isinstance(blob, Batch) else _decode_batch(blob)
        history = self.history
        history.add(batch.reports)  # in memory: kept there if the transaction fails
        if close_idle:
            history.close_idle(now)
        if not (batch.reports or batch.events or batch.nodes or batch.links
                or batch.removed or prune or history.closed_waiting
                or (close_idle and history.busy) or history.packing_due(now)):
            return self.status()
        node_state = [
            (nid, info, int(online), first, last, interval,
             None if rep is None else to_json(rep).decode())
            for nid, info, online, first, last, interval, rep in batch.nodes
        ]
        link_state = [
            (*key, dst, mac, _sample_json(key, mac, sample), first, last, rts)
            for key, dst, mac, sample, first, last, rts in batch.links
        ]
        conn = self.conn
        # IMMEDIATE: the write lock at the start (waiting for another connection's
        # write, the busy timeout), not at the first write after reads, where SQLite
        # fails at once when another connection wrote meanwhile ("database is locked")
        conn.execute("BEGIN IMMEDIATE")
        try:
            history.write(conn, close_budget_s)
            if close_budget_s is not None:  # the running store: a slice of packing
                history.pack(now)
            conn.executemany(_INSERT_EVENT, batch.events)
            conn.executemany(_UPSERT_NODE, node_state)
            conn.executemany(_UPSERT_LINK, link_state)
            conn.executemany(_DELETE_LINK, batch.removed)
            pruned = history.prune(conn, now) if prune else 0
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        durable = history.committed()
        self.pruned_rows += pruned
        if self._freezer is not None:
            self._freezer.after_write()
        return self.status(durable)

    def read(self, fn: Reader[T]) -> T:
        """`fn(tables, the buckets in memory)`."""
        return self.history.read(fn)

    def write_history(self, fn: Any) -> WorkerStatus:
        """`fn(tables)` in one transaction."""
        conn = self.conn
        tables = self.history.tables
        assert tables is not None
        conn.execute("BEGIN IMMEDIATE")  # (see write_batch)
        try:
            fn(tables)
            tables.save_registry()
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        tables.committed()
        return self.status()

    def prune_now(self, now: float) -> tuple[int, WorkerStatus]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")  # (see write_batch)
        try:
            n = self.history.prune(conn, now)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        self.pruned_rows += n
        return n, self.status()

    def query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def state_rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The nodes and links saved last, as stored (the collector decodes them)."""
        nodes = self.conn.execute(
            "SELECT id, info, online, first_seen, last_seen, interval_s, last_report FROM nodes"
        ).fetchall()
        links = self.conn.execute(
            "SELECT src, peer, iface, kind, dst, peer_mac, sample, first_seen, last_seen, "
            "report_ts FROM links").fetchall()
        return nodes, links


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
