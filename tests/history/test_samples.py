"""A report → one sample per series: every numeric field kept, counters as rates that are
never negative (wraps, reboots and resets), unresolved peers left out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.history.samples import COUNTERS, WRAP_32, CounterRates, Extractor, SeriesKey
from tests.history.helpers import T0, node_report

KEY = SeriesKey("iface", "a", "", "eth0")


def rates(readings: list[tuple[float, int, bool]]) -> list[float | None]:
    counter = CounterRates()
    return [counter.rate(KEY, "rx_bytes", ts, value, reset) for ts, value, reset in readings]


def test_bytes_become_bits_per_second() -> None:
    assert rates([(0, 1000, False), (10, 2000, False)]) == [None, 800.0]


def test_a_32_bit_counter_that_wraps_gives_the_rate_across_the_wrap() -> None:
    got = rates([(0, WRAP_32 - 1000, False), (10, 500, False)])
    assert got == [None, 1500 * 8 / 10]


def test_a_reset_counter_or_a_reboot_gives_no_rate_not_a_negative_one() -> None:
    # a 64-bit counter going back (re-association), then a reboot (uptime went back)
    assert rates([(0, 10**12, False), (10, 5000, False), (20, 9000, False),
                  (30, 100, True)]) == [None, None, 3200.0, None]


def test_a_long_silence_gives_no_rate() -> None:
    assert rates([(0, 0, False), (7200, 10**6, False)]) == [None, None]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 4000), st.integers(0, 2**64 - 1), st.booleans()),
                max_size=30))
def test_rates_are_never_negative(steps: list[tuple[float, int, bool]]) -> None:
    ts = 0.0
    readings = []
    for gap, value, reset in steps:
        ts += gap
        readings.append((ts, value, reset))
    assert all(r is None or r >= 0 for r in rates(readings))


def test_every_numeric_field_is_kept_new_link_metrics_included() -> None:
    # SNMP bridges report CCQ, distance and capacity: kept without a change to the history
    link = {"peer": "b", "iface": "ath0", "kind": "wifi", "signal_dbm": -58, "ccq_pct": 91,
            "distance_m": 2400, "tx_capacity_mbps": 210.5, "tx_retries": 10,
            "inactive_ms": 20, "chains_dbm": [-60, -61]}
    ex = Extractor()
    first = dict(ex.samples(node_report("a", T0, 1, links=[link]), T0, ["b"]))
    link2 = {**link, "tx_retries": 40}
    second = dict(ex.samples(node_report("a", T0 + 30, 2, links=[link2]), T0 + 30, ["b"]))
    key = SeriesKey("link", "a", "b", "ath0", "wifi")
    assert first[key] == {"signal_dbm": -58, "ccq_pct": 91, "distance_m": 2400,
                          "tx_capacity_mbps": 210.5}
    assert second[key]["tx_retries_per_s"] == 1.0  # 30 retries in 30 s
    node = second[SeriesKey("node", "a")]
    assert node["load1"] == 0.5 and node["mem_used_pct"] == 60.0 and node["clients"] == 2
    assert node["up_s"] == 30.0  # up since the previous report


def test_links_to_unresolved_peers_are_not_kept() -> None:
    links = [{"peer_mac": "02:00:00:00:00:99", "iface": "wlan0", "kind": "wifi",
              "signal_dbm": -80}]
    got = Extractor().samples(node_report("a", T0, 1, links=links), T0, [None])
    assert [key.kind for key, _ in got] == ["node", "iface"]  # no link


def test_a_report_after_downtime_counts_one_interval_up() -> None:
    ex = Extractor()
    ex.samples(node_report("a", T0, 1), T0, ["peer"])
    later = dict(ex.samples(node_report("a", T0 + 3600, 1, uptime=5), T0 + 3600, ["peer"]))
    assert later[SeriesKey("node", "a")]["up_s"] == 30.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(COUNTERS)), st.floats(0.5, 100),
                          st.integers(0, 2**40), st.booleans()), max_size=30))
def test_each_counter_of_a_series_keeps_its_own_last_reading(
        steps: list[tuple[str, float, int, bool]]) -> None:
    # the readings of a series are packed together: one counter's reading must not
    # disturb another's (each compared with the counter alone)
    together = CounterRates()
    alone: dict[str, CounterRates] = {}
    ts = 0.0
    for counter, gap, value, reset in steps:
        ts += gap
        expected = alone.setdefault(counter, CounterRates()).rate(KEY, counter, ts, value,
                                                                  reset)
        assert together.rate(KEY, counter, ts, value, reset) == expected
