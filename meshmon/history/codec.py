"""Chunks of history as bytes: columns of whole numbers, divided, delta-coded, byte-shuffled,
deflated.

A chunk is a header of small integers and a few columns of equal length. Each column is
divided by the greatest common divisor of its values (whole dBm stored at a scale of 100
are stored as whole numbers; a mean to 0.1 dB as tenths), and a column of zeros is not
stored at all (a bit mask says which). A column is then kept as it is (numbers scattered
around a level, such as a distance below a mean) or, by default, as the differences
between neighbours (a value that did not change costs a zero); those form one chain
across columns. All are zigzag-coded (0, -1, 1, -2 … as 0, 1, 2, 3 …: a small step down
has high bytes of zero like a small step up), the 8-byte numbers are split into byte planes
(all high bytes together, nearly all zero), and the whole is deflated. Unchanged and
slowly changing series shrink to a fraction of a byte per value; noisy ones to about their
byte-wise entropy.

Layout (format 4): one format byte, the number of byte planes stored (the planes above are
all zero), the header as varints (its length first), the mask of columns of zeros (its
length in bytes, then little-endian bits), then the deflated body (raw deflate, no zlib
header): first a code per column (divisor × 2, + 1 when kept as it is), then the stored
columns. Format 3 (schema 5) had no codes and no mask (every column delta-coded in one
chain, undivided), format 2 (up to schema 4) also stored all eight planes and had no plane
count; both are still read.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import zlib
from array import array
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FORMAT = 4
_PLANES_FORMAT = 3
"""no divisors (written by schema version 5)"""
_FULL_FORMAT = 2
"""every plane stored, no plane count (written up to schema version 4)"""
FORMATS = (FORMAT, _PLANES_FORMAT, _FULL_FORMAT)
MISSING = -(2**62)
"""the stored value of an absent reading (|MISSING - v| still fits in 64 bits)"""
_WIDTH = 8


class ChunkError(ValueError):
    """Bytes that are not a chunk this code wrote."""


def pack(header: Sequence[int], columns: Sequence[Sequence[int]],
         as_is: Sequence[bool] = ()) -> bytes:
    """Header (non-negative ints) and equally long columns of ints → bytes. Columns
    flagged in `as_is` are stored as they are, the others as differences (`_coded`)."""
    if len(set(map(len, columns))) > 1:
        raise ValueError("columns differ in length")
    codes, stored, zeros = _coded(columns, as_is)
    raw = _zigzag(array("q", codes + stored).tobytes())
    planes = [raw[i::_WIDTH] for i in range(_WIDTH)]
    zero = bytes(len(planes[0]))
    width = _WIDTH
    while width > 1 and planes[width - 1] == zero:
        width -= 1
    mask = zeros.to_bytes((zeros.bit_length() + 7) // 8, "little")
    head = _varints([len(header), *header]) + bytes([len(mask)]) + mask
    # a small hash table (memLevel 2): deflate's set-up, not its work, is most of the cost
    # of a chunk of a few hundred bytes, and the output is as small
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 2)
    body = deflate.compress(b"".join(planes[:width])) + deflate.flush()
    return bytes([FORMAT, width]) + head + body


def _coded(columns: Sequence[Sequence[int]], as_is: Sequence[bool]
           ) -> tuple[list[int], list[int], int]:
    """Per column a code (its greatest common divisor × 2, + 1 when it is stored as it
    is), the numbers to store, and a bit mask of the columns of zeros, which are not
    stored (nothing missing, no spread: most `missing` columns).

    Each column is divided by its divisor (MISSING stays as it is: |v / d| < 2**60 never
    meets it), then kept as it is (numbers that scatter around a level: a distance below
    a mean) or as differences (numbers that wander: a mean). The columns stored as
    differences form one chain: the first value of one is its difference from the last of
    the one before."""
    codes: list[int] = []
    out: list[int] = []
    zeros = 0
    last = 0
    for i, column in enumerate(columns):
        if not any(column):
            codes.append(3)  # as it is, divisor 1: no part of the chain
            zeros |= 1 << i
            continue
        if MISSING in column:
            divisor = math.gcd(*(v for v in column if v != MISSING)) or 1
            if divisor != 1:
                column = [v if v == MISSING else v // divisor for v in column]
        else:
            divisor = math.gcd(*column)
            if divisor != 1:
                column = [v // divisor for v in column]
        flag = i < len(as_is) and as_is[i]
        codes.append(2 * divisor + flag)
        if flag:
            out += column
        else:
            out += map(operator.sub, column, itertools.chain((last,), column))
            last = column[-1]
    return codes, out, zeros


class Inflated(NamedTuple):
    """A chunk's parts before its columns are decoded."""

    header: list[int]
    width: int
    """how many byte planes are stored"""
    planes: bytes
    coded: bool
    """format 4: the values start with a code per column (`_coded`)"""
    zeros: int
    """format 4: bit mask of the columns of zeros, not stored"""

    def columns(self, rows: int) -> int:
        """How many columns a chunk of `rows` rows holds (format 4: codes for all, values
        for those not all zero; -1: the body does not fit)."""
        values = len(self.planes) // self.width
        if rows < 0:
            return -1
        if not self.coded:
            if not rows:
                return 0
            return -1 if values % rows else values // rows
        zeros = bin(self.zeros).count("1")
        total, rest = divmod(values + zeros * rows, rows + 1)
        return -1 if rest or total < zeros or self.zeros >> total else total


def inflate(blob: bytes) -> Inflated:
    """A chunk's header, planes and column codes (raises ChunkError)."""
    if len(blob) < 2 or blob[0] not in FORMATS:
        raise ChunkError("not a history chunk of a known format")
    width, pos = (_WIDTH, 1) if blob[0] == _FULL_FORMAT else (blob[1], 2)
    if not 1 <= width <= _WIDTH:
        raise ChunkError("damaged history chunk: plane count")
    coded = blob[0] == FORMAT
    zeros = 0
    try:
        values, pos = _read_varints(blob, pos)
        if coded:
            size = blob[pos]
            zeros = int.from_bytes(blob[pos + 1:pos + 1 + size], "little")
            pos += 1 + size
        planes = zlib.decompress(blob[pos:], -15)
    except (IndexError, zlib.error) as exc:
        raise ChunkError(f"damaged history chunk: {exc}") from None
    if len(planes) % width:
        raise ChunkError("damaged history chunk: body length")
    return Inflated(values[1:], width, planes, coded, zeros)


def values_of(bodies: Sequence[bytes], width: int, rows: int, coded: bool = False,
              zeros: int = 0, columns: int = 0) -> npt.NDArray[np.int64]:
    """The columns of chunk bodies of one layout (from `inflate`: `width` planes, `rows`
    rows, and in format 4 (`coded`) `columns` columns of which those in `zeros` are not
    stored), as an array (body, column, row): the read path decodes many chunks of one
    layout at once (numpy: no object per value)."""
    count = len(bodies)
    planes = np.frombuffer(b"".join(bodies), np.uint8).reshape(count, width, -1)
    wide = np.zeros((count, planes.shape[2], _WIDTH), np.uint8)
    wide[:, :, :width] = planes.transpose(0, 2, 1)
    zigzag = wide.view("<u8").reshape(count, -1)
    deltas = (zigzag >> np.uint64(1)).view(np.int64) ^ -(zigzag & np.uint64(1)).view(np.int64)
    # int64 sums wrap, and every partial sum is a stored value: exact
    if not coded:
        return np.cumsum(deltas, axis=1).reshape(count, -1, rows)
    kept = _kept(columns, zeros)
    codes = deltas[:, kept]
    data = deltas[:, columns:].reshape(count, len(kept), rows)
    chained = (codes & 1) == 0
    if chained.any():
        summed = np.cumsum((data * chained[:, :, None]).reshape(count, -1), axis=1)
        data = np.where(chained[:, :, None], summed.reshape(data.shape), data)
    divisors = codes >> 1
    if (divisors != 1).any():
        missing = data == MISSING
        data *= divisors[:, :, None]
        if missing.any():
            data[missing] = MISSING
    if not zeros:
        return data
    out = np.zeros((count, columns, rows), np.int64)
    out[:, kept] = data
    return out


def decode_all(blobs: Sequence[bytes], rows_at: int = 1
               ) -> list[tuple[list[int], npt.NDArray[np.int64]]]:
    """Each chunk's header and its columns (an array column × row), the chunks of one
    layout decoded together (`values_of`); `rows_at`: the index in the header that holds
    the column length. Raises ChunkError when one of them cannot be read."""
    groups: dict[tuple[int, ...], list[tuple[int, Inflated]]] = {}
    for i, blob in enumerate(blobs):
        inflated = inflate(blob)
        header = inflated.header
        rows = header[rows_at] if len(header) > rows_at else -1
        columns = inflated.columns(rows)
        if rows <= 0 or columns < 0:
            raise ChunkError("damaged history chunk: column length")
        key = (int(inflated.coded), inflated.zeros, columns, *header)
        groups.setdefault(key, []).append((i, inflated))
    out: list[tuple[list[int], npt.NDArray[np.int64]]] = [([], np.empty(0, np.int64))] * len(blobs)
    for (_, _, columns, *header), found in groups.items():
        values = layout_values([f for _, f in found], header[rows_at], columns)
        for (i, _), columns_of_one in zip(found, values, strict=True):
            out[i] = (header, columns_of_one)
    return out


def layout_values(chunks: Sequence[Inflated], rows: int, columns: int
                  ) -> npt.NDArray[np.int64]:
    """`values_of` the chunks of one layout (the same format, columns of zeros and rows)
    whatever their plane counts: planes above a chunk's own are zero, so chunks of fewer
    planes get them added."""
    width = max(c.width for c in chunks)
    bodies = [c.planes if c.width == width else c.planes + bytes(len(c.planes) // c.width
                                                                 * (width - c.width))
              for c in chunks]
    return values_of(bodies, width, rows, chunks[0].coded, chunks[0].zeros, columns)


@functools.lru_cache(maxsize=256)
def _kept(columns: int, zeros: int) -> list[int]:
    """The columns stored (not in the mask of columns of zeros)."""
    return [i for i in range(columns) if not zeros >> i & 1]


class Chunk:
    """A decoded chunk: its header and its columns, each decoded when first asked for."""

    __slots__ = ("_values", "header", "rows")

    def __init__(self, blob: bytes, rows_at: int) -> None:
        """`rows_at`: the index in the header that holds the column length."""
        inflated = inflate(blob)
        self.header = header = inflated.header
        self.rows = rows = header[rows_at] if len(header) > rows_at else -1
        columns = inflated.columns(rows)
        if columns < 0:
            raise ChunkError("damaged history chunk: column length")
        if not rows:
            self._values = []
            return
        planes, width = inflated.planes, inflated.width
        size = len(planes) // width
        raw = bytearray(size * _WIDTH)
        for i in range(width):
            raw[i::_WIDTH] = planes[i * size:(i + 1) * size]
        deltas = array("q")
        deltas.frombytes(_unzigzag(bytes(raw)))
        self._values = (_columns(deltas, rows, columns, inflated.zeros) if inflated.coded
                        else list(itertools.accumulate(deltas)))

    @property
    def columns(self) -> int:
        return len(self._values) // self.rows if self.rows else 0

    def values(self) -> list[int]:
        """Every column's values, one column after the other."""
        return self._values

    def column(self, index: int) -> list[int]:
        """The values of column `index`."""
        n = self.rows
        return self._values[index * n:(index + 1) * n]


def _columns(deltas: array[int], rows: int, columns: int, zeros: int) -> list[int]:
    """The values of a format 4 chunk's columns, one after the other (`_coded`)."""
    out: list[int] = []
    last = 0
    pos = columns
    for i, code in enumerate(deltas[:columns]):
        if zeros >> i & 1:
            out += [0] * rows
            continue
        stored = deltas[pos:pos + rows]
        pos += rows
        if code & 1:
            column = list(stored)
        else:
            column = list(itertools.accumulate(stored, initial=last))[1:]
            last = column[-1]
        divisor = code >> 1
        if divisor != 1:
            column = [v if v == MISSING else v * divisor for v in column]
        out += column
    return out


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
