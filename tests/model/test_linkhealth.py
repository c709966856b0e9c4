"""One link's tracker: its signal baseline follows the hours as they close."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.model.linkhealth import LinkThresholds, LinkTracker, bad_reasons, is_bad
from meshmon.model.state import LinkSample

HOUR = 3600.0
T0 = 1_700_000_000.0 // HOUR * HOUR


def feed_hour(tracker: LinkTracker, start: float, signal: float, cfg: LinkThresholds) -> None:
    for minute in range(0, 60, 10):
        tracker.observe(LinkSample(signal_dbm=signal), start + minute * 60, cfg)


def test_baseline_is_the_median_of_closed_hours_and_moves_with_each_new_hour() -> None:
    cfg = LinkThresholds(baseline_min_h=3, baseline_window_h=4)
    tracker = LinkTracker()
    for hour, signal in enumerate([-50.0, -60.0, -55.0]):
        feed_hour(tracker, T0 + hour * HOUR, signal, cfg)
    assert tracker.baseline(cfg) is None  # two hours closed, the third still open
    feed_hour(tracker, T0 + 3 * HOUR, -70.0, cfg)
    assert tracker.baseline(cfg) == -55.0  # -50, -60, -55
    feed_hour(tracker, T0 + 4 * HOUR, -70.0, cfg)
    assert tracker.baseline(cfg) == -57.5  # -50, -60, -55, -70
    feed_hour(tracker, T0 + 5 * HOUR, -70.0, cfg)
    assert tracker.baseline(cfg) == -65.0  # the window keeps four: -60, -55, -70, -70


_maybe = st.none() | st.floats(-200, 200, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(signal=_maybe, avg=_maybe, snr=_maybe, tq=st.none() | st.integers(0, 255),
       etx=st.none() | st.floats(0, 10), base=_maybe, slack=st.sampled_from([0.0, 1.0]),
       drop=st.sampled_from([0.0, 10.0]))
def test_is_bad_says_whether_bad_reasons_names_any(
        signal: float | None, avg: float | None, snr: float | None, tq: int | None,
        etx: float | None, base: float | None, slack: float, drop: float) -> None:
    sample = LinkSample(signal_dbm=signal, signal_avg_dbm=avg, snr_db=snr, tq=tq, etx=etx)
    cfg = LinkThresholds(baseline_drop_db=drop)
    assert is_bad(sample, base, cfg, slack) == bool(bad_reasons(sample, base, cfg, slack))
