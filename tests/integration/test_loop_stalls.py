"""The collector's event loop under watch: a held loop shows on /metrics, and a scrape
reads each sink's statistics once (real Mosquitto, SQLite, a running collector)."""

from __future__ import annotations

import time
from pathlib import Path

from meshmon.sinks.base import Sink
from tests import servers
from tests.integration.harness import collector_config, eventually, get_text, metric, started

HELD_S = 0.3


async def test_a_held_event_loop_is_counted_and_its_longest_stall_shown(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    service = await started(collector_config(tmp_path, mosquitto.port))
    try:
        url = service.http_url + "/metrics"
        before = await get_text(url)
        stalls = metric(before, "meshmon_loop_stalls_total", le="+Inf")
        held_before = metric(before, "meshmon_loop_stalls_total", le="0.25")
        time.sleep(HELD_S)  # holds the loop, as a slow callback would

        async def counted() -> bool:
            text = await get_text(url)
            return metric(text, "meshmon_loop_stalls_total", le="+Inf") > stalls

        await eventually(counted)
        after = await get_text(url)
        # the stall lasted at least HELD_S: counted beyond 0.25 s, the longest shown
        assert metric(after, "meshmon_loop_stall_max_seconds") >= HELD_S - 0.02
        over = (metric(after, "meshmon_loop_stalls_total", le="+Inf") - stalls) - (
            metric(after, "meshmon_loop_stalls_total", le="0.25") - held_before)
        assert over >= 1
    finally:
        await service.stop()


async def test_a_scrape_reads_each_sinks_statistics_once(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    """Each sink's stats() sorts its recent lags (20,000 at most) for the quantiles;
    read once per gauge it held the loop for up to a second per scrape under load."""
    service = await started(collector_config(tmp_path, mosquitto.port))
    try:
        reads: dict[str, int] = {}

        def counting(sink: Sink) -> None:
            stats = sink.stats

            def counted() -> dict[str, float]:
                reads[sink.name] = reads.get(sink.name, 0) + 1
                return stats()

            sink.stats = counted  # type: ignore[method-assign]

        for sink in service.sinks:
            counting(sink)
        text = await get_text(service.http_url + "/metrics")
        assert metric(text, "meshmon_sink_queue_depth", sink="sqlite") == 0
        assert 'meshmon_sink_writes_total{sink="sqlite"}' in text
        assert reads == {sink.name: 1 for sink in service.sinks}
        await get_text(service.http_url + "/metrics")  # the next scrape reads anew
        assert reads == {sink.name: 2 for sink in service.sinks}
    finally:
        await service.stop()
