"""Chunks of history as bytes: what goes in comes out; damage is an error, not a crash."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.history.chunks import BUCKET_S, RollupChunk, rollup_arrays
from meshmon.history.codec import FORMAT, MISSING, Chunk, ChunkError, inflate, pack, values_of

values = st.one_of(st.integers(-(2**60) + 1, 2**60 - 1), st.just(MISSING))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**40), max_size=6),
       st.integers(0, 40).flatmap(lambda n: st.lists(st.lists(st.one_of(
           values, st.sampled_from([0, 0, 100, -2500, 10**6])), min_size=n, max_size=n),
           max_size=5)),
       st.lists(st.booleans(), max_size=6))
def test_round_trip(header: list[int], columns: list[list[int]], as_is: list[bool]) -> None:
    rows = len(columns[0]) if columns else 0
    blob = pack([rows, *header], columns, as_is)
    chunk = Chunk(blob, rows_at=0)
    assert chunk.header == [rows, *header]
    assert [chunk.column(i) for i in range(chunk.columns)] == (columns if rows else [])
    if rows and columns:  # the read path's numpy decoding gives the same
        inflated = inflate(blob)
        both = values_of([inflated.planes] * 2, inflated.width, rows, inflated.coded,
                         inflated.zeros, len(columns))
        assert both.tolist() == [columns, columns]


def test_whole_numbers_and_columns_of_zeros_cost_what_they_are() -> None:
    rng = random.Random(2)
    # whole dBm at a scale of 100, and a column of zeros (nothing missing)
    dbm = [100 * rng.randint(-70, -60) for _ in range(24)]
    fine = [v + rng.randint(-49, 50) for v in dbm]  # the same to 0.01
    whole, hundredths = pack([24], [dbm, [0] * 24]), pack([24], [fine, [0] * 24])
    assert len(whole) < 0.7 * len(hundredths), (len(whole), len(hundredths))
    assert len(pack([24], [dbm])) <= len(whole) <= len(pack([24], [dbm])) + 2


def test_unchanged_values_cost_almost_nothing() -> None:
    steady = pack([288], [[-61] * 288, [130] * 288])
    rng = random.Random(1)
    noisy = pack([288], [[rng.randint(-9000, -3000) for _ in range(288)], [130] * 288])
    assert len(steady) < 64, len(steady)  # 576 numbers: about a bit each
    assert len(noisy) > 4 * len(steady)


@pytest.mark.parametrize("blob", [b"", b"\x09abc", b"\x01\x02\x03", b"\x01\x01\x05garbage",
                                  pack([3], [[1, 2, 3]])[:-3]])
def test_damaged_chunks_are_errors(blob: bytes) -> None:
    with pytest.raises(ChunkError):
        Chunk(blob, rows_at=0)


def test_chunks_of_the_format_before_schema_5_are_read() -> None:
    # pack([3, 7], [[1, 2, 300000], [-5, -5, MISSING]]) by meshmon 0d25ead (format 2)
    old = bytes.fromhex("020203076362da7392e12b0383ba3ac37f06064e4e100904b8c87a00")
    chunk = Chunk(old, rows_at=0)
    assert chunk.header == [3, 7]
    assert [chunk.column(0), chunk.column(1)] == [[1, 2, 300000], [-5, -5, MISSING]]
    assert Chunk(pack([3, 7], [[1, 2, 300000], [-5, -5, MISSING]]), rows_at=0).header == [3, 7]
    assert len(pack([3], [[1, 2, 3]])) < len(old)


def test_rollup_chunks_of_schema_5_are_read() -> None:
    # RollupChunk(3600, 300) with two records put, encoded by meshmon 264f106 (format 3,
    # min and max below and above the mean at 0.01)
    old = bytes.fromhex("03080402020102636011601167f86859645758d428c6a518175b57cb0006facc264c4c"
                        "4ccc0cdcdc8c8c2c2c0cf4070d0d400200")
    chunk = RollupChunk.decode(old, 3600, BUCKET_S)
    assert (chunk.slots, chunk.samples) == ([0, 2], [10, 12])
    assert chunk.metrics == {1: [[0, 0], [-6137, -6550], [163, 450], [137, 450]],
                             2: [[1, 12], [1425, MISSING], [175, 0], [575, 0]]}
    got = rollup_arrays([(3600, old)], BUCKET_S, {1: 100, 2: 100}, [1, 2],
                        lambda start, exc: pytest.fail(str(exc)))
    assert got[1].lo.tolist() == [-63.0, -70.0] and got[1].hi.tolist() == [-60.0, -61.0]
    assert got[2].mean.tolist() == [14.25] and got[2].n.tolist() == [9]
    # written again (its series got a new record), in the new format, it reads the same
    again = chunk.encode()
    assert again[0] == FORMAT
    assert RollupChunk.decode(again, 3600, BUCKET_S).metrics == chunk.metrics
