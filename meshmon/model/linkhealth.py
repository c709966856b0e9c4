"""Whether one link is degraded: thresholds with hysteresis and the link's own baseline.

Pure: one `LinkTracker` per directed link takes its samples with the time they came.
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from meshmon.model.state import LinkSample

RECENT_WEIGHT = 0.3
"""weight of a new sample in a link's moving average (about the last 5 samples)"""


@dataclass
class LinkThresholds:
    """When a link counts as degraded (the [health] config section)."""

    signal_dbm: float = -80.0
    snr_db: float = 15.0
    tq: int = 100
    etx: float = 4.0
    baseline_drop_db: float = 10.0
    baseline_window_h: float = 24.0
    baseline_min_h: float = 3.0
    hysteresis_db: float = 3.0
    hysteresis_tq: int = 15
    hysteresis_etx: float = 0.5
    samples_to_change: int = 3


class LinkTracker:
    """Degraded/up state machine with hysteresis and the signal baseline of one link."""

    __slots__ = (
        "_median",
        "degraded",
        "hour",
        "hour_n",
        "hour_sum",
        "hourly",
        "reasons",
        "recent",
        "since",
        "streak",
        "was_good",
    )

    def __init__(self) -> None:
        self.degraded = False
        self.streak = 0
        """consecutive samples on the other side of the thresholds"""
        self.hour = -1
        self.hour_sum = 0.0
        self.hour_n = 0
        self.hourly: array[float] = array("d")
        """the hourly means of the window, oldest first (an empty deque alone took 760
        bytes, times 175,000 links at guifi.net's size)"""
        self._median: float | None = None
        """median of `hourly`, kept until it changes (None: not computed yet)"""
        self.reasons: Sequence[str] = ()
        self.since = 0.0
        self.recent: float | None = None
        """moving average of the last few signal samples"""
        self.was_good = False
        """seen clearly within every threshold once: only such a link can *become* degraded
        (a link that was poor from its first sample is poor, not news)"""

    def baseline(self, settings: LinkThresholds) -> float | None:
        """Median of the hourly mean signals, once there are baseline_min_h of them."""
        if len(self.hourly) < settings.baseline_min_h:
            return None
        if self._median is None:  # the hourly means change once an hour: sorted once
            self._median = statistics.median(self.hourly)
        return self._median

    def _next_hour(self, hour: int, settings: LinkThresholds) -> None:
        """Close the hour being summed (its mean joins the baseline window) and start `hour`."""
        if self.hour_n:
            self.hourly.append(self.hour_sum / self.hour_n)
            excess = len(self.hourly) - int(settings.baseline_window_h)
            if excess > 0:
                del self.hourly[:excess]
            self._median = None
        self.hour, self.hour_sum, self.hour_n = hour, 0.0, 0

    def observe(self, sample: LinkSample, now: float, cfg: LinkThresholds) -> bool:
        """Take one sample; True when the link just became degraded or recovered."""
        # called for every new sample of every link (the degraded detector, each tick):
        # the cached baseline and the signal's hourly sum and moving average inline
        base = self._median
        if base is None and len(self.hourly) >= cfg.baseline_min_h:
            base = self.baseline(cfg)
        signal = sample.signal_avg_dbm
        if signal is None:
            signal = sample.signal_dbm
        if signal is not None:
            if now // 3600 != self.hour:
                self._next_hour(int(now // 3600), cfg)
            self.hour_sum += signal
            self.hour_n += 1
            recent = self.recent
            self.recent = signal if recent is None else recent + RECENT_WEIGHT * (
                signal - recent)
        if not self.degraded:
            # most samples cross nothing: asked without building the reasons' texts
            if is_bad(sample, base, cfg, 0.0):
                reasons = bad_reasons(sample, base, cfg, 0.0)
                self.streak += 1
            else:
                self.streak = 0
                if not self.was_good:
                    # clearly good: within every threshold by the hysteresis margin, so a
                    # link hovering at a threshold is not reported as degrading
                    self.was_good = not is_bad(sample, base, cfg, 1.0)
                if cfg.samples_to_change > 0:
                    return False
                reasons = []
            if self.streak >= cfg.samples_to_change:
                self.degraded, self.streak = True, 0
                self.reasons, self.since = reasons, now
                return True
            return False
        reasons = bad_reasons(sample, base, cfg, 1.0)
        if reasons:
            self.reasons = reasons
        self.streak = 0 if reasons else self.streak + 1
        if self.streak >= cfg.samples_to_change:
            self.degraded, self.streak = False, 0
            return True
        return False


def is_bad(s: LinkSample, base: float | None, cfg: LinkThresholds, slack: float) -> bool:
    """Whether `bad_reasons(s, base, cfg, slack)` names any reason (the same comparisons,
    no texts built: the hot path asks this of every sample)."""
    signal = s.signal_avg_dbm
    if signal is None:
        signal = s.signal_dbm
    if signal is not None:
        if signal < cfg.signal_dbm + slack * cfg.hysteresis_db:
            return True
        if (
            base is not None and cfg.baseline_drop_db > 0
            and signal < base - cfg.baseline_drop_db + slack * cfg.hysteresis_db
        ):  # fmt: skip
            return True
    snr = s.snr_db
    if snr is not None and snr < cfg.snr_db + slack * cfg.hysteresis_db:
        return True
    tq = s.tq
    if tq is not None and tq < cfg.tq + slack * cfg.hysteresis_tq:
        return True
    etx = s.etx
    return etx is not None and etx > cfg.etx - slack * cfg.hysteresis_etx


def bad_reasons(s: LinkSample, base: float | None, cfg: LinkThresholds, slack: float) -> list[str]:
    """Thresholds `s` crosses; with slack=1 the thresholds are moved by the hysteresis
    (used to decide whether a degraded link has recovered)."""
    reasons = []
    signal = s.signal_avg_dbm if s.signal_avg_dbm is not None else s.signal_dbm
    if signal is not None:
        if signal < cfg.signal_dbm + slack * cfg.hysteresis_db:
            reasons.append(f"signal {signal:.0f} dBm")
        if (
            base is not None and cfg.baseline_drop_db > 0
            and signal < base - cfg.baseline_drop_db + slack * cfg.hysteresis_db
        ):  # fmt: skip
            reasons.append(f"signal {base - signal:.0f} dB below its baseline {base:.0f} dBm")
    if s.snr_db is not None and s.snr_db < cfg.snr_db + slack * cfg.hysteresis_db:
        reasons.append(f"SNR {s.snr_db:.0f} dB")
    if s.tq is not None and s.tq < cfg.tq + slack * cfg.hysteresis_tq:
        reasons.append(f"TQ {s.tq}")
    if s.etx is not None and s.etx > cfg.etx - slack * cfg.hysteresis_etx:
        reasons.append(f"ETX {s.etx:.1f}")
    return reasons
