"""One link's tracker: its signal baseline follows the hours as they close."""

from __future__ import annotations

from meshmon.model.linkhealth import LinkThresholds, LinkTracker
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
