"""Chunks of history as bytes: columns of whole numbers, delta-coded, byte-shuffled, deflated.

A chunk is a header of small integers and a few columns of equal length. The columns,
one after the other, are stored as the differences between neighbours (a value that did
not change costs a zero), zigzag-coded (0, -1, 1, -2 … as 0, 1, 2, 3 …: a small step down
has high bytes of zero like a small step up), the 8-byte numbers are split into byte planes
(all high bytes together, nearly all zero), and the whole is deflated. Unchanged and
slowly changing series shrink to a fraction of a byte per value; noisy ones to about their
entropy (zigzag saves about a quarter on noisy roll-ups against plain signed differences).

Encoding and decoding are mostly C work: `map(operator.sub)` over the concatenated
columns, `zlib`, byte-plane slicing, `array.frombytes` and one `itertools.accumulate`.

Layout: one format byte, the number of byte planes stored (the planes above are all zero:
most numbers fit in one or two bytes, so there is less to deflate and to inflate), the
header as varints (its length first), then the deflated body (raw deflate, no zlib header:
6 bytes less per chunk). Format 2 (meshmon up to schema 4) stored all eight planes and had
no plane count; it is still read.
"""

from __future__ import annotations

import functools
import itertools
import operator
import zlib
from array import array
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FORMAT = 3
_FULL_FORMAT = 2
"""every plane stored, no plane count (written up to schema version 4)"""
MISSING = -(2**62)
"""the stored value of an absent reading (|MISSING - v| still fits in 64 bits)"""
_WIDTH = 8


class ChunkError(ValueError):
    """Bytes that are not a chunk this code wrote."""


def pack(header: Sequence[int], columns: Sequence[Sequence[int]]) -> bytes:
    """Header (non-negative ints) and equally long columns of ints → bytes."""
    if len(set(map(len, columns))) > 1:
        raise ValueError("columns differ in length")
    flat = list(itertools.chain.from_iterable(columns))
    raw = _zigzag(array("q", map(operator.sub, flat, itertools.chain((0,), flat))).tobytes())
    planes = [raw[i::_WIDTH] for i in range(_WIDTH)]
    zero = bytes(len(planes[0]))
    width = _WIDTH
    while width > 1 and planes[width - 1] == zero:
        width -= 1
    head = _varints([len(header), *header])
    # a small hash table (memLevel 2): deflate's set-up, not its work, is most of the cost
    # of a chunk of a few hundred bytes, and the output is as small
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 2)
    body = deflate.compress(b"".join(planes[:width])) + deflate.flush()
    return bytes([FORMAT, width]) + head + body


def inflate(blob: bytes) -> tuple[list[int], int, bytes]:
    """A chunk's header, how many byte planes it stores, and those planes (raises
    ChunkError)."""
    if len(blob) < 2 or blob[0] not in (FORMAT, _FULL_FORMAT):
        raise ChunkError("not a history chunk of a known format")
    width, pos = (blob[1], 2) if blob[0] == FORMAT else (_WIDTH, 1)
    if not 1 <= width <= _WIDTH:
        raise ChunkError("damaged history chunk: plane count")
    try:
        values, pos = _read_varints(blob, pos)
        planes = zlib.decompress(blob[pos:], -15)
    except (IndexError, zlib.error) as exc:
        raise ChunkError(f"damaged history chunk: {exc}") from None
    if len(planes) % width:
        raise ChunkError("damaged history chunk: body length")
    return values[1:], width, planes


def values_of(bodies: Sequence[bytes], width: int) -> npt.NDArray[np.int64]:
    """The values of equally long chunk bodies of `width` planes (from `inflate`), one row
    per body: the read path decodes many chunks of one layout at once (numpy: no object
    per value)."""
    count = len(bodies)
    planes = np.frombuffer(b"".join(bodies), np.uint8).reshape(count, width, -1)
    wide = np.zeros((count, planes.shape[2], _WIDTH), np.uint8)
    wide[:, :, :width] = planes.transpose(0, 2, 1)
    zigzag = wide.view("<u8").reshape(count, -1)
    deltas = (zigzag >> np.uint64(1)).view(np.int64) ^ -(zigzag & np.uint64(1)).view(np.int64)
    # int64 sums wrap, and every partial sum is a stored value: exact
    return np.cumsum(deltas, axis=1)


class Chunk:
    """A decoded chunk: its header and its columns, each decoded when first asked for."""

    __slots__ = ("_values", "header", "rows")

    def __init__(self, blob: bytes, rows_at: int) -> None:
        """`rows_at`: the index in the header that holds the column length."""
        header, width, planes = inflate(blob)
        size = len(planes) // width
        raw = bytearray(size * _WIDTH)
        for i in range(width):
            raw[i::_WIDTH] = planes[i * size:(i + 1) * size]
        deltas = array("q")
        deltas.frombytes(_unzigzag(bytes(raw)))
        self._values = list(itertools.accumulate(deltas))
        self.header = header
        self.rows = header[rows_at] if len(header) > rows_at else -1
        if self.rows < 0 or (self.rows and len(self._values) % self.rows):
            raise ChunkError("damaged history chunk: column length")

    @property
    def columns(self) -> int:
        return len(self._values) // self.rows if self.rows else 0

    def column(self, index: int) -> list[int]:
        """The values of column `index`."""
        n = self.rows
        return self._values[index * n:(index + 1) * n]


# Zigzag over a whole column of 8-byte numbers at once, as one big integer (C speed): each
# number's bits move by one within its own 8 bytes, and the sign becomes the lowest bit.
@functools.lru_cache(maxsize=512)
def _masks(n: int) -> tuple[int, int, int]:
    """For n numbers: (the lowest bit of each, every bit but the lowest, every bit but the
    highest)."""
    each = int.from_bytes((b"\x01" + bytes(7)) * n, "little")  # 1 in every number
    return each, each * (2**64 - 2), each * (2**63 - 1)


_ALL64 = 2**64 - 1


def _zigzag(raw: bytes) -> bytes:
    """Signed 8-byte little-endian numbers → (d << 1) ^ (d >> 63) of each."""
    n = len(raw) // _WIDTH
    if not n:
        return raw
    ones, not_lowest, _ = _masks(n)
    x = int.from_bytes(raw, "little")
    signs = (x >> 63) & ones  # the top bit of each number, moved to its lowest bit
    z = ((x << 1) & not_lowest & ((1 << (64 * n)) - 1)) ^ (signs * _ALL64)
    return z.to_bytes(len(raw), "little")


def _unzigzag(raw: bytes) -> bytes:
    """Back from `_zigzag`."""
    n = len(raw) // _WIDTH
    if not n:
        return raw
    ones, _, not_highest = _masks(n)
    z = int.from_bytes(raw, "little")
    d = ((z >> 1) & not_highest) ^ ((z & ones) * _ALL64)
    return d.to_bytes(len(raw), "little")


def _varints(values: Sequence[int]) -> bytes:
    out = bytearray()
    for value in values:
        if value < 0:
            raise ValueError("header values must not be negative")
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def _read_varints(blob: bytes, pos: int) -> tuple[list[int], int]:
    """The varint count at `pos`, then that many varints: (count and values, next pos)."""
    count = blob[pos]
    if count < 0x80 and max(blob[pos + 1:pos + 1 + count], default=0) < 0x80:
        end = pos + 1 + count  # the usual header: every number under 128, a byte each
        if end > len(blob):
            raise IndexError("header beyond the chunk")
        return [count, *blob[pos + 1:end]], end
    out: list[int] = []
    want = None
    while want is None or len(out) < want + 1:
        shift = value = 0
        while True:
            byte = blob[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
            if shift > 63:
                raise ChunkError("damaged history chunk: header")
        out.append(value)
        if want is None:
            want = value
            if want > 100_000:
                raise ChunkError("damaged history chunk: header size")
    return out, pos
