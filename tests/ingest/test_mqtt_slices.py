"""Reports handed over in slices of bounded time (real Mosquitto): when each report takes
long, a slice hands over only what fits in its time, not a whole batch of 16 — HTTP and
last wills wait for the slice to end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from meshmon.config import MqttConfig
from meshmon.ingest.mqtt import BATCH, SLICE_S, BrokerAddress, MqttIngest, RawMessage
from tests import servers
from tests.integration.harness import Publisher

REPORTS = 120
WORK_S = 0.002
"""the owner's time per report: a slice of SLICE_S (8 ms) holds 4 of them"""


async def test_a_slice_hands_over_what_fits_in_its_time(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    batches: list[int] = []
    done = asyncio.Event()

    def on_reports(batch: list[RawMessage]) -> None:
        time.sleep(WORK_S * len(batch))  # the owner's work: it holds the loop meanwhile
        batches.append(len(batch))
        if sum(batches) >= REPORTS:
            done.set()

    config = MqttConfig(broker="external", port=mosquitto.port,
                        client_id=f"slices-{tmp_path.name}"[:40], persistent_session=False)
    ingest = MqttIngest(config, BrokerAddress("127.0.0.1", mosquitto.port), on_reports,
                        lambda _batch: None)
    task = asyncio.create_task(ingest.run())
    pub = Publisher(mosquitto.port)
    try:
        await asyncio.wait_for(ingest.connected.wait(), 10)
        for i in range(REPORTS):  # queued at once: the collector has a backlog
            pub.client.publish(f"meshmon/v1/node/n{i % 7}/report", b"{}", qos=1)
        await asyncio.wait_for(done.wait(), 30)
    finally:
        pub.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sum(batches) == REPORTS
    # once the pace is known a batch is what the slice's time left holds (at most 4 at
    # 2 ms a report; fewer when sleeping overshoots), never the whole BATCH of 16
    fits = int(SLICE_S / WORK_S)
    assert max(batches[1:]) <= fits < BATCH, batches
