"""InfluxDB v2 sink (influxdb-client) against a real VictoriaMetrics, read back via export."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request

from meshmon.sinks.base import Event
from meshmon.sinks.influx_v2 import InfluxV2Sink
from tests import servers
from tests.sinks.reports import DSTS, NOW, report

# VictoriaMetrics drops samples older than its retention (1 month): use a recent time
RECENT = float(int(time.time()) - 60)


def export(server: servers.Server, match: str) -> list[dict]:
    """Series matching `match` as exported by VictoriaMetrics (one JSON object per line)."""
    url = f"{server.url}/api/v1/export?" + urllib.parse.urlencode(
        {"match[]": match, "start": str(int(RECENT) - 3600), "end": str(int(RECENT) + 3600)}
    )
    with urllib.request.urlopen(url, timeout=10) as r:
        return [json.loads(line) for line in r.read().splitlines() if line.strip()]


async def export_until(server: servers.Server, match: str, n: int) -> list[dict]:
    with urllib.request.urlopen(f"{server.url}/internal/force_flush", timeout=10):
        pass  # make just-ingested samples searchable now
    deadline = time.monotonic() + 15
    while True:
        series = export(server, match)
        if len(series) >= n or time.monotonic() > deadline:
            return series
        await asyncio.sleep(0.2)


async def test_report_and_event_read_back_from_victoria_metrics(victoria: servers.Server) -> None:
    sink = InfluxV2Sink(victoria.url, "meshmon", org="org", token="t", flush_interval_s=60)
    await sink.start()
    sink.write_report(report(node="v2node", ts=RECENT), RECENT + 1, DSTS)
    sink.write_event(Event(RECENT + 5, "outage", "v2node", "down", {"affected": 2}))
    await sink.flush()
    assert sink.stats()["written_points"] == 7 and sink.stats()["queued"] == 0
    await sink.close()

    signal = await export_until(victoria, '{__name__="link_signal_dbm",src="v2node"}', 2)
    by_dst = {s["metric"]["dst"]: s for s in signal}
    assert set(by_dst) == {"n2", "mac:02:00:00:00:00:99"}
    n2 = by_dst["n2"]
    assert n2["metric"]["iface"] == "wlan0" and n2["metric"]["kind"] == "wifi"
    assert n2["values"] == [-61] and n2["timestamps"] == [int(RECENT) * 1000]
    assert by_dst["mac:02:00:00:00:00:99"]["values"] == [-80]
    (tq,) = await export_until(victoria, '{__name__="link_tq",src="v2node"}', 1)
    assert tq["metric"]["dst"] == "n3" and tq["values"] == [230]
    # absent metrics are absent: only n2 has an SNR, nobody has etx
    snr = await export_until(victoria, '{__name__="link_snr_db",src="v2node"}', 1)
    assert [s["metric"]["dst"] for s in snr] == ["n2"]
    assert export(victoria, '{__name__="link_etx",src="v2node"}') == []
    (load5,) = await export_until(victoria, '{__name__="node_load5",node="v2node"}', 1)
    assert load5["values"] == [0.25]
    (chain1,) = await export_until(victoria, '{__name__="link_chain1_dbm",src="v2node"}', 1)
    assert chain1["values"] == [-65]
    (affected,) = await export_until(victoria, '{__name__="event_affected",node="v2node"}', 1)
    assert affected["metric"]["kind"] == "outage" and affected["values"] == [2]


async def test_server_down_keeps_points_and_counts_errors() -> None:
    sink = InfluxV2Sink(
        f"http://127.0.0.1:{servers.free_port()}", "b", flush_interval_s=60, timeout_s=2
    )
    await sink.start()
    sink.write_report(report(), NOW, DSTS)
    await sink.flush()
    st = sink.stats()
    assert st["queued"] == 6 and st["write_errors"] == 1 and st["written_points"] == 0
    await sink.close()
    assert sink.stats()["dropped_points"] == 6  # counted as lost at shutdown
