"""History in SQLite: query time, roll-up cost per report, size of a year.

    python bench/history.py [--nodes 1000] [--rounds 40] [--size-nodes 5]

1. Roll-up cost per report: the SQLite store's whole path (`write_report` on the loop, the
   batch write with raw buckets and roll-ups in the worker) for `--nodes` nodes with five
   links each, a report every 30 s of a simulated clock, `--rounds` rounds (a bucket
   closes every 10 rounds).
2. Query of 30 days for a node with 10 links (its own series, an interface, its 10 links
   both ways): `query.read` as the page asks it (target ≤ 50 ms), and a year.
3. Size of a year: `--size-nodes` nodes' year of hourly records, 30 days of 5-minute
   records and 48 h of raw samples (a report every 30 s) written to a file by the roll-up
   code from random walks, packed as the running collector packs finished spans
   (`meshmon.history.packing`, with its CPU cost per packed row), then scaled to 1,000
   nodes (target: a few GB): every number
   moving at every sample at the resolution devices report it with (the worst case of
   real data), and every number to 0.01 (an upper bound no device reaches).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from meshmon.history import packing, query
from meshmon.history.chunks import (
    BUCKET_S,
    DAY_S,
    HOUR_S,
    RawBucket,
    Record,
    RollupChunk,
    Stat,
)
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import PACKED_LEVELS, HistoryTables
from meshmon.model.wire import Report
from meshmon.sinks.sqlite import SqliteStore
from meshmon.storage.database import open_database
from meshmon.web.history import NODE_METRICS

QUERY_TARGET_MS = 50.0
YEAR_TARGET_MS = 300.0
SIZE_TARGET_GB = 3.0
T0 = 1_800_000_000 - 1_800_000_000 % DAY_S
METRICS: dict[str, dict[str, tuple[float, float, float]]] = {
    "node": {"load1": (0.4, 0.2, 0.01), "load5": (0.4, 0.1, 0.01),
             "load15": (0.4, 0.05, 0.01), "mem_used_pct": (55, 0.5, 0.01),
             "mem_avail_kb": (30_000, 300, 1), "clients": (8, 2, 1), "links": (5, 0.1, 1),
             "up_s": (30, 0, 1), "seq": (5000, 1, 1), "rootfs_used_pct": (40, 0, 0.01)},
    "iface": {"rx_bps": (2e6, 5e5, 1), "tx_bps": (8e5, 2e5, 1), "rx_pps": (300, 50, 0.01),
              "tx_pps": (200, 40, 0.01), "up": (1, 0, 1)},
    "link": {"signal_dbm": (-62, 1.5, 1), "signal_avg_dbm": (-62, 0.5, 1),
             "noise_dbm": (-95, 0.3, 1), "snr_db": (32, 1.5, 1),
             "tx_rate_mbps": (130, 10, 0.1), "rx_rate_mbps": (120, 10, 0.1),
             "expected_tput_mbps": (60, 5, 0.001), "tq": (230, 5, 1)},
}
"""what a series of each kind holds: (mean, how much it moves between samples, the
resolution devices report it with: iw and SNMP give whole dBm, batman-adv a whole TQ,
iw a bitrate in 0.1 Mbit/s, /proc/loadavg two decimals; rates from counters, means and
percentages computed by the agent are fractional)"""

class Walk:
    """Random walks around a mean, one per metric id: samples (and a step's min and max,
    which are samples too) at the resolution devices report (`device=True`), or every
    value to 0.01 (an upper bound: no real device reports dBm or TQ that finely)."""

    def __init__(self, rng: random.Random, mids: dict[int, tuple[float, float, float]],
                 device: bool) -> None:
        self.rng, self.mids, self.device = rng, mids, device
        self.level = {mid: base for mid, (base, _, _) in mids.items()}

    def _as_reported(self, mid: int, value: float) -> float:
        if not self.device:
            return round(value, 2)
        step = self.mids[mid][2]
        return round(round(value / step) * step, 3)

    def _next(self) -> dict[int, float]:
        out = {}
        for mid, (base, wobble, _) in self.mids.items():
            value = self.level[mid] + self.rng.gauss(0, wobble) + (base - self.level[mid]) * 0.1
            self.level[mid] = value
            out[mid] = value
        return out

    def sample(self) -> dict[int, float]:
        return {mid: self._as_reported(mid, value) for mid, value in self._next().items()}

    def record(self, samples: int) -> Record:
        """A step's record: the walk's next value as the mean, spread around it."""
        out = {}
        for mid, value in self._next().items():
            spread = abs(self.rng.gauss(0, self.mids[mid][1]))
            out[mid] = Stat(samples, self._as_reported(mid, value - spread), round(value, 2),
                            self._as_reported(mid, value + spread))
        return Record(samples, out)


def walk(tables: HistoryTables, kind: str, rng: random.Random, device: bool = True) -> Walk:
    ids = {tables.metric_ids({name: 0.0}).popitem()[0]: spec
           for name, spec in METRICS[kind].items()}
    return Walk(rng, ids, device)


def node_keys(node: str, peers: list[str]) -> list[SeriesKey]:
    keys = [SeriesKey("node", node), SeriesKey("iface", node, "", "wlan0")]
    for peer in peers:
        keys += [SeriesKey("link", node, peer, "wlan0", "wifi"),
                 SeriesKey("link", peer, node, "wlan0", "wifi")]
    return keys


def write_rollups(tables: HistoryTables, keys: list[SeriesKey], rng: random.Random,
                  end: int, days: int, fine_days: int, raw_hours: int,
                  device: bool = True) -> None:
    """Hourly records for `days`, 5-minute ones for `fine_days`, raw samples (every 30 s)
    for `raw_hours` before `end`, each series a random walk."""
    conn = tables.conn
    for key in keys:
        sid = tables.series_id(key)
        w = walk(tables, key.kind, rng, device)
        rows_1h, rows_5min, rows_raw = [], [], []
        for day in range(end - days * DAY_S, end, DAY_S):
            coarse = RollupChunk(day, HOUR_S)
            for hour in range(day, day + DAY_S, HOUR_S):
                if hour >= end - fine_days * DAY_S:
                    fine = RollupChunk(hour, BUCKET_S)
                    for bucket in range(hour, hour + HOUR_S, BUCKET_S):
                        if bucket >= end - raw_hours * HOUR_S:
                            raw = RawBucket(bucket)
                            for i in range(10):
                                raw.add(bucket + 30 * i + rng.random(), w.sample())
                            rows_raw.append((sid, bucket, raw.encode(tables.scales)))
                            record = raw.rollup()
                        else:
                            record = w.record(10)
                        fine.put(bucket, record, tables.scales, tables.roundings)
                    rows_5min.append((sid, hour, fine.encode()))
                    merged = fine.merged(tables.scales)
                else:
                    merged = w.record(120)
                coarse.put(hour, merged, tables.scales, tables.roundings)
            rows_1h.append((sid, day, coarse.encode()))
        for table, rows in (("history_1h", rows_1h), ("history_5min", rows_5min),
                            ("history_raw", rows_raw)):
            conn.executemany(f"INSERT INTO {table} (series, start, data) VALUES (?, ?, ?)",
                             rows)
        tables.rebuild_daily(sid)


def pack_history(tables: HistoryTables, now: float) -> dict[str, tuple[float, int]]:
    """Pack what a running collector has packed by `now` (`meshmon.history.packing`), a
    level at a time: per packed table, (CPU seconds, packed rows written)."""
    out = {}
    every = packing.cutoffs(now)
    for i, level in enumerate(PACKED_LEVELS):
        only = tuple(c if j == i else -(2**62) for j, c in enumerate(every))
        tables.conn.execute("BEGIN")
        c0 = time.process_time()
        rows = sum(packing.pack_series(tables, sid, only) for sid in sorted(tables.keys))
        out[level.packed] = (time.process_time() - c0, rows)
        tables.conn.execute("COMMIT")
    return out


def bench_query(tmp: Path) -> dict[str, float]:
    """30 days and a year of a node with 10 links, as its page asks (ms): the first query
    on a connection opened afresh (no decoded chunk in memory; the OS may cache the
    file), its CPU time, and the best of 5 more."""
    path = tmp / "query.sqlite"
    tables = HistoryTables(open_database(path))
    peers = [f"peer-{i}" for i in range(10)]
    conn = tables.conn
    conn.execute("BEGIN")
    write_rollups(tables, node_keys("node", peers), random.Random(1), T0, 365, 30, 0)
    tables.save_registry()
    conn.execute("COMMIT")
    tables.committed()
    pack_history(tables, T0 + packing.PACK_AFTER_S)  # as a running collector keeps it
    conn.close()
    out = {}
    for range_ in ("30d", "1y"):
        tables = HistoryTables(open_database(path))  # as a collector starts: cold
        series = query.node_series(tables, "node")
        win = query.window({"range": range_}, T0, query.Retention())
        times, cpu = [], []
        for _ in range(6):
            t0, c0 = time.perf_counter(), time.process_time()
            answer = query.read(tables, {}, series, list(NODE_METRICS), win, ("mean",), T0)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        assert len(answer["series"]) >= 20, len(answer["series"])
        out[range_] = times[0]
        out[f"{range_}_cpu"] = cpu[0]
        out[f"{range_}_best"] = min(times[1:])
        tables.conn.close()
    return out


def bench_size(tmp: Path, nodes: int, device: bool) -> dict[str, float]:
    """Bytes per node of a year (hourly), 30 days (5-minute) and 48 h (raw)."""
    path = tmp / f"size-{device}.sqlite"
    tables = HistoryTables(open_database(path))
    rng = random.Random(2)
    names = [f"n{i}" for i in range(nodes)]
    conn = tables.conn
    conn.execute("BEGIN")
    for node in names:
        # a node, its interface, five links of its own (the peers' own views are theirs)
        keys = [k for k in node_keys(node, [f"{node}-peer{d}" for d in range(5)])
                if k.kind != "link" or k.node == node]
        write_rollups(tables, keys, rng, T0, 365, 30, 48, device)
    tables.save_registry()
    conn.execute("COMMIT")
    tables.committed()
    packed = pack_history(tables, T0 + packing.PACK_AFTER_S)
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    per_table = dict(conn.execute(
        "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'history%' GROUP BY name"))
    conn.close()
    total = path.stat().st_size
    return {"bytes_per_node": total / nodes,
            **{f"{name}_per_node": size / nodes for name, size in per_table.items()
               if size / nodes >= 5_000},
            **{f"pack_ms_{name}": cpu * 1000 / rows for name, (cpu, rows) in packed.items()
               if rows}}


def make_report(node: str, i: int, ts: float, peers: list[str], rng: random.Random) -> Report:
    return Report.model_validate({
        "v": 1, "node": node, "ts": ts, "seq": i, "interval_s": 30, "clients": rng.randint(0, 9),
        "sys": {"uptime_s": 1000 + 30 * i, "load": [rng.random(), 0.3, 0.2],
                "mem_total_kb": 60_000, "mem_avail_kb": rng.randint(20_000, 40_000)},
        "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": 10_000 * i + rng.randint(0, 999),
                    "tx_bytes": 5_000 * i}],
        "links": [{"peer": p, "iface": "wlan0", "kind": "wifi",
                   "signal_dbm": -60 - rng.randint(0, 5), "tx_rate_mbps": 130.0,
                   "expected_tput_mbps": 60.0 + rng.randint(0, 3)} for p in peers],
    })


async def bench_rollup(tmp: Path, nodes: int, rounds: int) -> dict[str, float]:
    """CPU per report through the store (queue + batch write with roll-ups)."""
    clock_now = [float(T0)]
    store = SqliteStore(tmp / "rollup.sqlite", flush_interval_s=3600, queue_max=10**7,
                        clock=lambda: clock_now[0], worker="thread")  # (its CPU counted here)
    await store.start()
    rng = random.Random(3)
    names = [f"n{i}" for i in range(nodes)]
    peers = {n: [names[(i + d) % nodes] for d in range(1, 6)] for i, n in enumerate(names)}
    per_round: list[float] = []
    closing: list[float] = []
    cpu = 0.0
    for r in range(rounds):
        ts = T0 + 30.0 * r
        clock_now[0] = ts
        reports = [make_report(n, r + 1, ts + rng.random(), peers[n], rng) for n in names]
        t0, c0 = time.perf_counter(), time.process_time()
        for report in reports:
            store.write_report(report, report.ts, peers[report.node])
        await store.flush()
        spent = (time.perf_counter() - t0) / nodes * 1e6
        cpu += time.process_time() - c0  # the loop's and the worker thread's
        (closing if r % 10 == 0 and r else per_round).append(spent)
    await store.close()
    everything = per_round + closing
    return {"us_per_report": statistics.fmean(everything),
            "cpu_us_per_report": cpu / rounds / nodes * 1e6,
            "us_per_report_plain": statistics.median(per_round),
            "us_per_report_closing": statistics.median(closing) if closing else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--size-nodes", type=int, default=5)
    parser.add_argument("--parts", default="query,store,size",
                        help="which figures, comma-separated (query, store, size)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        q = bench_query(tmp) if "query" in parts else {}
        r = asyncio.run(bench_rollup(tmp, args.nodes, args.rounds)) if "store" in parts else {}
        s = bench_size(tmp, args.size_nodes, True) if "size" in parts else {}
        s2 = bench_size(tmp, args.size_nodes, False) if "size" in parts else {}
        if q:
            print(f"query 30 days, node with 10 links (22 series), first on a new connection: "
                  f"{q['30d']:.1f} ms ({q['30d_cpu']:.1f} ms CPU), best of 5 more "
                  f"{q['30d_best']:.1f} ms (target ≤ {QUERY_TARGET_MS:g} ms: "
                  f"{'met' if q['30d'] <= QUERY_TARGET_MS else 'MISSED'})")
            print(f"query a year, same node, first on a new connection: {q['1y']:.1f} ms "
                  f"({q['1y_cpu']:.1f} ms CPU), best of 5 more {q['1y_best']:.1f} ms (target "
                  f"≤ {YEAR_TARGET_MS:g} ms: {'met' if q['1y'] <= YEAR_TARGET_MS else 'MISSED'})")
        if r:
            print(f"store path per report ({args.nodes} nodes × 5 links, {args.rounds} rounds): "
                  f"{r['us_per_report']:.0f} µs mean ({r['cpu_us_per_report']:.0f} µs CPU); "
                  f"{r['us_per_report_plain']:.0f} µs median of rounds that only add, "
                  f"{r['us_per_report_closing']:.0f} µs of rounds that close a 5-minute bucket "
                  "(raw row, 5-minute and hourly record)")
        year_gb = s.get("bytes_per_node", 0.0) * 1000 / 1e9
        for sizes, what in ((s, "every number moving at every sample, at the resolution "
                                "devices report"),
                            (s2, "the same with every number to 0.01 (upper bound)")):
            if not sizes:
                continue
            gb = sizes["bytes_per_node"] * 1000 / 1e9
            tables = ", ".join(f"{k.removesuffix('_per_node')} {v / 1e6:.2f} MB"
                               for k, v in sorted(sizes.items()) if k.endswith("_per_node")
                               and k != "bytes_per_node")
            print(f"size per node (node, interface, 5 links), {what}: "
                  f"{sizes['bytes_per_node'] / 1e6:.2f} MB for a year of hourly and daily, "
                  f"30 days of 5-minute, 48 h of raw ({tables}); a 1,000-node network: "
                  f"{gb:.2f} GB (target: a few GB, ≤ {SIZE_TARGET_GB:g}: "
                  f"{'met' if gb <= SIZE_TARGET_GB else 'MISSED'})")
        if s:
            # a series packs 6 raw rows (4 hours each), one 5-minute row (a day) and 1/16 of
            # an hourly row (16 days) a day; a node here has 7 series
            cost = {k.removeprefix("pack_ms_"): v for k, v in s.items() if k.startswith("pack_ms")}
            day_ms = (6 * cost.get("history_raw_packed", 0) + cost.get("history_5min_packed", 0)
                      + cost.get("history_1h_packed", 0) / 16)
            print("packing, CPU per packed row: " + ", ".join(
                f"{name} {ms:.2f} ms" for name, ms in cost.items()) +
                f"; per series and day {day_ms:.1f} ms: a 1,000-node network (7 series a "
                f"node) {day_ms * 7:.0f} s of CPU a day, 35,000 nodes "
                f"{day_ms * 7 * 35:.0f} s a day ({day_ms * 7 * 35 / 864:.1f} % of a core)")
        print("RESULT " + " ".join(f"{k}={v:.{d}f}" for k, v, d in (
            ("query_30d_ms", q.get("30d"), 1), ("query_1y_ms", q.get("1y"), 1),
            ("us_per_report", r.get("us_per_report"), 0),
            ("gb_1000_nodes_year", year_gb if s else None, 2),
            ("gb_upper_bound", s2["bytes_per_node"] * 1000 / 1e9 if s2 else None, 2))
            if v is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())


