"""A long list encoded as MessagePack a slice at a time, to the same bytes.

msgspec encodes a list in one C call that keeps the interpreter lock (GIL) throughout:
the SQLite worker's history journal of a write after a drain (tens of thousands of
samples) held it for 10–40 ms, and the event loop, in another thread of the same
process, waited as long (bench/README.md, stop 32). Encoded `SLICE` items at a time,
another thread takes the GIL between slices within a switch interval (1 ms).

A MessagePack array is its header (its length) followed by its items, so the items of
the slices' arrays, after one header for the whole length, are the bytes the list
encodes to in one call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

SLICE = 2000
"""items encoded at a time (~1 ms for the journal's samples)"""


def encoded_slices(encoder: msgspec.msgpack.Encoder, items: Sequence[Any]
                   ) -> Iterator[bytes | memoryview]:
    """The MessagePack of `list(items)` in pieces, `SLICE` items encoded at a time: joined,
    the bytes of `encoder.encode(list(items))`. To be consumed piece by piece (joining
    the pieces of 13 MB held the GIL ~6 ms)."""
    if len(items) <= SLICE:
        yield encoder.encode(items)
        return
    yield array_header(len(items))
    for at in range(0, len(items), SLICE):
        encoded = encoder.encode(items[at:at + SLICE])
        yield memoryview(encoded)[_header_length(encoded[0]):]


def array_header(length: int) -> bytes:
    """The header of a MessagePack array of `length` items (fixarray, array 16, array 32)."""
    if length < 16:
        return bytes((0x90 | length,))
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def _header_length(first: int) -> int:
    """The length of the array header that starts with the byte `first`."""
    if 0x90 <= first <= 0x9F:
        return 1
    if first == 0xDC:
        return 3
    if first == 0xDD:
        return 5
    raise ValueError(f"not a MessagePack array: first byte {first:#x}")
