"""The samples of collectors before the history tables (`node_samples`, `link_samples`, one
column per metric), moved into the history tables by the schema migration that adds them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from meshmon.history.chunks import RawBucket, bucket_of
from meshmon.history.samples import COUNTERS, OFFLINE_INTERVALS, SKIPPED, CounterRates, SeriesKey
from meshmon.history.tables import HistoryTables

NODE_COLUMNS = ("load1", "load5", "load15", "mem_total_kb", "mem_avail_kb",
                "rootfs_used_pct", "clients", "links", "seq")
"""the metric columns of `node_samples` (`seq` since schema version 3)"""
LINK_COLUMNS = (
    "signal_dbm", "signal_avg_dbm", "noise_dbm", "snr_db", "tx_rate_mbps", "rx_rate_mbps",
    "expected_tput_mbps", "tx_retries", "tx_failed", "inactive_ms", "tq", "lq", "nlq", "etx",
    "cost", "rxcost",
)  # fmt: skip
"""the metric columns of `link_samples` as meshmon c21697b made it"""


def convert(conn: sqlite3.Connection) -> int:
    """Move every old node and link sample into the history tables; how many samples."""
    tables = HistoryTables(conn)
    intervals = dict(conn.execute("SELECT id, interval_s FROM nodes"))
    moved = _store(tables, _node_samples(conn, intervals))
    moved += _store(tables, _link_samples(conn))
    tables.save_registry()  # (in the migration's transaction)
    tables.committed()
    return moved


def _node_samples(conn: sqlite3.Connection, intervals: dict[str, float]
                  ) -> Iterator[tuple[SeriesKey, float, dict[str, float]]]:
    last: dict[str, float] = {}
    rows = conn.execute(f"SELECT node, ts, {', '.join(NODE_COLUMNS)} FROM node_samples "
                        "ORDER BY node, ts")
    for node, ts, *values in rows:
        sample = {name: v for name, v in zip(NODE_COLUMNS, values, strict=True) if v is not None}
        total, avail = sample.get("mem_total_kb"), sample.get("mem_avail_kb")
        if total and avail is not None:
            sample["mem_used_pct"] = 100.0 * (1 - avail / total)
        interval = intervals.get(node) or 30.0
        gap = ts - last[node] if node in last else None
        sample["up_s"] = gap if gap is not None and 0 < gap <= OFFLINE_INTERVALS * interval \
            else interval
        last[node] = ts
        yield SeriesKey("node", node), ts, sample


def _link_samples(conn: sqlite3.Connection
                  ) -> Iterator[tuple[SeriesKey, float, dict[str, float]]]:
    rates = CounterRates()
    rows = conn.execute(
        f"SELECT src, dst, iface, kind, ts, {', '.join(LINK_COLUMNS)} FROM link_samples "
        "WHERE dst IS NOT NULL ORDER BY src, dst, iface, kind, ts")
    for src, dst, iface, kind, ts, *values in rows:
        key = SeriesKey("link", src, dst, iface, kind)
        sample: dict[str, float] = {}
        for name, value in zip(LINK_COLUMNS, values, strict=True):
            if value is None or name in SKIPPED:
                continue
            if name in COUNTERS:
                rate = rates.rate(key, name, ts, int(value), reset=False)
                if rate is not None:
                    sample[COUNTERS[name][0]] = rate
            else:
                sample[name] = value
        yield key, ts, sample


def _store(tables: HistoryTables,
           samples: Iterable[tuple[SeriesKey, float, dict[str, float]]]) -> int:
    """Write samples given series by series in time order, a bucket at a time."""
    count = 0
    current: tuple[int, RawBucket] | None = None
    for key, ts, values in samples:
        sid = tables.series_id(key)
        start = bucket_of(ts)
        if current is None or current[0] != sid or current[1].start != start:
            if current is not None:
                tables.write_bucket(*current)
            current = (sid, RawBucket(start))
        current[1].add(ts, tables.metric_ids(values))
        count += 1
    if current is not None:
        tables.write_bucket(*current)
    return count
