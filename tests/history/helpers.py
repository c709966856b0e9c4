"""A history recorder on a real SQLite file, driven the way the store's worker drives it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from meshmon.history import query
from meshmon.history.recorder import HistoryRecorder, Queued
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import Retention
from meshmon.model.wire import Report
from meshmon.storage.database import open_database

T0 = 1_800_000_000.0
"""a whole day (and hour, and 5-minute bucket) in unix seconds"""


def node_report(node: str, ts: float, seq: int, *, uptime: float = 1000.0,
                rx_bytes: int = 0, signal: float = -60.0, links: list[dict[str, Any]] | None
                = None, interval: float = 30.0) -> Report:
    """A report with one interface counter and one Wi-Fi link to `peer`."""
    if links is None:
        links = [{"peer": "peer", "iface": "wlan0", "kind": "wifi", "signal_dbm": signal,
                  "tx_rate_mbps": 130.0}]
    return Report.model_validate({
        "v": 1, "node": node, "ts": ts, "seq": seq, "interval_s": interval, "clients": 2,
        "sys": {"uptime_s": uptime, "load": [0.5, 0.3, 0.2], "mem_total_kb": 1000,
                "mem_avail_kb": 400},
        "ifaces": [{"name": "eth0", "up": True, "rx_bytes": rx_bytes}],
        "links": links,
    })


class Recorder:
    """A HistoryRecorder on its own file, with the store's transaction around each write."""

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = path
        self.conn: sqlite3.Connection = open_database(path)
        self.rec = HistoryRecorder(retention)
        self.rec.open(self.conn)

    def feed(self, queued: Iterable[Queued], now: float, close_all: bool = False,
             close_budget_s: float | None = None) -> None:
        """One batch: add the reports, close idle buckets, write in one transaction
        (storing closed buckets for `close_budget_s` beyond those due; None: all)."""
        self.rec.add(queued)
        self.rec.close_idle(now, close_all)
        self.conn.execute("BEGIN")
        self.rec.write(self.conn, close_budget_s)
        self.conn.execute("COMMIT")
        self.rec.committed()

    def answer(self, key: SeriesKey, metrics: list[str], q: dict[str, str], now: float
               ) -> dict[str, Any]:
        """What the API answers for one series."""
        assert self.rec.tables is not None
        win = query.window(q, now, self.rec.retention)
        sid = self.rec.tables.series[key]
        return query.read(self.rec.tables, self.rec.in_memory, [(sid, key)], metrics, win,
                          query.STATS, now)

    def close(self) -> None:
        self.conn.close()
