"""What a history request may ask for: the step each range is shown at, where its numbers
come from, and a clear error (never an exception of another kind) for what it cannot."""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path

import pytest

from meshmon.history.export import csv_text
from meshmon.history.query import BadRequest, auto_step, metric_names, stat_names, window
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import COARSE, RAW_LEVEL, ROLLUP_LEVELS, Retention
from tests.history.helpers import T0, Recorder, node_report

NOW = 1_800_000_000.0
KEPT = Retention()


@pytest.mark.parametrize(("range_", "step", "source", "points"), [
    ("1h", 0, "raw", 0), ("24h", 300, "5min", 288), ("7d", 3600, "1h", 168),
    ("30d", 3600, "1h", 720), ("1y", 86_400, "1h", 365),
])
def test_each_range_has_the_step_its_resolution_needs(range_: str, step: int, source: str,
                                                      points: int) -> None:
    win = window({"range": range_}, NOW, KEPT)
    assert (win.step, win.source) == (step, source)
    if step:  # a window that does not start on a step has one more, partly shown
        assert len(win.grid) in (points, points + 1)


def test_a_step_finer_than_what_is_kept_is_made_coarser_or_refused() -> None:
    three_days_ago = str(NOW - 3 * 86_400)
    assert window({"from": three_days_ago, "to": str(NOW - 2.9 * 86_400)}, NOW, KEPT).step \
        == 300  # raw samples are kept 48 h: 5-minute records instead
    with pytest.raises(BadRequest, match=r"kept 2 days.*step=300"):
        window({"from": three_days_ago, "step": "60"}, NOW, KEPT)
    with pytest.raises(BadRequest, match="step=3600"):
        window({"from": str(NOW - 40 * 86_400), "step": "300"}, NOW, KEPT)


def test_iso_and_unix_times_are_the_same() -> None:
    iso = window({"from": "2027-01-15T08:00:00Z", "to": "2027-01-15T09:00:00+00:00"}, NOW, KEPT)
    unix = window({"from": "1800000000", "to": "1800003600"}, NOW, KEPT)
    assert (iso.start, iso.end) == (unix.start, unix.end) == (NOW, NOW + 3600)


@pytest.mark.parametrize(("query", "says"), [
    ({"from": "yesterday"}, "from must be unix seconds or an ISO 8601 time"),
    ({"to": "nan"}, "to must be a time between 1970 and 9999"),
    ({"from": str(NOW), "to": str(NOW - 5)}, "from must be before to"),
    ({"range": "2w"}, "range must be one of 1h, 24h, 7d, 30d, 1y"),
    ({"range": "1h", "from": "1"}, "give range or from, not both"),
    ({"step": "7"}, "step must be one of"),
    ({"from": "0", "step": "10"}, "kept 2 days"),
    ({"from": str(NOW - 300 * 86_400), "step": "3600", "to": str(NOW)}, None),
    ({"from": "0", "to": str(NOW), "step": "3600"}, "too many"),
])
def test_bad_parameters_say_what_would_do(query: dict[str, str], says: str | None) -> None:
    if says is None:
        window(query, NOW, KEPT)
        return
    with pytest.raises(BadRequest, match=says.replace("(", r"\(")):
        window(query, NOW, KEPT)


def test_metrics_and_stats_are_checked() -> None:
    assert metric_names("signal_dbm,tq,signal_dbm", [], []) == ["signal_dbm", "tq"]
    assert metric_names("ccq_pct", [], []) == ["ccq_pct"]  # added to the wire by bridges
    with pytest.raises(BadRequest, match="unknown metric '<script>'"):
        metric_names("<script>", [], [])
    with pytest.raises(BadRequest, match="stats must be"):
        stat_names("median")


def test_auto_steps_grow_with_the_span() -> None:
    assert [auto_step(s) for s in (3600, 86_400, 30 * 86_400, 365 * 86_400)] == \
        [0, 300, 3600, 86_400]


def test_csv_opens_as_a_table_with_a_header_and_one_row_per_step() -> None:
    answer = {"t": [1_800_000_000, 1_800_000_300], "series": [
        {"kind": "link", "node": "a", "peer": "b", "iface": "wlan0", "link_kind": "wifi",
         "metric": "signal_dbm", "mean": [-61.5, None], "max": [-60, None]},
        {"kind": "node", "node": "=cmd", "metric": "load1", "mean": [0.5, 0.25]},
    ]}
    rows = list(csv.reader(io.StringIO(csv_text(answer))))
    assert rows == [
        ["time", "unix_time", "link a>b wlan0 wifi signal_dbm mean",
         "link a>b wlan0 wifi signal_dbm max", "node =cmd load1 mean"],
        ["2027-01-15T08:00:00Z", "1800000000", "-61.5", "-60", "0.5"],
        ["2027-01-15T08:05:00Z", "1800000300", "", "", "0.25"],
    ]


def test_the_last_hour_has_an_availability_strip_in_five_minute_steps(tmp_path: Path) -> None:
    """A raw answer (the 1 h range) gives availability too: up where the node reported,
    down in the 20 minutes it was silent, in 5-minute steps with their own times."""
    rec = Recorder(tmp_path / "raw.sqlite")
    start = T0 - 3600
    silent = range(int(start) + 1200, int(start) + 2400)  # 20 minutes without a report
    times = [start + 30 * i for i in range(120) if int(start + 30 * i) not in silent]
    rec.feed([(ts, node_report("a", ts, i), [None]) for i, ts in enumerate(times)], T0)
    answer = rec.answer(SeriesKey("node", "a"), ["availability", "clients"],
                        {"range": "1h"}, T0)
    assert answer["step"] == 0 and answer["source"] == "raw"
    clients = next(s for s in answer["series"] if s["metric"] == "clients")
    assert len(clients["t"]) == len(times)
    strip = next(s for s in answer["series"] if s["metric"] == "availability")
    assert strip["t"] == list(range(int(start), int(T0), 300))
    # reporting every 30 s, silent from the 20th to the 40th minute, reporting again
    assert strip["mean"] == [1.0] * 4 + [0.0] * 4 + [1.0] * 4
    rec.close()


def test_a_window_pickled_for_the_worker_process_keeps_its_level() -> None:
    # the store's worker tells the levels apart by identity (`level is COARSE`)
    for level in (RAW_LEVEL, *ROLLUP_LEVELS):
        assert pickle.loads(pickle.dumps(level)) is level
    win = window({"range": "7d"}, NOW, Retention())
    assert pickle.loads(pickle.dumps(win)).level is win.level is COARSE
