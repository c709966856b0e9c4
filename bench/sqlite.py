"""SQLite store throughput: 5,000 reports × 5 links per batch (prints RESULT reports_per_s=…).

Measures the whole path: `write_report` on the loop (queueing) plus the batch write in the
worker thread: the history's samples into their open 5-minute buckets, raw rows, roll-ups
of the buckets that close (meshmon.history), in one transaction. Each batch's reports are
5,000 s later than the one before (1,000 nodes, five reports each a second apart: a
bucket of every series closes in every batch).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from meshmon.sinks.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).parent))
from lineprotocol import make_report

REPORTS_PER_S = 5000
SECONDS = 10


async def main() -> None:
    reports = [make_report(i) for i in range(REPORTS_PER_S)]
    dsts = [f"n{j}" for j in range(5)]
    with tempfile.TemporaryDirectory() as tmp:
        now = [0.0]
        store = SqliteStore(Path(tmp) / "bench.sqlite", flush_interval_s=3600, queue_max=10**7,
                            clock=lambda: now[0])
        await store.start()
        t_queue = t_write = 0.0
        for batch in range(SECONDS):
            shifted = [r.model_copy(update={"ts": r.ts + batch * REPORTS_PER_S})
                       for r in reports]
            now[0] = shifted[-1].ts
            t0 = time.perf_counter()
            for r in shifted:
                store.write_report(r, r.ts, dsts)
            t1 = time.perf_counter()
            await store.flush()  # one batch = one simulated second of reports
            t2 = time.perf_counter()
            t_queue += t1 - t0
            t_write += t2 - t1
        await store.close()
        stored = store.stats()["written_points"]
        total = t_queue + t_write
        size = (Path(tmp) / "bench.sqlite").stat().st_size
    print(f"{SECONDS} batches of {REPORTS_PER_S} reports × (1 node + 5 links): {stored:.0f} "
          "reports stored")
    print(f"queueing on the loop {t_queue:.2f}s ({t_queue / SECONDS * 1000:.0f} ms per batch), "
          f"writing in the worker {t_write:.2f}s ({t_write / SECONDS * 1000:.0f} ms per batch), "
          f"db {size / 1e6:.0f} MB")
    print(f"{SECONDS * REPORTS_PER_S / total:,.0f} reports/s sustained")
    print(f"RESULT reports_per_s={SECONDS * REPORTS_PER_S / total:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
