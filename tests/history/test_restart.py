"""A collector restarted within a 5-minute bucket continues that bucket: the samples from
before the restart are read back into it, and every answer counts them once — also the
5-minute, hourly and daily steps while the bucket is still open (they counted the
samples before the restart twice, from the stored record and from memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshmon.history.samples import SeriesKey
from tests.history.helpers import T0, Recorder, node_report

STEPS = ("raw", "300", "3600", "86400")
KEYS = ((SeriesKey("node", "n1"), ["load1", "clients"]),
        (SeriesKey("link", "n1", "peer", "wlan0", "wifi"), ["signal_dbm"]))


def report(i: int) -> list[Any]:
    """The i-th report, every 30 s from T0 (loads and signals that differ)."""
    ts = T0 + 30.0 * i
    r = node_report("n1", ts, i + 1, uptime=1000 + 30.0 * i, signal=-50.0 - i % 30)
    assert r.sys is not None
    r.sys.load = [float(i % 7), 0.1, 0.1]
    return [(ts, r, ["peer"])]


def answers(rec: Recorder, now: float) -> list[dict[str, Any]]:
    q = {"from": str(T0 - 86_400), "to": str(T0 + 86_400)}
    return [rec.answer(key, metrics, {**q, "step": step}, now)
            for key, metrics in KEYS for step in STEPS]


@pytest.mark.parametrize("closed_at_stop", [False, True])
@pytest.mark.parametrize("restart_at", [3, 12, 130])
def test_answers_after_a_restart_within_a_bucket_are_those_of_a_run_without(
        tmp_path: Path, restart_at: int, closed_at_stop: bool) -> None:
    """Reports every 30 s; one collector runs through, the other stops after report
    `restart_at` and starts again on its file, where the broker hands it the last report
    again. Both answer the same at every report that follows (the continued bucket still
    open), and after its bucket closed. The stop leaves its open buckets in the journal
    (as a stop or a kill does), or stores them (`closed_at_stop`: as a stop did before).
    restart_at 3: the hour's first bucket; 12: a later one of the hour (the hour's
    5-minute records are stored); 130: the second hour."""
    through = Recorder(tmp_path / "through.sqlite")
    restarted = Recorder(tmp_path / "restarted.sqlite")
    last = restart_at + 14  # the continued bucket closes within these
    for i in range(restart_at + 1):
        for rec in (through, restarted):
            rec.feed(report(i), T0 + 30.0 * i)
    stop_at = T0 + 30.0 * restart_at + 1
    restarted.feed([], stop_at, close_all=closed_at_stop)
    restarted.close()
    restarted = Recorder(tmp_path / "restarted.sqlite")
    # the broker hands the last report before the stop over again (its acknowledgement
    # was lost): its samples are stored already, and count once
    for rec in (through, restarted):
        rec.feed(report(restart_at), T0 + 30.0 * restart_at + 2)
    assert answers(restarted, stop_at + 2) == answers(through, stop_at + 2)
    for i in range(restart_at + 1, last):
        now = T0 + 30.0 * i
        for rec in (through, restarted):
            rec.feed(report(i), now)
        assert answers(restarted, now + 1) == answers(through, now + 1), f"report {i}"
    through.close()
    restarted.close()


def test_buckets_left_in_the_journal_are_stored_after_a_long_downtime(
        tmp_path: Path) -> None:
    """A collector stops mid-bucket (its buckets stay in the journal) and starts again six
    hours later: the buckets it takes back close at its first write and are stored, and
    it answers what a collector that ran through the gap answers."""
    through = Recorder(tmp_path / "through.sqlite")
    restarted = Recorder(tmp_path / "restarted.sqlite")
    for i in range(25):  # into the third 5-minute bucket
        for rec in (through, restarted):
            rec.feed(report(i), T0 + 30.0 * i)
    restarted.close()
    restarted = Recorder(tmp_path / "restarted.sqlite")
    assert restarted.rec.open_buckets  # back in memory, not stored
    later = 6 * 3600 // 30  # the report six hours on
    for rec in (through, restarted):
        rec.feed(report(later), T0 + 30.0 * later)
    assert restarted.rec.closed_waiting == 0
    assert answers(restarted, T0 + 30.0 * later + 1) == answers(through,
                                                                T0 + 30.0 * later + 1)
    # the journal keeps only the rows of the bucket still open
    first = restarted.conn.execute("SELECT min(last_start) FROM history_journal").fetchone()
    assert first[0] >= T0 + 30.0 * later - 300
    through.close()
    restarted.close()
