"""SQLite store throughput: 5,000 reports × 5 links per batch (prints RESULT rows_per_s=…).

Measures the whole path: `write_report` on the loop (row building) plus the batch write
(executemany in one transaction) in the worker thread, with the indexes in place.
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
        store = SqliteStore(Path(tmp) / "bench.sqlite", flush_interval_s=3600, queue_max=10**7)
        await store.start()
        t_queue = t_write = 0.0
        for _ in range(SECONDS):
            t0 = time.perf_counter()
            for r in reports:
                store.write_report(r, r.ts, dsts)
            t1 = time.perf_counter()
            await store.flush()  # one batch = one simulated second of reports
            t2 = time.perf_counter()
            t_queue += t1 - t0
            t_write += t2 - t1
        await store.close()
        rows = store.stats()["written_points"]
        total = t_queue + t_write
        size = (Path(tmp) / "bench.sqlite").stat().st_size
    print(f"{SECONDS} batches of {REPORTS_PER_S} reports × (1 node + 5 links) = {rows:.0f} rows")
    print(f"queueing on the loop {t_queue:.2f}s ({t_queue / SECONDS * 1000:.0f} ms per batch), "
          f"writing in the worker {t_write:.2f}s ({t_write / SECONDS * 1000:.0f} ms per batch), "
          f"db {size / 1e6:.0f} MB")
    print(f"{SECONDS * REPORTS_PER_S / total:,.0f} reports/s sustained")
    print(f"RESULT rows_per_s={rows / total:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
