"""Roll-up figures are stored at the resolution stated per metric (docs/history.md)."""

from __future__ import annotations

import pytest

from meshmon.history.chunks import BUCKET_S, Record, RollupChunk, Stat, scale_for
from meshmon.history.resolution import rounding_for

CASES = [
    # metric, (min, mean, max) in → (min, mean, max) stored
    ("signal_dbm", (-63.4, -61.37, -60.2), (-64.0, -61.4, -60.0)),
    ("snr_db", (30.0, 31.04, 33.0), (30.0, 31.0, 33.0)),
    ("busy_pct", (12.34, 20.06, 31.21), (12.3, 20.1, 31.3)),
    ("tq", (200.0, 231.6, 255.0), (200.0, 232.0, 255.0)),
    ("clients", (3.0, 5.83, 9.0), (3.0, 5.8, 9.0)),
    ("lq", (0.9001, 0.95437, 1.0), (0.9001, 0.954, 1.0)),
    ("rx_bps", (1_234_567.0, 2_345_678.0, 9_876_543.0), (1_230_000.0, 2_350_000.0, 9_880_000.0)),
    ("tx_rate_mbps", (6.5, 117.37, 144.4), (6.5, 117.0, 144.0)),
    ("load1", (0.01, 0.437, 1.27), (0.01, 0.44, 1.27)),
    ("up_s", (29.0, 29.87, 30.0), (29.0, 29.87, 30.0)),
]


@pytest.mark.parametrize(("metric", "given", "stored"), CASES)
def test_a_record_is_stored_at_its_metrics_resolution(metric: str, given: tuple[float, ...],
                                                      stored: tuple[float, ...]) -> None:
    scales = {1: scale_for(metric)}
    chunk = RollupChunk(0, BUCKET_S)
    chunk.put(0, Record(10, {1: Stat(10, *given)}), scales, {1: rounding_for(metric, scales[1])})
    again = RollupChunk.decode(chunk.encode(), 0, BUCKET_S).merged(scales)
    assert again is not None
    stat = again.stats[1]
    assert (stat.lo, stat.mean, stat.hi) == pytest.approx(stored, abs=1e-9)
    assert stat.lo <= stat.mean <= stat.hi
