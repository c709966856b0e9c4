"""`meshmon demo --history-days N`: history for the days before the demo started, so a new
user sees charts over every range at once.

The simulated nodes report into the past: one report every 5 minutes over the last day,
one an hour before that (the ranges beyond a day are drawn in hourly steps), with a few
downtimes and reboots on the way. The reports go through the collector's own sample path
(`meshmon.history.samples`) and are written a node at a time, a whole span per series
and a write each (`HistoryTables.write_span`), in the store's worker thread; a node's
reports are made in a thread of their own, so the event loop goes on serving the pages
meanwhile. They do not go through MQTT or the core: the back-filled days have history, not
alerts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Sequence

from meshmon.demo.simulator import Simulator
from meshmon.history.chunks import BUCKET_S, HOUR_S, RawBucket, bucket_of
from meshmon.history.samples import Extractor, SeriesKey
from meshmon.history.tables import HistoryTables, Retention
from meshmon.model.wire import Report
from meshmon.sinks.sqlite import SqliteStore

log = logging.getLogger(__name__)

FINE_SPAN_S = 86_400.0
"""the last day before the start is back-filled every 5 minutes"""
DOWNTIMES_PER_NODE_DAY = 0.15
DOWNTIME_S = (900.0, 4 * 3600.0)


def sample_times(days: float, end: float) -> list[float]:
    """When the back-filled reports are made: hourly, then every 5 minutes over the last
    day; all before `end` (a bucket boundary: live reports start there)."""
    start = end - days * 86_400.0
    fine_from = max(start, end - FINE_SPAN_S)
    times = [float(t) for t in range(int(start), int(fine_from), HOUR_S)]
    times += [float(t) for t in range(int(fine_from), int(end), BUCKET_S)]
    return times


def _downtimes(rng: random.Random, start: float, end: float) -> list[tuple[float, float]]:
    expected = DOWNTIMES_PER_NODE_DAY * (end - start) / 86_400.0
    count = int(expected) + (rng.random() < expected % 1)
    out = []
    for _ in range(count):
        at = rng.uniform(start, end)
        out.append((at, at + rng.uniform(*DOWNTIME_S)))
    return out


Samples = dict[SeriesKey, list[tuple[float, dict[str, float]]]]
"""series → (time, {metric: value}) in time order"""


def node_samples(sim: Simulator, node: str, times: Sequence[float], macs: dict[str, str],
                 rng: random.Random) -> Samples:
    """Every series' samples of one simulated node at `times` (skipping its downtimes)."""
    ns = sim.node_sim(node)
    extractor = Extractor()
    everyone = {n.id for n in sim.network.nodes}
    down = _downtimes(rng, times[0], times[-1]) if times else []
    out: Samples = {}
    was_down = False
    for i, ts in enumerate(times):
        if any(a <= ts < b for a, b in down):
            was_down = True
            continue
        if was_down:
            ns.reboot(ts)
            was_down = False
        interval = (times[i + 1] - ts) if i + 1 < len(times) else BUCKET_S
        for lk in ns.links:
            lk.pair.fade_db.next(ns.rng)
        report = Report.model_validate(ns.report(ts, interval, everyone))
        dsts = [link.peer or macs.get(link.peer_mac or "") for link in report.links]
        for key, values in extractor.samples(report, ts, dsts):
            out.setdefault(key, []).append((ts, values))
    return out


def _write_series(tables: HistoryTables, key: SeriesKey,
                  series: list[tuple[float, dict[str, float]]], now: float,
                  retention: Retention) -> None:
    sid = tables.series_id(key)
    buckets: list[RawBucket] = []
    for ts, values in series:
        start = bucket_of(ts)
        if not buckets or buckets[-1].start != start:
            buckets.append(RawBucket(start))
        buckets[-1].add(ts, tables.metric_ids(values))
    tables.write_span(sid, buckets, now, retention)


async def backfill(store: SqliteStore, sim: Simulator, days: float, now: float,
                   seed: int = 7) -> int:
    """Write `days` of simulated history before the 5-minute bucket `now` is in (where
    live reports begin); how many reports it made."""
    end = float(bucket_of(now))
    times = sample_times(days, end)
    macs = sim.macs()
    rng = random.Random(seed)
    nodes = [n.id for n in sim.network.nodes]
    started = time.monotonic()
    made = 0
    for i, node in enumerate(nodes):
        # made in a thread of its own (the simulator is the back-fill's): the event loop
        # goes on answering the pages and the API meanwhile (~2 s a node for 30 days)
        samples = await asyncio.to_thread(node_samples, sim, node, times, macs,
                                          random.Random(rng.getrandbits(64)))
        made += len(samples.get(SeriesKey("node", node), []))
        for key, series in samples.items():  # a write per series (~0.2 s for 30 days):
            # the pages' reads of the history, in the same worker, wait no longer
            await store.write_history(functools.partial(
                _write_series, key=key, series=series, now=now,
                retention=store.history_retention))
        if (i + 1) % 100 == 0:
            log.info("history back-fill: %d of %d nodes (%.0f s)", i + 1, len(nodes),
                     time.monotonic() - started)
    return made
