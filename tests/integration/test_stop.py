"""A collector's stop stores no history bucket: what waits for its slice (after a 5-minute
boundary every series closes one: ~245,000 at 35,000 nodes, ~37 s of work) stays in the
journal, and the next start reads it back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from meshmon.history.chunks import bucket_of
from meshmon.history.samples import SeriesKey
from meshmon.service import Service
from tests.integration.harness import Publisher, collector_config, eventually


def report(ts: float, seq: int) -> dict[str, object]:
    return {"v": 1, "node": "n1", "ts": ts, "seq": seq, "interval_s": 30.0,
            "sys": {"uptime_s": 1000.0 + 30 * seq, "load": [0.5, 0.2, 0.1],
                    "mem_total_kb": 60_000, "mem_avail_kb": 30_000}}


async def test_a_stop_leaves_closed_history_buckets_in_the_journal(tmp_path: Path) -> None:
    start = float(bucket_of(time.time()) - 600)
    now = [start]
    config = collector_config(tmp_path, None)
    service = Service(config, lambda: now[0])
    await service.start()
    assert service.ingest is not None and service.broker is not None
    await asyncio.wait_for(service.ingest.connected.wait(), 10)
    store = service.store
    assert store is not None
    store.close_slice_s = 0.0  # a closed bucket waits until it is due (240 s)
    pub = Publisher(service.broker.port)
    try:
        for seq, ts in enumerate((start, start + 30, start + 300), 1):  # the last one
            now[0] = ts  # closes the first bucket
            await pub.send("meshmon/v1/node/n1/report", report(ts, seq))

        async def closed() -> bool:
            await store.flush(closed_buckets=False)
            return store.worker_status.closed_waiting > 0

        await eventually(closed, 10, "the first bucket closed")
        seen = await store.samples(SeriesKey("node", "n1"))
        assert [s["seq"] for s in seen] == [1, 2, 3]
    finally:
        pub.close()
        await service.stop()
    conn = sqlite3.connect(tmp_path / "meshmon.sqlite")
    assert conn.execute("SELECT count(*) FROM history_raw").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM history_journal").fetchone()[0] > 0
    conn.close()

    again = Service(config, lambda: now[0])  # (its writes store what is back in memory)
    await again.start()
    try:
        assert again.store is not None
        assert await again.store.samples(SeriesKey("node", "n1")) == seen
        await again.store.flush()
    finally:
        await again.stop()
    conn = sqlite3.connect(tmp_path / "meshmon.sqlite")
    assert conn.execute("SELECT count(*) FROM history_raw WHERE start = ?",
                        (int(start),)).fetchone()[0] > 0
    conn.close()
