"""A running collector (real Mosquitto, SQLite) stores the history buckets that closed at
a 5-minute boundary a slice at a time: /metrics shows how many wait, the history API reads
them meanwhile, and a flush stores them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from meshmon.history.chunks import BUCKET_S, bucket_of
from tests import servers
from tests.integration.harness import (
    Publisher,
    collector_config,
    eventually,
    get_json,
    get_text,
    metric,
    started,
)

NODES = ("roof-a", "roof-b", "roof-c")


def report(node: str, seq: int, ts: float) -> dict[str, Any]:
    return {"v": 1, "node": node, "ts": ts, "seq": seq, "interval_s": 30,
            "sys": {"uptime_s": 100 + seq, "load": [0.1 * seq, 0.1, 0.1]},
            "links": [{"peer": "roof-x", "iface": "wlan0", "kind": "wifi",
                       "signal_dbm": -60 - seq}]}


async def test_closed_buckets_wait_on_metrics_and_the_api_reads_them(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    service = await started(collector_config(tmp_path, mosquitto.port))
    assert service.store is not None
    service.store.close_slice_s = 0.0  # no time for them: they wait until due (240 s)
    pub = Publisher(mosquitto.port)
    # in the last 5-minute bucket, then at the start of this one (both less than the
    # 600 s of clock skew the store accepts): the second report closes the first bucket
    first = bucket_of(time.time()) - BUCKET_S + 10
    times = (first, first + BUCKET_S - 10)
    try:
        for seq, ts in enumerate(times, start=1):
            for node in NODES:
                await pub.send(f"meshmon/v1/node/{node}/report", report(node, seq, ts))
        metrics_url = service.http_url + "/metrics"

        async def waiting() -> bool:
            text = await get_text(metrics_url)
            return metric(text, "meshmon_history_buckets_waiting") == 2 * len(NODES)

        await eventually(waiting, 10, "the closed buckets (node and link series) waiting")
        history = (f"{service.http_url}/api/v1/nodes/roof-b/history?metrics=load1"
                   f"&from={first - 10:.0f}&to={first + BUCKET_S:.0f}&step=raw")
        got = await get_json(history)
        assert got["status"] == 200
        load = next(s for s in got["body"]["series"] if s["kind"] == "node")
        assert load["t"] == list(times) and load["mean"] == [0.1, 0.2]

        await service.store.flush()
        text = await get_text(metrics_url)
        assert metric(text, "meshmon_history_buckets_waiting") == 0
        assert (await get_json(history))["body"] == got["body"]
    finally:
        pub.close()
        await service.stop()
