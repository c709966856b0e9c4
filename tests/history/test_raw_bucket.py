"""A raw bucket packed in one array (a row per sample) holds what a dict of one column per
metric held: the same samples in time order, the same columns, roll-up and stored form,
whatever order the samples came in, with duplicates and metrics that appear late."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.history.chunks import RawBucket, Stat

START = 1_800_000_000 - 1_800_000_000 % 300
SCALES = {1: 100, 2: 10_000, 3: 1, 4: 100}

samples = st.lists(st.tuples(
    st.integers(0, 299_999).map(lambda ms: START + ms / 1000),
    st.dictionaries(st.sampled_from(sorted(SCALES)),
                    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 2)),
                    max_size=4)), max_size=40)


def reference(added: list[tuple[float, dict[int, float]]]
              ) -> tuple[list[float], dict[int, list[float]]]:
    """What a bucket must hold: the last sample at each time, in time order; a column for
    every metric any sample had, NaN where a sample did not have it."""
    by_time: dict[float, dict[int, float]] = {}
    for ts, sample in added:
        by_time[ts] = sample
    times = sorted(by_time)
    mids = sorted({mid for _, sample in added for mid in sample})
    return times, {mid: [by_time[t].get(mid, math.nan) for t in times] for mid in mids}


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(x == y or (x != x and y != y)
                                    for x, y in zip(a, b, strict=True))


@settings(max_examples=150, deadline=None)
@given(samples)
def test_a_packed_bucket_holds_the_samples_a_column_per_metric_held(
        added: list[tuple[float, dict[int, float]]]) -> None:
    bucket = RawBucket(START)
    for ts, sample in added:
        bucket.add(ts, sample)
    times, columns = reference(added)
    assert list(bucket.times) == times and len(bucket) == len(times)
    assert sorted(bucket.values) == sorted(columns)
    assert all(same(list(bucket.values[mid]), col) for mid, col in columns.items())
    record = bucket.rollup()
    assert record.samples == len(times)
    for mid, col in columns.items():
        present = [v for v in col if v == v]
        stat = record.stats.get(mid)
        if not present:
            assert stat is None
            continue
        assert stat == Stat(len(present), min(present), sum(present) / len(present),
                            max(present))
    if not times:
        return  # an empty bucket is never stored
    back = RawBucket.decode(bucket.encode(SCALES), START, SCALES)
    assert list(back.times) == [START + round((t - START) * 1000) / 1000 for t in times]
    assert all(same(list(back.values[mid]), [round(v * SCALES[mid]) / SCALES[mid] if v == v
                                             else v for v in col])
               for mid, col in columns.items())


@settings(max_examples=100, deadline=None)
@given(samples, samples)
def test_merging_two_buckets_is_adding_the_second_ones_samples(
        first: list[tuple[float, dict[int, float]]],
        second: list[tuple[float, dict[int, float]]]) -> None:
    a, b = RawBucket(START), RawBucket(START)
    for ts, sample in first:
        a.add(ts, sample)
    for ts, sample in second:
        b.add(ts, sample)
    a.merge(b)
    times, columns = reference(first + second)
    assert list(a.times) == times
    for mid, col in columns.items():
        got = a.values.get(mid)
        if got is None:  # a metric the merged samples never had a reading of
            assert all(v != v for v in col)
            continue
        assert same(list(got), col)


@settings(max_examples=150, deadline=None)
@given(samples, st.booleans())
def test_a_sample_in_the_layouts_order_is_stored_as_one_in_any_other_order(
        added: list[tuple[float, dict[int, float]]], shuffled_first: bool) -> None:
    """`add` appends a sample whose metrics are the bucket's, in its order, without
    looking each one up: the bucket is the one the general path (the same sample in
    reverse order) makes, byte for byte — its times, columns and stored form."""
    fast, general = RawBucket(START), RawBucket(START)
    for k, (ts, sample) in enumerate(added):
        in_order = dict(sorted(sample.items()))
        backwards = dict(reversed(in_order.items()))
        fast.add(ts, backwards if shuffled_first and k == 0 else in_order)
        general.add(ts, backwards)
    assert fast.times == general.times
    assert fast.values.keys() == general.values.keys()
    assert all(same(list(fast.values[mid]), list(col)) for mid, col in general.values.items())
    if added:
        assert fast.encode(SCALES) == general.encode(SCALES)
