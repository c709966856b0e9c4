"""Day steps (a year's page) are read from history_1d, each day's record merged from its
hours: the same min/mean/max as the samples, in order, late, or across a restart, and the
newest day (not merged into history_1d until the series moves on) is there too."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pytest

from meshmon.history.chunks import DAY_S, RollupChunk
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import Retention
from tests.history.helpers import T0, Recorder, node_report
from tests.history.test_rollups import feed_in_batches

D0 = T0 - T0 % DAY_S + DAY_S
"""a midnight (UTC)"""
LINK = SeriesKey("link", "a", "peer", "wlan0", "wifi")
DAYS = 3
DAY_MEAN_DB = 0.155
"""a signal's mean is stored to 0.1 dB at each level (`resolution.py`): a day's mean, made
from hours made from 5-minute means, is within 3 × 0.05 dB of the samples' (and the
expected value is rounded to 0.01)"""
INTERVAL = 300.0


def reports() -> list[tuple[float, object, list[str | None]]]:
    rng = random.Random(7)
    return [(ts, node_report("a", ts, i + 1, uptime=1000 + i * INTERVAL,
                             signal=round(rng.uniform(-80, -50), 1)), ["peer"])
            for i in range(int(DAYS * DAY_S / INTERVAL))
            for ts in [D0 + i * INTERVAL + rng.uniform(0, 2)]]


def per_day(queued: list, upto: float) -> dict[str, list[float | None]]:
    days: dict[int, list[float]] = {}
    for ts, report, _ in queued:
        if ts < upto:
            days.setdefault(int((ts - D0) // DAY_S), []).append(report.links[0].signal_dbm)
    slots = [days.get(d) for d in range(DAYS)]
    return {"mean": [round(statistics.fmean(v), 2) if v else None for v in slots],
            "min": [math.floor(min(v)) if v else None for v in slots],
            "max": [math.ceil(max(v)) if v else None for v in slots]}


def by_day(rec: Recorder, now: float) -> dict[str, list[float | None]]:
    answer = rec.answer(LINK, ["signal_dbm"], {"from": str(D0), "to": str(D0 + DAYS * DAY_S),
                                                "step": str(DAY_S)}, now)
    assert answer["source"] == "1h" and answer["t"] == [D0 + d * DAY_S for d in range(DAYS)]
    (series,) = answer["series"]
    return {stat: series[stat] for stat in ("mean", "min", "max")}


@pytest.mark.parametrize("order", ["in order", "shuffled", "killed and restarted"])
def test_day_steps_are_the_min_mean_max_of_the_samples(tmp_path: Path, order: str) -> None:
    queued = reports()
    rec = Recorder(tmp_path / "h.sqlite")
    if order == "shuffled":  # late samples, some into a day already merged into history_1d
        shuffled = sorted(queued, key=lambda q: q[0] + random.Random(int(q[0])).uniform(0, 4000))
        feed_in_batches(rec, shuffled, size=12)
    elif order == "killed and restarted":
        half = len(queued) // 2 + 5  # within the second day
        feed_in_batches(rec, queued[:half], size=12)
        rec.close()
        rec = Recorder(tmp_path / "h.sqlite")
        feed_in_batches(rec, queued[half:], size=12)
    else:
        feed_in_batches(rec, queued, size=12)
    # the last day is still the newest: read from its hours, the others from history_1d
    now = queued[-1][0] + 1
    got, want = by_day(rec, now), per_day(queued, now)
    assert got["min"] == want["min"] and got["max"] == want["max"]
    assert got["mean"] == pytest.approx(want["mean"], abs=DAY_MEAN_DB)
    merged = [start + slot * DAY_S for start, data in rec.conn.execute(
        "SELECT start, data FROM history_1d") for slot in RollupChunk.decode(
        data, start, DAY_S).slots]
    assert D0 + DAY_S in merged and D0 + 2 * DAY_S not in merged, merged
    rec.feed([], D0 + DAYS * DAY_S + 600, close_all=True)
    got = by_day(rec, D0 + DAYS * DAY_S + 600)
    assert got["min"] == want["min"] and got["max"] == want["max"]
    assert got["mean"] == pytest.approx(want["mean"], abs=DAY_MEAN_DB)
    # and the hourly records, merged, say the same
    answer = rec.answer(LINK, ["signal_dbm"], {"from": str(D0), "to": str(D0 + DAYS * DAY_S),
                                                "step": "3600"}, D0 + DAYS * DAY_S + 600)
    hourly = answer["series"][0]["min"]
    assert [min(hourly[d * 24:(d + 1) * 24]) for d in range(DAYS)] == want["min"]
    rec.close()


def test_the_last_hour_of_a_series_that_stopped_outlives_its_5_minute_records(
        tmp_path: Path) -> None:
    retention = Retention(raw=2 * 3600, fine=6 * 3600, coarse=10 * DAY_S)
    rec = Recorder(tmp_path / "h.sqlite", retention)
    queued = reports()[:150]  # 12.5 hours, then the node is gone
    feed_in_batches(rec, queued, size=12)
    now = D0 + DAY_S + 7 * 3600
    rec.feed([], now, close_all=True)
    assert rec.rec.prune(rec.conn, now) > 0
    assert rec.conn.execute("SELECT count(*) FROM history_5min").fetchone()[0] == 0
    answer = rec.answer(LINK, ["signal_dbm"], {"from": str(D0), "to": str(D0 + DAY_S),
                                                "step": "3600"}, now)
    maxima = answer["series"][0]["max"]
    hours: dict[int, float] = {}
    for ts, report, _ in queued:
        hour = int((ts - D0) // 3600)
        hours[hour] = max(hours.get(hour, -999.0), report.links[0].signal_dbm)
    # in whole dB, rounded up (`resolution.py`)
    assert maxima[:13] == [math.ceil(hours[h]) for h in range(13)] and maxima[13:] == [None] * 11
    rec.close()
