"""A year of roll-ups for 100 nodes: the file stays small and a node's page is read fast.

Each node has its own series (load, memory, clients, …), an interface (traffic) and three
links (signal, SNR, rates, TQ). The records are real encoded chunks of random walks made by
the roll-up code; to fill a year in seconds, each kind of series takes its chunks in turn
from 48 distinct days and hours (the size of a row is what its data compresses to, so
the file is as large as a year of such data is)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from meshmon.history import packing, query
from meshmon.history.chunks import BUCKET_S, DAY_S, HOUR_S, Record, RollupChunk, Stat, bucket_of
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import DAILY, HistoryTables
from meshmon.storage.database import open_database
from meshmon.web.history import NODE_METRICS

NODES = 100
LINKS = 3
DAYS = 365
FINE_DAYS = 30
NOW = 1_800_000_000 - 1_800_000_000 % DAY_S
VARIANTS = 48
METRICS = {
    "node": {"load1": (0.4, 0.2), "load5": (0.4, 0.1), "load15": (0.4, 0.05),
             "mem_used_pct": (55, 0.5), "clients": (8, 2), "links": (3, 0.1),
             "up_s": (30, 0), "seq": (5000, 10), "rootfs_used_pct": (40, 0.01)},
    "iface": {"rx_bps": (2e6, 5e5), "tx_bps": (8e5, 2e5), "rx_pps": (300, 50),
              "tx_pps": (200, 40)},
    "link": {"signal_dbm": (-62, 1.5), "snr_db": (32, 1.5), "tx_rate_mbps": (130, 10),
             "rx_rate_mbps": (120, 10), "expected_tput_mbps": (60, 5), "tq": (230, 5)},
}
BYTES_PER_NODE_YEAR = 2_300_000
"""a node with three links: a year of roll-ups (every metric noisy in every step, to 0.01:
the worst case) in 2.1 MB with chunk format 4 and the stated resolution (format 3 with
every figure to 0.01: 2.8 MB); bench/history.py has the whole file of a node with five
links (see bench/README.md: the 3 GB for 1,000 nodes is missed there)"""


def chunks(tables: HistoryTables, kind: str, rng: random.Random, step: int, span: int
           ) -> list[bytes]:
    """Encoded roll-up chunks (16 days, a day of hours, an hour of 5 minutes) of random
    walks."""
    mids = {tables.metric_ids({name: 0.0}).popitem()[0]: spec
            for name, spec in METRICS[kind].items()}
    out = []
    reports = step // 30  # a report every 30 s
    for _ in range(VARIANTS):
        chunk = RollupChunk(0, step)
        level = {mid: base for mid, (base, _) in mids.items()}
        for slot in range(span // step):
            stats = {}
            for mid, (base, wobble) in mids.items():
                level[mid] += rng.gauss(0, wobble / 3) + (base - level[mid]) * 0.05
                spread = abs(rng.gauss(0, wobble))
                stats[mid] = Stat(reports, level[mid] - spread, level[mid], level[mid] + spread)
            chunk.put(slot * step, Record(reports, stats), tables.scales, tables.roundings)
        out.append(chunk.encode())
    return out


def fill(path: Path) -> tuple[HistoryTables, list[str]]:
    conn = open_database(path)
    tables = HistoryTables(conn)
    rng = random.Random(5)
    kinds = ("node", "iface", "link")
    day_chunks = {k: chunks(tables, k, rng, HOUR_S, DAY_S) for k in kinds}
    hour_chunks = {k: chunks(tables, k, rng, BUCKET_S, HOUR_S) for k in kinds}
    span_chunks = {k: chunks(tables, k, rng, DAY_S, DAILY.span) for k in kinds}
    first_span = bucket_of(NOW - DAYS * DAY_S, DAILY.span)
    nodes = [f"node-{i:03d}" for i in range(NODES)]
    conn.execute("BEGIN")
    for i, node in enumerate(nodes):
        keys = [SeriesKey("node", node), SeriesKey("iface", node, "", "eth0")]
        keys += [SeriesKey("link", node, nodes[(i + d) % NODES], "wlan0", "wifi")
                 for d in range(1, LINKS + 1)]
        for key in keys:
            sid = tables.series_id(key)
            days, hours, spans = (day_chunks[key.kind], hour_chunks[key.kind],
                                  span_chunks[key.kind])
            conn.executemany(
                "INSERT INTO history_1h (series, start, data) VALUES (?, ?, ?)",
                [(sid, NOW - d * DAY_S, days[(d + sid) % VARIANTS]) for d in range(1, DAYS + 1)])
            conn.executemany(
                "INSERT INTO history_5min (series, start, data) VALUES (?, ?, ?)",
                [(sid, NOW - h * HOUR_S, hours[(h + sid) % VARIANTS])
                 for h in range(1, FINE_DAYS * 24 + 1)])
            conn.executemany(
                "INSERT INTO history_1d (series, start, data) VALUES (?, ?, ?)",
                [(sid, start, spans[(start // DAILY.span + sid) % VARIANTS])
                 for start in range(first_span, NOW, DAILY.span)])
    tables.save_registry()
    conn.execute("COMMIT")
    tables.committed()
    conn.execute("VACUUM")
    return tables, nodes


def read_node(tables: HistoryTables, node: str) -> tuple[list[Any], dict[str, float]]:
    """The node page's 30 days and year (answers, seconds each), checked."""
    series = query.node_series(tables, node)
    assert len(series) == 2 + 2 * LINKS  # its own, its interface, its links both ways
    answers, timings = [], {}
    for range_, points in (("30d", 30 * 24), ("1y", DAYS)):
        win = query.window({"range": range_}, NOW, query.Retention())
        started = time.perf_counter()
        answer = query.read(tables, {}, series, list(NODE_METRICS), win, ("mean",), NOW)
        timings[range_] = time.perf_counter() - started
        signal = [s for s in answer["series"] if s["metric"] == "signal_dbm"]
        assert len(signal) == 2 * LINKS
        assert all(sum(v is not None for v in s["mean"]) == points for s in signal), range_
        availability = next(s for s in answer["series"] if s["metric"] == "availability")
        assert min(v for v in availability["mean"] if v is not None) > 0.99
        answers.append(answer)
    return answers, timings


def file_size(tables: HistoryTables, path: Path) -> int:
    tables.conn.execute("VACUUM")
    tables.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def test_a_year_of_rollups_for_100_nodes(tmp_path: Path) -> None:
    path = tmp_path / "year.sqlite"
    tables, nodes = fill(path)
    size = file_size(tables, path)
    assert size / NODES < BYTES_PER_NODE_YEAR, f"{size / NODES:.0f} bytes per node and year"
    before, timings = read_node(tables, nodes[42])
    # bench/history.py measures against the 50 ms target for 30 days (~35 ms of CPU); here
    # bounds that a loaded CI machine keeps too (a year: 184 rows of history_1d)
    assert timings["30d"] < 0.3 and timings["1y"] < 0.3, timings

    # as the running collector keeps it: finished spans packed into long rows
    tables.conn.execute("BEGIN")
    until = packing.cutoffs(NOW + packing.PACK_AFTER_S)
    packed = sum(packing.pack_series(tables, sid, until) for sid in sorted(tables.keys))
    tables.conn.execute("COMMIT")
    assert packed == NODES * (2 + LINKS) * (FINE_DAYS + DAYS // 16)
    after, timings = read_node(tables, nodes[42])
    assert after == before
    assert timings["30d"] < 0.3 and timings["1y"] < 0.3, timings
    assert file_size(tables, path) < size
    tables.conn.close()
