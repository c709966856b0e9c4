"""Make `meshmon-0d25ead-history.sqlite`: three days of history written by meshmon 0d25ead
(schema version 4: raw buckets, 5-minute and hourly roll-ups), and what that code answered.

Run it with the meshmon of that commit (the checkout on PYTHONPATH is imported):

    git worktree add /tmp/meshmon-0d25ead 0d25ead
    PYTHONPATH=/tmp/meshmon-0d25ead .venv/bin/python tests/data/db/make_history_fixture.py \
        tests/data/db/meshmon-0d25ead-history.sqlite

Three nodes in a chain (a - b - c, Wi-Fi links both ways, an interface with counters)
report into the collector's SQLite store (`SqliteStore.write_report`, its batch writes and
roll-ups, on a simulated clock): every 5 minutes for three days, then every 30 s for the
last hour. The store is closed cleanly. Next to the file, `<name>.json` holds the
history answers of that code for each node and the link b-c (`query.read`: what the API
answers, for seven metrics) over windows that end before the file was made, at raw,
5-minute, hourly and daily steps, and `made_at`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

from meshmon.history import query
from meshmon.model.wire import Report
from meshmon.sinks.sqlite import SqliteStore

NODES = ["a", "b", "c"]
MADE_AT = 1_796_000_000.0 - 1_796_000_000.0 % 300
"""the simulated time the file is made (a 5-minute boundary)"""
DAYS = 3
FAST_S = 3600.0
"""the last hour: a report every 30 s"""


def peers_of(node: str) -> list[str]:
    i = NODES.index(node)
    return [NODES[j] for j in (i - 1, i + 1) if 0 <= j < len(NODES)]


def report(node: str, seq: int, ts: float, interval: float, rng: random.Random,
           level: dict[str, float]) -> Report:
    for key in list(level):
        level[key] += rng.gauss(0, 1.0)
    return Report.model_validate({
        "v": 1, "node": node, "ts": ts, "seq": seq, "interval_s": interval,
        "clients": rng.randint(0, 12),
        "sys": {"uptime_s": 5000 + ts - MADE_AT + DAYS * 86_400,
                "load": [round(rng.uniform(0, 2), 2), 0.4, 0.3], "mem_total_kb": 60_000,
                "mem_avail_kb": rng.randint(20_000, 40_000)},
        "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": int(4e4 * (ts - 1.7e9)),
                    "tx_bytes": int(1.5e4 * (ts - 1.7e9))}],
        "links": [{"peer": p, "iface": "wlan0", "kind": "wifi",
                   "signal_dbm": round(level[p], 0), "snr_db": round(level[p] + 95, 0),
                   "tx_rate_mbps": rng.choice([65.0, 130.0, 144.4]),
                   "expected_tput_mbps": round(rng.uniform(20, 60), 1)}
                  for p in peers_of(node)],
    })


METRICS = "availability,load1,clients,rx_bps,signal_dbm,snr_db,tx_rate_mbps"


def queries() -> list[dict[str, str]]:
    """Windows that end before MADE_AT, one per level."""
    end = MADE_AT - 600
    return [{"from": str(end - 3000), "to": str(end), "step": "raw", "metrics": METRICS},
            *({"from": str(end - span), "to": str(end), "step": str(step), "metrics": METRICS}
              for span, step in ((86_400, 300), (DAYS * 86_400, 3600),
                                 (10 * 86_400, 86_400)))]


async def make(path: Path) -> dict[str, Any]:
    now = [MADE_AT - DAYS * 86_400]
    store = SqliteStore(path, flush_interval_s=3600, clock=lambda: now[0])
    await store.start()
    rng = random.Random(15)
    levels = {n: {p: -60.0 - 5 * i for i, p in enumerate(peers_of(n))} for n in NODES}
    seq = 0
    ts = now[0]
    while ts < MADE_AT:
        interval = 30.0 if ts >= MADE_AT - FAST_S else 300.0
        now[0] = ts
        seq += 1
        for node in NODES:
            r = report(node, seq, ts + rng.uniform(0, 3), interval, rng, levels[node])
            store.write_report(r, r.ts, peers_of(node))
        await store.flush()
        ts += interval
    now[0] = MADE_AT
    answers: dict[str, Any] = {}
    for q in queries():
        win = query.window(q, MADE_AT, store.history_retention)

        def run(tables: Any, open_buckets: Any, q: dict[str, str] = q,
                win: Any = win) -> dict[str, Any]:
            out = {}
            for node in NODES:
                metrics = query.metric_names(q["metrics"], (), tables.metrics)
                out[f"node {node}"] = query.read(tables, open_buckets,
                                                 query.node_series(tables, node), metrics,
                                                 win, query.STATS, MADE_AT)
            out["link b c"] = query.read(tables, open_buckets,
                                         query.link_series(tables, "b", "c"), metrics, win,
                                         query.STATS, MADE_AT)
            return out

        answers[json.dumps(q, sort_keys=True)] = await store.read_history(run)
    await store.close()
    return {"made_at": MADE_AT, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    args.path.unlink(missing_ok=True)
    manifest = asyncio.run(make(args.path))
    args.path.with_suffix(".json").write_text(json.dumps(manifest, separators=(",", ":")))


if __name__ == "__main__":
    main()
