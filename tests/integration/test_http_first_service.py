"""The collector answers HTTP before its next slice of reports (real Mosquitto, a running
collector): a connection is seen while it waits to be accepted, and while a backlog
drains under a client's requests the drain waits for them (`/metrics` counts it)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

from tests import servers
from tests.integration.harness import (
    Publisher,
    collector_config,
    eventually,
    get_text,
    metric,
    started,
)

NODES = 8
REPORTS = 2000


def report(i: int) -> dict[str, object]:
    return {"v": 1, "node": f"first-{i % NODES}", "ts": time.time(), "seq": i // NODES,
            "interval_s": 30, "sys": {"uptime_s": 100 + i}, "links": []}


async def test_the_collector_answers_http_before_its_next_slice_of_reports(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    service = await started(collector_config(tmp_path, mosquitto.port))
    gate = service.http_first
    try:
        # a connection the loop has not accepted yet already holds the next slice
        with socket.create_connection(("127.0.0.1", service.http_port)):
            assert gate.knocking() and gate.holds()

        async def released() -> bool:
            return not gate.holds()

        await eventually(released, 5, "the gate released once the connection closed")

        asked = threading.Event()
        answers: list[int] = []

        def ask() -> None:  # one request after another until the backlog is in
            while not asked.is_set():
                with urllib.request.urlopen(service.http_url + "/healthz", timeout=10) as r:
                    answers.append(r.status)

        asking = asyncio.create_task(asyncio.to_thread(ask))
        pub = Publisher(mosquitto.port)

        def publish() -> None:
            sent = [pub.client.publish(f"meshmon/v1/node/first-{i % NODES}/report",
                                       json.dumps(report(i)), qos=1)
                    for i in range(REPORTS)]
            for info in sent:
                info.wait_for_publish(10)

        try:
            await asyncio.to_thread(publish)

            async def all_in() -> bool:
                return service.metrics.get("meshmon_reports_received_total") >= REPORTS

            await eventually(all_in, 30, "every report applied")
        finally:
            asked.set()
            await asking
            pub.close()
        text = await get_text(service.http_url + "/metrics")
        assert metric(text, "meshmon_reports_received_total") == REPORTS
        assert metric(text, "meshmon_ingest_http_waits_total") >= 1
        assert answers and set(answers) == {200}
    finally:
        await service.stop()
