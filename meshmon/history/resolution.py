"""The resolution each metric's roll-up figures are stored with (`docs/history.md`).

Raw samples are kept as reported (to the metric's scale). A roll-up record's figures are
stored at a resolution suited to what devices report, coarser than the scale where finer
digits say nothing: a mean signal to 0.1 dB (not 0.01) from whole-dBm readings, its min and
max in whole dB as iw and SNMP give them; rates, which come from counters with any
fraction, to three significant digits. The codec stores a column whose values are all
multiples of some number divided by it, so whole dBm, TQ or 0.1 dB cost what they are.

| metrics | mean | min, max |
|---|---|---|
| dB and dBm (`*_dbm`, `*_db`, `rssi`, `remote_rssi`) | 0.1 dB | whole dB (min down, max up) |
| percentages (`*_pct`) | 0.1 | 0.1 (min down, max up) |
| `clients`, `links` | 0.1 | as reported (whole) |
| `tq` (0–255) | whole | as reported (whole) |
| `lq`, `nlq` (0–1) | 0.001 | as reported |
| rates (`*_bps`, `*_pps`, `*_per_s`, `*_mbps`), `*_kb` | 3 significant digits | the same |
| every other (`load*`, `etx`, costs, `up_s`, `seq`, …) | as stored (0.01 or whole) | as reported |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATES = ("_bps", "_pps", "_per_s", "_mbps", "_kb")
"""rates (bit rates too) and amounts of memory: every figure to 3 significant digits"""
DB_NAMES = frozenset({"rssi", "remote_rssi"})
TENTHS = frozenset({"clients", "links"})


@dataclass(frozen=True, slots=True)
class Rounding:
    """How one metric's stored roll-up figures (whole multiples of 1/scale) are rounded."""

    mean_step: int = 1
    """a stored mean is a whole multiple of this (in stored units)"""
    digits: int = 0
    """significant digits of a stored mean (0: no such limit)"""
    extremes_too: bool = False
    """min and max get the same significant digits as the mean"""
    extremes_step: int = 1
    """a stored min or max is a whole multiple of this"""

    def mean(self, q: int) -> int:
        """A stored mean at this resolution."""
        if self.mean_step > 1:
            q = _nearest(q, self.mean_step)
        return _significant(q, self.digits) if self.digits else q

    def error(self, stat: str, value: float, scale: int) -> float:
        """At most how far a stored `stat` (mean, min, max) of about `value` is from the
        figure at the metric's scale, for one rounding."""
        step = (self.mean_step if stat == "mean" else self.extremes_step) / scale
        if self.digits and (stat == "mean" or self.extremes_too):
            step = max(step, 10 ** (math.floor(math.log10(abs(value) or 1)) - self.digits + 1)
                       / 2 * 1.01)
        return step

    def low(self, q: int) -> int:
        """A stored min at this resolution (a step rounds it down: no sample was lower)."""
        if self.extremes_step > 1:
            q = q // self.extremes_step * self.extremes_step
        return _significant(q, self.digits) if self.extremes_too else q

    def high(self, q: int) -> int:
        """A stored max at this resolution (a step rounds it up: no sample was higher)."""
        if self.extremes_step > 1:
            q = -(-q // self.extremes_step) * self.extremes_step
        return _significant(q, self.digits) if self.extremes_too else q


EXACT = Rounding()


def rounding_for(name: str, scale: int) -> Rounding:
    """The resolution of a metric's roll-up figures, stored `scale` steps per unit."""
    if name.endswith(RATES):
        return Rounding(digits=3, extremes_too=True)
    if name.endswith(("_dbm", "_db")) or name in DB_NAMES:
        return _step(0.1, scale, extremes=1.0)
    if name.endswith("_pct"):
        return _step(0.1, scale, extremes=0.1)
    if name in TENTHS:
        return _step(0.1, scale)
    if name == "tq":
        return _step(1.0, scale)
    if name in ("lq", "nlq"):
        return _step(0.001, scale)
    return EXACT


def _step(unit: float, scale: int, extremes: float = 0.0) -> Rounding:
    """Means to `unit`, min and max to `extremes` (0: as reported)."""
    return Rounding(mean_step=max(1, round(unit * scale)),
                    extremes_step=max(1, round(extremes * scale)))


def _nearest(q: int, step: int) -> int:
    """q rounded to a whole multiple of step (halves away from zero)."""
    half = step // 2
    return (q + half) // step * step if q >= 0 else -((-q + half) // step * step)


def _significant(q: int, digits: int) -> int:
    """q rounded to `digits` significant digits."""
    size = len(str(abs(q)))
    return _nearest(q, 10 ** (size - digits)) if size > digits else q
