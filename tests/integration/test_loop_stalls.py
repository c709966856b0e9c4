"""The collector's event loop under watch: a held loop shows on /metrics, and a scrape
reads each sink's statistics once (real Mosquitto, SQLite, a running collector)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import pytest

from meshmon.loopwatch import LoopWatch
from meshmon.metrics import Metrics
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


async def test_the_trace_names_what_held_the_loop_and_how_its_thread_spent_the_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`MESHMON_LOOP_TRACE`: a stall's log line says how long the loop's thread ran and
    slept, and names the callbacks that took long, with their CPU time."""
    watch = LoopWatch(Metrics(), trace=True)
    original_run = asyncio.Handle._run
    watching = asyncio.create_task(watch.run(), name="loop-watch")

    async def busy() -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.08:  # 80 ms of CPU, however long it takes
            pass
        time.sleep(0.07)  # and 70 ms asleep, the loop still held

    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="meshmon.loopwatch"):
        await asyncio.create_task(busy(), name="busy")
        await asyncio.sleep(0.05)
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)

    (line,) = [r.getMessage() for r in caplog.records if "loop held" in r.getMessage()]
    held, ran, slept = (float(re.search(rf"{word} (\d+) ms", line)[1])  # type: ignore[index]
                        for word in ("held", "ran", "slept"))
    busy_wall, busy_cpu = map(float, re.search(  # type: ignore[union-attr]
        r"task busy (\d+) ms \(CPU (\d+)\)", line).groups())
    # the stall counts from the watch's last beat, up to a beat (10 ms) after it began
    assert held >= 140 and ran >= 80 and slept >= 55
    assert busy_wall >= 150 and 80 <= busy_cpu < busy_wall
    assert asyncio.Handle._run is original_run  # the timing is undone with the watch
