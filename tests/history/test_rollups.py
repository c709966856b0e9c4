"""Raw samples and roll-ups on a real SQLite file: the 5-minute and hourly records are the
min/mean/max of the samples whatever order they came in and across a restart; they are
built a bucket at a time; a link whose numbers do not change costs almost nothing."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pytest

from meshmon.history.chunks import BUCKET_S, HOUR_S
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import Retention
from meshmon.model.wire import Report
from tests.history.helpers import T0, Recorder, node_report

LINK = SeriesKey("link", "a", "peer", "wlan0", "wifi")
SPAN = 2 * HOUR_S
INTERVAL = 30.0


def reports(seed: int = 3) -> list[tuple[float, Report, list[str | None]]]:
    rng = random.Random(seed)
    out: list[tuple[float, Report, list[str | None]]] = []
    for i in range(int(SPAN / INTERVAL)):
        ts = T0 + i * INTERVAL + rng.uniform(0, 2)
        signal = round(rng.uniform(-80, -50), 1)
        out.append((ts, node_report("a", ts, i + 1, uptime=1000 + i * INTERVAL,
                                    signal=signal), ["peer"]))
    return out


def expected(queued: list[tuple[float, Report, list[str | None]]], step: int
             ) -> dict[str, list[float | None]]:
    groups: dict[int, list[float]] = {}
    for ts, report, _ in queued:
        signal = report.links[0].signal_dbm
        assert signal is not None
        groups.setdefault(int((ts - T0) // step), []).append(signal)
    slots = range(SPAN // step)
    return {"mean": [round(statistics.fmean(groups[i]), 2) for i in slots],
            # a signal's min and max are stored in whole dB (`resolution.py`), min down
            "min": [math.floor(min(groups[i])) for i in slots],
            "max": [math.ceil(max(groups[i])) for i in slots]}


def stepped(rec: Recorder, step: int) -> dict[str, list[float | None]]:
    answer = rec.answer(LINK, ["signal_dbm"], {"from": str(T0), "to": str(T0 + SPAN),
                                                "step": str(step)}, T0 + SPAN + 600)
    (series,) = answer["series"]
    assert answer["source"] == {BUCKET_S: "5min", HOUR_S: "1h"}[step]
    return {stat: series[stat] for stat in ("mean", "min", "max")}


def feed_in_batches(rec: Recorder, queued: list[tuple[float, Report, list[str | None]]],
                    size: int = 7) -> None:
    for i in range(0, len(queued), size):
        batch = queued[i:i + size]
        rec.feed(batch, max(ts for ts, _, _ in batch))


@pytest.mark.parametrize("order", ["in order", "shuffled", "killed and restarted"])
def test_rollups_are_the_min_mean_max_of_the_samples(tmp_path: Path, order: str) -> None:
    queued = reports()
    rec = Recorder(tmp_path / "h.sqlite")
    if order == "shuffled":  # late samples: some arrive after their bucket was rolled up
        shuffled = sorted(queued, key=lambda q: q[0] + random.Random(int(q[0])).uniform(0, 900))
        feed_in_batches(rec, shuffled)
    elif order == "killed and restarted":
        half = len(queued) // 2 + 3  # within a bucket
        feed_in_batches(rec, queued[:half])
        rec.close()  # killed: open buckets are stored raw, not rolled up
        rec = Recorder(tmp_path / "h.sqlite")
        feed_in_batches(rec, queued[half:])
    else:
        feed_in_batches(rec, queued)
    rec.feed([], T0 + SPAN + 600, close_all=True)
    for step in (BUCKET_S, HOUR_S):
        got, want = stepped(rec, step), expected(queued, step)
        assert got["min"] == want["min"] and got["max"] == want["max"], step
        # means are stored to 0.1 dB (`resolution.py`) at each level: within 0.05 dB of
        # the 5-minute level's, an hour's within 0.05 dB of the mean of its 5-minute
        # records (the expected value is rounded to 0.01)
        tolerance = {BUCKET_S: 0.055, HOUR_S: 0.105}[step]
        assert got["mean"] == pytest.approx(want["mean"], abs=tolerance), step
        assert all(m is not None and round(m * 10) == pytest.approx(m * 10) for m in got["mean"])
    # and every sample is there as reported
    raw = rec.answer(LINK, ["signal_dbm"], {"from": str(T0), "to": str(T0 + SPAN),
                                             "step": "raw"}, T0 + SPAN + 600)
    assert raw["series"][0]["mean"] == [r.links[0].signal_dbm for _, r, _ in queued]
    rec.close()


def test_a_link_that_does_not_change_costs_almost_nothing(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "h.sqlite")
    queued = [(T0 + i * INTERVAL, node_report("a", T0 + i * INTERVAL, i + 1,
                                              uptime=1000 + i * INTERVAL), ["peer"])
              for i in range(2880)]  # a day
    feed_in_batches(rec, queued, size=50)
    rec.feed([], T0 + 86_400 + 600, close_all=True)
    sid = rec.rec.tables.series[LINK]  # type: ignore[union-attr]
    raw_bytes, rows = rec.conn.execute(
        "SELECT sum(length(data)), count(*) FROM history_raw WHERE series = ?", (sid,)
    ).fetchone()
    assert rows == 288
    # the table before held ~193 bytes per link sample: now 10 samples of two metrics and
    # their times in a few dozen bytes
    assert raw_bytes / 2880 < 5, raw_bytes / 2880
    answer = rec.answer(LINK, ["signal_dbm", "tx_rate_mbps"],
                        {"from": str(T0), "to": str(T0 + 86_400), "step": "raw"},
                        T0 + 86_400 + 600)
    by_metric = {s["metric"]: s for s in answer["series"]}
    assert by_metric["signal_dbm"]["mean"] == [-60.0] * 2880
    assert by_metric["tx_rate_mbps"]["t"] == [ts for ts, _, _ in queued]
    rec.close()


def statements_of_one_batch(rec: Recorder, ts: float, seq: int) -> list[str]:
    seen: list[str] = []
    rec.conn.set_trace_callback(seen.append)
    # the bucket closes: raw row, its 5-minute record, its hour's record
    rec.feed([(ts, node_report("a", ts, seq, uptime=ts - T0), ["peer"])], ts)
    rec.conn.set_trace_callback(None)
    return seen


def test_roll_ups_are_incremental_not_a_rescan(tmp_path: Path) -> None:
    """A batch that closes a bucket costs the same after a day of history as after an hour:
    the same statements, each on one row by its key."""
    rec = Recorder(tmp_path / "h.sqlite")
    day = [(T0 + i * INTERVAL, node_report("a", T0 + i * INTERVAL, i + 1, uptime=i * INTERVAL),
            ["peer"]) for i in range(2880)]
    feed_in_batches(rec, day[:120], size=10)
    early = statements_of_one_batch(rec, T0 + 120 * INTERVAL, 121)
    feed_in_batches(rec, day[121:], size=10)
    late = statements_of_one_batch(rec, T0 + 2880 * INTERVAL, 2881)
    assert len(early) == len(late) and early
    reads = [s for s in late if s.startswith("SELECT")]
    assert all("WHERE series = " in s and "AND start = " in s for s in reads), reads
    rec.close()


def test_each_level_is_pruned_after_its_retention(tmp_path: Path) -> None:
    retention = Retention(raw=2 * HOUR_S, fine=6 * HOUR_S, coarse=2 * 86_400)
    rec = Recorder(tmp_path / "h.sqlite", retention)
    queued = [(T0 + i * 300.0, node_report("a", T0 + i * 300.0, i + 1, uptime=i * 300.0),
               ["peer"]) for i in range(4 * 288)]  # four days, a report every 5 minutes
    feed_in_batches(rec, queued, size=24)
    now = T0 + 4 * 86_400
    rec.feed([], now, close_all=True)
    assert rec.rec.prune(rec.conn, now) > 0
    for table, keep, span in (("history_raw", retention.raw, BUCKET_S),
                              ("history_5min", retention.fine, HOUR_S),
                              ("history_1h", retention.coarse, 86_400)):
        oldest = rec.conn.execute(f"SELECT min(start) FROM {table}").fetchone()[0]
        assert now - keep - span <= oldest <= now - keep, table
    rec.close()
