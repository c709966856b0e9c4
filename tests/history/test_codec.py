"""Chunks of history as bytes: what goes in comes out; damage is an error, not a crash."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.history.codec import MISSING, Chunk, ChunkError, pack

values = st.one_of(st.integers(-(2**60) + 1, 2**60 - 1), st.just(MISSING))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**40), max_size=6),
       st.integers(0, 40).flatmap(lambda n: st.lists(st.lists(values, min_size=n, max_size=n),
                                                     max_size=5)))
def test_round_trip(header: list[int], columns: list[list[int]]) -> None:
    rows = len(columns[0]) if columns else 0
    chunk = Chunk(pack([rows, *header], columns), rows_at=0)
    assert chunk.header == [rows, *header]
    assert [chunk.column(i) for i in range(chunk.columns)] == (columns if rows else [])


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
