"""A long list encoded as MessagePack a slice at a time (`meshmon.msgpack_slices`): the
same bytes as one call, and another thread runs between the slices."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import msgspec
import pytest

from meshmon.msgpack_slices import SLICE, array_header, encoded_slices

ENCODER = msgspec.msgpack.Encoder()


def journal(n: int) -> list[tuple[int, float, dict[int, float]]]:
    """Samples as the history journal holds them: (series, time, {metric id: value})."""
    return [(i % 7001, 1_800_000_000.0 + i / 3, {1: -61.0 - i % 30, 2: 144.4, 7: float(i)})
            for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 15, 16, SLICE - 1, SLICE, SLICE + 1, SLICE + 15,
                               SLICE + 16, 3 * SLICE + 7, 65_535, 65_536, 70_001])
def test_the_bytes_are_those_of_one_call(n: int) -> None:
    items = journal(n)
    encoded = b"".join(encoded_slices(ENCODER, items))
    assert encoded == ENCODER.encode(items)
    decoded = msgspec.msgpack.decode(encoded, type=list[tuple[int, float, dict[int, float]]])
    assert decoded == items


@pytest.mark.parametrize("n", [0, 15, 16, 65_535, 65_536, 2**20])
def test_the_header_is_msgpacks_own(n: int) -> None:
    assert array_header(n) == ENCODER.encode([None] * n)[:len(array_header(n))]


def consume_in_slices(items: list[Any]) -> int:
    """The pieces taken one by one, as the history journal compresses them."""
    return sum(len(piece) for piece in encoded_slices(ENCODER, items))


def longest_pause_of_another_thread(work: threading.Thread) -> float:
    """Start `work` and spin in this thread until it ends; the longest this thread went
    without running (it waits for the GIL while `work` holds it)."""
    longest = 0.0
    last = time.perf_counter()
    work.start()  # (the new thread may take the GIL and run before start() returns)
    while work.is_alive():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    work.join()
    return longest


def test_another_thread_runs_between_the_slices() -> None:
    items = journal(300_000)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # as the collector runs (`meshmon.runtime`)
    try:
        at_once = longest_pause_of_another_thread(
            threading.Thread(target=ENCODER.encode, args=(items,)))
        sliced = longest_pause_of_another_thread(
            threading.Thread(target=consume_in_slices, args=(items,)))
    finally:
        sys.setswitchinterval(interval)
    # in one call the spinning thread waits for the whole encoding; sliced, for about a
    # switch interval at a time
    assert sliced < at_once / 3, (sliced, at_once)
