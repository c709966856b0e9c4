"""The stored-lag bookkeeping every sink shares: quantiles and cumulative counts by bound."""

from __future__ import annotations

from meshmon.sinks.lag import LAG_BOUNDS_S, LagTracker


def test_stored_within_counts_each_report_under_every_bound_it_fits_cumulatively() -> None:
    lag = LagTracker()
    lag.mark(3, 100.0)  # a report of 3 rows, taken at 100
    lag.mark(1, None)  # an event row: no report, no lag
    lag.mark(2, 100.5)
    lag.settle(4, stored=True, now=101.0)  # the first report (1.0 s) and the event
    lag.stored([100.9375, 50.0], now=101.0)  # a sink without a FIFO: 0.0625 s and 51 s
    lag.settle(2, stored=False, now=200.0)  # the second report dropped: no lag
    within = lag.stored_within()
    assert list(within) == [*map(str, LAG_BOUNDS_S), "+Inf"]
    assert within["0.05"] == 0
    assert within["0.1"] == 1
    assert within["0.9"] == 1
    assert within["1.0"] == 2  # a bound holds a lag equal to it
    assert within["30.0"] == 2
    assert within["60.0"] == 3
    assert within["+Inf"] == 3
    assert lag.reports_settled == 2
    # the difference of two reads is what was stored between them
    lag.stored([101.0], now=101.25)
    later = lag.stored_within()
    assert {b: later[b] - within[b] for b in ("0.2", "0.3", "+Inf")} == {
        "0.2": 0, "0.3": 1, "+Inf": 1}
