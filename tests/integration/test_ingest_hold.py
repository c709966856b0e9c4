"""A backlog waits in the broker while SQLite is behind: real Mosquitto → collector → SQLite.

When more reports wait for SQLite than `HOLD_INGEST_AT` (at most half of
`storage.queue_max`), the collector takes no more until SQLite has written them: the rest
stays in the broker, not as decoded objects in the collector's memory. Nothing is lost,
and status messages (last wills) are applied meanwhile.
"""

from __future__ import annotations

import time
from pathlib import Path

from meshmon.history.samples import SeriesKey
from tests import servers
from tests.integration.harness import Publisher, collector_config, eventually, started

NODES = 10
REPORTS = 300
QUEUE_MAX = 200
"""`storage.queue_max`: ingest holds at half of it, 100 reports waiting"""


def report(i: int) -> dict[str, object]:
    node = f"hold-{i % NODES:02d}"
    return {"v": 1, "node": node, "ts": time.time(), "seq": i // NODES, "interval_s": 30,
            "sys": {"uptime_s": 100 + i}, "links": []}


async def test_a_backlog_waits_in_the_broker_while_sqlite_is_behind_and_nothing_is_lost(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    # SQLite writes at most once a minute: everything taken waits for it
    config = collector_config(tmp_path, mosquitto.port,
                              storage={"flush_interval_s": 60, "queue_max": QUEUE_MAX})
    service = await started(config)
    store, ingest = service.store, service.ingest
    assert store is not None and ingest is not None
    pub = Publisher(mosquitto.port)
    try:
        for i in range(REPORTS):
            await pub.send(f"meshmon/v1/node/hold-{i % NODES:02d}/report", report(i))

        async def held() -> bool:
            return ingest.holds >= 2 and ingest.queue_depth > 0

        await eventually(held, 15, "ingest waiting for SQLite with reports in hand")
        applied = service.metrics.get("meshmon_reports_received_total")
        assert QUEUE_MAX // 2 <= applied < REPORTS, applied
        assert store.behind()
        # a last will is not held behind the reports
        await pub.send("meshmon/v1/node/hold-03/status", {"v": 1, "node": "hold-03",
                                                          "online": False})

        async def offline() -> bool:
            node = service.core.topology.nodes.get("hold-03")
            return node is not None and not node.online

        await eventually(offline, 10, "the status applied while reports are held")
        assert service.metrics.get("meshmon_reports_received_total") == applied

        # SQLite writes what waits: the collector takes the rest, and it is all stored
        async def all_applied() -> bool:
            await store.flush()
            return service.metrics.get("meshmon_reports_received_total") == REPORTS

        await eventually(all_applied, 15, "every report applied once SQLite caught up")
        await store.flush()
        stored = [await store.samples(SeriesKey("node", f"hold-{n:02d}"))
                  for n in range(NODES)]
        assert sum(map(len, stored)) == REPORTS
        assert ingest.dropped == 0 and store.dropped == 0
        assert not store.behind()
    finally:
        pub.close()
        await service.stop()
