"""The three kinds of history rows and the roll-up arithmetic: pure, no I/O.

- A **raw bucket** holds one series' samples of one 5-minute bucket: their times and, per
  metric, the values (None where a sample did not have the metric).
- A **roll-up chunk** holds one series' roll-up records over a span: per slot (a 5-minute
  bucket of an hour, or an hour of a day) the number of samples and, per metric, how many
  had it (n) and their min, mean and max.

The roll-up of a raw bucket is its 5-minute record; an hour's record is the merge of its
5-minute records. Both are recomputed from the level below whenever that changes, so late
samples and restarts give the same records as samples that came in order.

Numbers are stored as whole multiples of a per-metric scale (`scale_for`): 0.01 for most
metrics (dBm, Mbit/s, %), 0.0001 for the 0–1 link qualities, whole bits and packets per
second and kilobytes. Roll-up records hold their figures at the resolution
`resolution.rounding_for` gives each metric (a mean signal to 0.1 dB, its min and max in
whole dB, rates to three significant digits); raw samples are kept at the scale. Metric ids
are numbers given by the store's metric registry.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import struct
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import numpy.typing as npt

from meshmon.history.codec import (
    MISSING,
    Chunk,
    ChunkError,
    Inflated,
    decode_all,
    inflate,
    layout_values,
    pack,
)
from meshmon.history.resolution import EXACT, Rounding

BUCKET_S = 300
"""raw samples are stored per series and 5-minute bucket; 5-minute roll-ups per bucket"""
HOUR_S = 3600
DAY_S = 86_400
RAW = 1
ROLLUP = 2
"""a roll-up chunk whose min and max are stored below and above the mean (schema 5)"""
ROLLUP_EITHER = 3
"""a roll-up chunk whose header says per metric (id × 2 + 1) that its min and max are
stored as they are, not below and above the mean: whole-dBm extremes around a mean in
tenths cost less as themselves"""
_LIMIT = 2**60
"""a scaled value beyond this is not stored (it would not survive delta coding)"""

Scales = Mapping[int, int]
"""metric id → scale (a stored value is round(value × scale))"""
Roundings = Mapping[int, Rounding]
"""metric id → the resolution of its roll-up figures (`resolution.rounding_for`)"""


def scale_for(name: str) -> int:
    """How many steps per unit a metric is stored with (fixed when it is first seen)."""
    if name in ("lq", "nlq"):
        return 10_000
    if name == "seq" or name.endswith(("_bps", "_pps", "_kb")):
        return 1
    return 100


def _quantize(value: float, scale: int) -> int:
    if not math.isfinite(value):
        return MISSING
    q = round(value * scale)
    return q if -_LIMIT < q < _LIMIT else MISSING


NAN = float("nan")


class _Layout:
    """The metrics of a raw bucket's rows, in order, shared by every bucket with the same
    ones (most series of a kind have the same metrics: one layout object for all)."""

    __slots__ = ("index", "mids", "pack", "width")

    def __init__(self, mids: tuple[int, ...]) -> None:
        self.mids = mids
        self.index = {mid: i for i, mid in enumerate(mids, start=1)}
        """metric id → its place in a row (0 is the time)"""
        self.width = 1 + len(mids)
        self.pack: Callable[..., bytes] = struct.Struct(f"{self.width}d").pack
        """a row (time, then a number per metric) as the bytes of the rows' array: one
        call converts the row (`array.extend` with numbers converts each one through
        argument parsing, ~200 instructions a number)"""

    def with_metrics(self, more: Iterable[int]) -> _Layout:
        """The layout with these metrics too."""
        return _layout(tuple(sorted({*self.mids, *more})))


_LAYOUTS: dict[tuple[int, ...], _Layout] = {}


def _layout(mids: tuple[int, ...]) -> _Layout:
    found = _LAYOUTS.get(mids)
    if found is None:
        found = _LAYOUTS[mids] = _Layout(mids)
    return found


_NO_METRICS = _layout(())


class RawBucket:
    """One series' samples in one 5-minute bucket, in time order.

    Packed: one array of doubles, a row per sample (its time, then each metric of the
    bucket's layout, NaN for an absent reading). The collector holds an open bucket per
    series — 210,000 at 35,000 nodes — and a dict of one array per metric took ~1.5 kB a
    bucket (bench/README.md, "memory"). `times` and `values` give columns (copies).
    """

    __slots__ = ("_layout", "_rows", "start", "unknown_stored")

    def __init__(self, start: int, times: Iterable[float] = (),
                 values: Mapping[int, Sequence[float]] | None = None,
                 unknown_stored: bool = False) -> None:
        self.start = start
        self.unknown_stored = unknown_stored
        """what is stored for the bucket is unknown: writing it merges (never replaces)"""
        columns = values or {}
        layout = self._layout = _layout(tuple(sorted(columns)))
        rows = self._rows = array("d", times)
        if layout.mids:  # interleave the columns: time, then each metric, per row
            packed = array("d", bytes(8 * len(rows) * layout.width))
            packed[0::layout.width] = rows
            for i, mid in enumerate(layout.mids, start=1):
                packed[i::layout.width] = array("d", columns[mid])
            self._rows = packed

    @property
    def times(self) -> array[float]:
        """The sample times, ascending (a copy)."""
        return self._rows[0::self._layout.width]

    @property
    def values(self) -> dict[int, array[float]]:
        """Metric id → its reading in each sample, NaN where absent (copies)."""
        rows, width = self._rows, self._layout.width
        return {mid: rows[i::width] for mid, i in self._layout.index.items()}

    def add(self, ts: float, sample: Mapping[int, float]) -> None:
        """Add one sample; a sample at a time already held replaces it (a duplicate)."""
        layout, rows = self._layout, self._rows
        if not rows and layout is _NO_METRICS:  # a new bucket: its first sample's layout
            layout = self._layout = _layout(tuple(sorted(sample)))
        width = layout.width
        if (not rows or ts > rows[-width]) and tuple(sample) == layout.mids:
            # the usual: a later sample with the bucket's metrics, in its order
            rows.frombytes(layout.pack(ts, *sample.values()))
            return
        if not layout.index.keys() >= sample.keys():
            self._widen(layout.with_metrics(sample))
            layout, rows = self._layout, self._rows
            width = layout.width
        row = layout.pack(ts, *map(sample.get, layout.mids, repeat(NAN)))
        if not rows or ts > rows[-width]:
            rows.frombytes(row)
            return
        times = rows[0::width]
        pos = bisect.bisect_left(times, ts)
        at = pos * width
        if pos < len(times) and times[pos] == ts:
            rows[at:at + width] = array("d", row)
        else:
            rows[at:at] = array("d", row)

    def _widen(self, layout: _Layout) -> None:
        """Re-pack the rows for a layout with more metrics (new ones NaN)."""
        old, rows, n = self._layout, self._rows, len(self)
        packed = array("d", [NAN]) * (n * layout.width)
        packed[0::layout.width] = rows[0::old.width]
        for mid, i in old.index.items():
            packed[layout.index[mid]::layout.width] = rows[i::old.width]
        self._layout, self._rows = layout, packed

    def merge(self, other: RawBucket) -> None:
        """Take in the samples of `other` (same bucket)."""
        rows, width, index = other._rows, other._layout.width, other._layout.index
        for at in range(0, len(rows), width):
            self.add(rows[at], {mid: v for mid, i in index.items()
                                if (v := rows[at + i]) == v})

    def __len__(self) -> int:
        return len(self._rows) // self._layout.width

    def __repr__(self) -> str:
        return (f"RawBucket(start={self.start}, times={self.times!r}, values={self.values!r}"
                f", unknown_stored={self.unknown_stored})")

    def encode(self, scales: Scales) -> bytes:
        """The stored form."""
        start, width = self.start, self._layout.width
        rows = self._rows
        columns = [[round((t - start) * 1000) for t in rows[0::width]]]
        for mid, i in self._layout.index.items():
            scale, column = scales[mid], rows[i::width]
            try:  # the plain way first: every reading a finite number of a sane size
                quantized = [MISSING if v != v else round(v * scale) for v in column]
                if max(quantized) >= _LIMIT or (min(quantized) <= -_LIMIT and any(
                        MISSING < q <= -_LIMIT for q in quantized)):
                    raise OverflowError
            except OverflowError:
                quantized = [MISSING if v != v else _quantize(v, scale) for v in column]
            columns.append(quantized)
        return pack([RAW, len(self), *self._layout.mids], columns)

    @classmethod
    def decode(cls, blob: bytes, start: int, scales: Scales) -> RawBucket:
        """Back from `encode` (raises ChunkError for bytes it did not write)."""
        chunk = Chunk(blob, rows_at=1)
        if chunk.header[0] != RAW or chunk.columns != len(chunk.header) - 1:
            raise ChunkError("not a raw history bucket")
        times = [start + ms / 1000 for ms in chunk.column(0)]
        values = {}
        for i, mid in enumerate(chunk.header[2:], start=1):
            scale = scales.get(mid, 1)
            values[mid] = [NAN if q == MISSING else q / scale for q in chunk.column(i)]
        return cls(start, times, values)

    @classmethod
    def joined(cls, start: int, buckets: Iterable[RawBucket]) -> RawBucket:
        """One bucket starting at `start` with every sample of `buckets` (a packed row of
        several 5-minute buckets; a later bucket's sample at the same time wins)."""
        out = cls(start)
        parts = list(buckets)
        layout = parts[0]._layout if parts else _NO_METRICS
        if all(b._layout is layout and b._rows for b in parts) and all(
                a._rows[-layout.width] < b._rows[0] for a, b in itertools.pairwise(parts)):
            # the usual case, buckets in time order with the same metrics: rows as they are
            out._layout = layout
            for bucket in parts:
                out._rows.extend(bucket._rows)
            return out
        for bucket in parts:
            out.merge(bucket)
        return out

    @staticmethod
    def joined_stored(start: int, rows: Sequence[tuple[int, bytes]]) -> bytes | None:
        """What `joined` of the stored buckets (start, data) in time order encodes to, from
        their stored numbers (decoded with numpy, nothing made a float); None when they do
        not all hold the same metrics (`joined` then)."""
        decoded = decode_all([data for _, data in rows])
        mids = decoded[0][0][2:]
        if any(header[0] != RAW or header[2:] != mids for header, _ in decoded):
            return None
        times = np.concatenate([columns[0] + (at - start) * 1000
                                for (at, _), (_, columns) in zip(rows, decoded, strict=True)])
        values = [np.concatenate([columns[i] for _, columns in decoded]).tolist()
                  for i in range(1, len(mids) + 1)]
        return pack([RAW, len(times), *mids], [times.tolist(), *values])

    def split(self, step: int = BUCKET_S) -> list[RawBucket]:
        """The samples as buckets of `step` seconds, in time order (a packed row back)."""
        rows, width = self._rows, self._layout.width
        parts: dict[int, list[int]] = {}
        for i in range(len(self)):
            parts.setdefault(bucket_of(rows[i * width], step), []).append(i)
        out = []
        for start, picked in parts.items():
            bucket = RawBucket(start)
            bucket._layout = self._layout
            bucket._rows = array("d", [v for i in picked for v in rows[i * width:(i + 1) * width]])
            out.append(bucket)
        return out

    def rollup(self) -> Record:
        """The bucket's record: samples, and per metric n, min, mean, max."""
        stats: dict[int, Stat] = {}
        rows, width = self._rows, self._layout.width
        for mid, i in self._layout.index.items():
            present = [v for v in rows[i::width] if v == v]
            if present:
                stats[mid] = Stat(len(present), min(present), sum(present) / len(present),
                                  max(present))
        return Record(len(self), stats)


BucketsInMemory = Mapping[int, Sequence[RawBucket]]
"""series → its buckets a collector holds in memory, in time order: closed ones waiting to
be stored, then the open one; each is newer than a stored row of the same bucket"""


@dataclass(slots=True)
class Stat:
    """One metric over a bucket: how many samples had it, their min, mean and max."""

    n: int
    lo: float
    mean: float
    hi: float


@dataclass(slots=True)
class Record:
    """One bucket of a roll-up: how many samples, and a Stat per metric."""

    samples: int
    stats: dict[int, Stat]


@dataclass(slots=True)
class RollupChunk:
    """One series' records over a span (an hour of 5-minute slots, a day of hours), kept
    as the stored columns of whole numbers: per metric the samples without it, the mean,
    and min and max as distances below and above the mean."""

    start: int
    step: int
    slots: list[int] = field(default_factory=list)
    """slot of each row (0-based bucket index within the span), ascending"""
    samples: list[int] = field(default_factory=list)
    metrics: dict[int, list[list[int]]] = field(default_factory=dict)
    """metric id → [missing, mean, below, above] columns"""

    def put(self, bucket_start: int, record: Record | None, scales: Scales,
            roundings: Roundings) -> None:
        """Set (or with None, clear) the record of the bucket starting at `bucket_start`,
        its figures at the resolution `roundings` gives (exact for a metric not in it)."""
        slot = (bucket_start - self.start) // self.step
        slots = self.slots
        pos = bisect.bisect_left(slots, slot)
        exists = pos < len(slots) and slots[pos] == slot
        if record is None:
            if exists:
                del slots[pos], self.samples[pos]
                for columns in self.metrics.values():
                    for column in columns:
                        del column[pos]
            return
        if not exists:
            slots.insert(pos, slot)
            self.samples.insert(pos, record.samples)
            for columns in self.metrics.values():
                for column in columns:
                    column.insert(pos, 0)
        else:
            self.samples[pos] = record.samples
        for mid in record.stats:
            if mid not in self.metrics:
                self.metrics[mid] = [list(self.samples), [MISSING] * len(slots),
                                     [0] * len(slots), [0] * len(slots)]
        for mid, (missing, means, below, above) in self.metrics.items():
            row = _quantized_stat(record.samples, record.stats.get(mid), scales[mid],
                                  roundings.get(mid, EXACT))
            missing[pos], means[pos], below[pos], above[pos] = row

    def merged(self, scales: Scales) -> Record | None:
        """The record of the whole span (None when it has no rows)."""
        if not self.slots:
            return None
        stats: dict[int, Stat] = {}
        for mid, (missing, means, below, above) in self.metrics.items():
            rows = [i for i, q in enumerate(means) if q != MISSING]
            if not rows:
                continue
            scale = scales[mid]
            counts = [self.samples[i] - missing[i] for i in rows]
            n = sum(counts)
            if n <= 0:
                continue
            total = sum(means[i] * c for i, c in zip(rows, counts, strict=True))
            stats[mid] = Stat(n, min(means[i] - below[i] for i in rows) / scale,
                              total / n / scale, max(means[i] + above[i] for i in rows) / scale)
        return Record(sum(self.samples), stats)

    def encode(self) -> bytes:
        """The stored form: per metric, min and max below and above the mean or as they
        are, whichever is the coarser (their common divisor the larger)."""
        header = [ROLLUP_EITHER, len(self.slots)]
        columns: list[Sequence[int]] = [self.slots, self.samples]
        as_is = [False, False]  # stored as they are: missing counts, distances from a mean
        for mid in sorted(self.metrics):
            missing, means, below, above = self.metrics[mid]
            lows = list(map(operator.sub, means, below))
            highs = list(map(operator.add, means, above))
            spread = math.gcd(*below, *above)  # 0: no spread, columns of zeros (not stored)
            if not spread:
                coarser = False
            elif MISSING in means:
                present = [i for i, m in enumerate(means) if m != MISSING]
                coarser = math.gcd(*(lows[i] for i in present),
                                   *(highs[i] for i in present)) > spread
            else:
                coarser = math.gcd(*lows, *highs) > spread
            header.append(2 * mid + coarser)
            if coarser:
                columns += (missing, means, lows, highs)
                as_is += (True, False, False, False)
            else:
                columns += (missing, means, below, above)
                as_is += (True, False, True, True)
        return pack(header, columns, as_is)

    @classmethod
    def joined(cls, start: int, step: int, chunks: Iterable[RollupChunk]) -> RollupChunk:
        """One chunk starting at `start` with the rows of `chunks` (same step, each within
        the span from `start`): the stored columns are moved as they are, nothing is
        rounded again; a later chunk's row for the same slot wins."""
        parts = list(chunks)
        if parts and all(c.step == step and c.slots and c.metrics.keys() == parts[0].metrics.keys()
                         for c in parts) and all(
                a.start + a.slots[-1] * step < b.start + b.slots[0] * step
                for a, b in itertools.pairwise(parts)):
            # the usual case, spans in time order with the same metrics: columns as they are
            out = cls(start, step)
            for chunk in parts:
                offset = (chunk.start - start) // step
                out.slots += (slot + offset for slot in chunk.slots)
                out.samples += chunk.samples
            out.metrics = {mid: [[v for c in parts for v in c.metrics[mid][k]] for k in range(4)]
                           for mid in parts[0].metrics}
            return out
        rows: dict[int, tuple[int, dict[int, tuple[int, int, int, int]]]] = {}
        for chunk in parts:
            offset = (chunk.start - start) // step
            for pos, slot in enumerate(chunk.slots):
                rows[slot + offset] = (chunk.samples[pos], {
                    mid: (c[0][pos], c[1][pos], c[2][pos], c[3][pos])
                    for mid, c in chunk.metrics.items()})
        out = cls(start, step)
        mids = sorted({mid for _, stats in rows.values() for mid in stats})
        out.metrics = {mid: [[], [], [], []] for mid in mids}
        for slot in sorted(rows):
            samples, stats = rows[slot]
            out.slots.append(slot)
            out.samples.append(samples)
            for mid, columns in out.metrics.items():
                # a row without the metric: every sample misses it (as `put` leaves it)
                for column, value in zip(columns, stats.get(mid, (samples, MISSING, 0, 0)),
                                         strict=True):
                    column.append(value)
        return out

    @classmethod
    def joined_stored(cls, start: int, step: int, rows: Sequence[tuple[int, bytes]]
                      ) -> RollupChunk | None:
        """`joined` of the stored chunks (start, data) in time order, decoded with numpy;
        None when they do not all hold the same metrics (`joined` of each decoded then)."""
        decoded = decode_all([data for _, data in rows])
        metrics = [_metrics_of(header[0], header[2:]) if header[0] in (ROLLUP, ROLLUP_EITHER)
                   else None for header, _ in decoded]
        mids = [mid for mid, _ in metrics[0] or []]
        if any(m is None or [mid for mid, _ in m] != mids for m in metrics):
            return None
        lengths = [columns.shape[1] for _, columns in decoded]
        every = np.concatenate([columns for _, columns in decoded], axis=1)
        offsets = np.repeat([(at - start) // step for at, _ in rows], lengths)
        out = cls(start, step, (every[0] + offsets).tolist(), every[1].tolist())
        for i, mid in enumerate(mids):
            missing, means, low, high = every[2 + 4 * i:6 + 4 * i]
            # min and max stored as they are (per chunk): back to below and above the mean
            as_is = np.repeat([bool(m and m[i][1]) for m in metrics], lengths)
            if as_is.any():
                absent = means == MISSING
                low = np.where(as_is, np.where(absent, 0, means - low), low)
                high = np.where(as_is, np.where(absent, 0, high - means), high)
            out.metrics[mid] = [missing.tolist(), means.tolist(), low.tolist(), high.tolist()]
        return out

    def split(self, span: int) -> list[RollupChunk]:
        """The rows as chunks of `span` seconds each (a packed row back), in time order;
        the stored columns as they are."""
        parts: dict[int, list[int]] = {}
        for pos, slot in enumerate(self.slots):
            parts.setdefault(bucket_of(self.start + slot * self.step, span), []).append(pos)
        out = []
        for start, picked in parts.items():
            offset = (start - self.start) // self.step
            part = RollupChunk(start, self.step, [self.slots[p] - offset for p in picked],
                               [self.samples[p] for p in picked])
            for mid, columns in self.metrics.items():
                kept = [[column[p] for p in picked] for column in columns]
                if any(m != MISSING for m in kept[1]):
                    part.metrics[mid] = kept
            out.append(part)
        return out

    @classmethod
    def decode(cls, blob: bytes, start: int, step: int) -> RollupChunk:
        """Back from `encode` (raises ChunkError for bytes it did not write)."""
        chunk = Chunk(blob, rows_at=1)
        kind, _, *stored = chunk.header
        if kind not in (ROLLUP, ROLLUP_EITHER) or chunk.columns != 2 + 4 * len(stored):
            raise ChunkError("not a history roll-up chunk")
        metrics = {}
        for i, (mid, as_is) in enumerate(_metrics_of(kind, stored)):
            missing, means, low, high = (chunk.column(2 + 4 * i + k) for k in range(4))
            if as_is:  # rows without the metric: below and above 0, as `put` leaves them
                low = [0 if m == MISSING else m - lo for m, lo in zip(means, low, strict=True)]
                high = [0 if m == MISSING else hi - m for m, hi in zip(means, high, strict=True)]
            metrics[mid] = [missing, means, low, high]
        return cls(start, step, chunk.column(0), chunk.column(1), metrics)


def _metrics_of(kind: int, stored: Sequence[int]) -> list[tuple[int, bool]]:
    """(metric id, min and max stored as they are) of a roll-up chunk's header."""
    if kind == ROLLUP:
        return [(mid, False) for mid in stored]
    return [(code >> 1, bool(code & 1)) for code in stored]


def _quantized_stat(samples: int, stat: Stat | None, scale: int, rounding: Rounding
                    ) -> tuple[int, int, int, int]:
    """(missing, mean, below, above) of one metric in one row."""
    mean = MISSING if stat is None else _quantize(stat.mean, scale)
    if stat is None or mean == MISSING:
        return samples, MISSING, 0, 0
    mean = rounding.mean(mean)
    lo, hi = _quantize(stat.lo, scale), _quantize(stat.hi, scale)
    return (samples - stat.n, mean, 0 if lo == MISSING else max(0, mean - rounding.low(lo)),
            0 if hi == MISSING else max(0, rounding.high(hi) - mean))


def stored_time(ts: float, start: int) -> float:
    """A sample time as its bucket's raw row gives it back (to the millisecond)."""
    return start + round((ts - start) * 1000) / 1000


def bucket_of(ts: float, step: int = BUCKET_S) -> int:
    """The start of the `step`-second bucket that holds `ts`."""
    return int(ts // step) * step


@dataclass(slots=True)
class RecordArrays:
    """One metric's records of one series, in time order (the read path: numpy arrays,
    no object per record)."""

    times: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]
    lo: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]
    hi: npt.NDArray[np.float64]

    def without(self, time: int) -> RecordArrays:
        """These records but the one at `time`."""
        keep = self.times != time
        if keep.all():
            return self
        return RecordArrays(self.times[keep], self.n[keep], self.lo[keep], self.mean[keep],
                            self.hi[keep])


def rollup_arrays(rows: Iterable[tuple[int, bytes]], step: int, scales: Scales,
                  mids: Iterable[int], damaged: Callable[[int, ChunkError], None]
                  ) -> dict[int, RecordArrays]:
    """The records of a series' stored roll-up chunks (start, data) that have each metric
    of `mids`. Chunks of one layout (the same metrics and rows: every full day or hour)
    are decoded together; `damaged(start, error)` is told of a chunk that cannot be read."""
    layouts: dict[tuple[int, ...], list[tuple[int, Inflated]]] = {}
    """(format 4, columns of zeros, kind, rows, metrics…) → start and body of the chunks
    of that layout"""
    for start, blob in rows:
        try:
            inflated = inflate(blob)
            header = inflated.header
            if len(header) < 2 or header[0] not in (ROLLUP, ROLLUP_EITHER):
                raise ChunkError("not a history roll-up chunk")
            columns = 2 + 4 * (len(header) - 2)
            fits = (inflated.columns(header[1]) == columns if inflated.coded else
                    len(inflated.planes) == inflated.width * header[1] * columns)
            if not fits:
                raise ChunkError("damaged history chunk: column length")
        except ChunkError as exc:
            damaged(start, exc)
            continue
        if header[1]:
            layouts.setdefault((inflated.coded, inflated.zeros, *header), []).append(
                (start, inflated))
    wanted = list(mids)
    parts: dict[int, list[RecordArrays]] = {}
    for (_, _, kind, count, *stored), found in layouts.items():
        starts = [start for start, _ in found]
        values = layout_values([body for _, body in found], count, 2 + 4 * len(stored))
        times = np.asarray(starts, np.int64)[:, None] + values[:, 0] * step
        index = {mid: (i, as_is) for i, (mid, as_is) in enumerate(_metrics_of(kind, stored))}
        for mid in wanted:
            at = index.get(mid)
            if at is None:
                continue
            i, as_is = at
            missing, means, low, high = (values[:, 2 + 4 * i + k] for k in range(4))
            keep = means != MISSING  # rows without the metric are left out
            if not keep.any():
                continue
            scale = scales.get(mid, 1)
            kept = means[keep]
            lows, highs = (low[keep], high[keep]) if as_is else (
                kept - low[keep], kept + high[keep])
            parts.setdefault(mid, []).append(RecordArrays(
                times=times[keep], n=(values[:, 1] - missing)[keep],
                lo=lows / scale, mean=kept / scale, hi=highs / scale))
    out: dict[int, RecordArrays] = {}
    for mid, pieces in parts.items():
        if len(pieces) == 1:
            out[mid] = pieces[0]
            continue
        joined = [np.concatenate(cols) for cols in zip(
            *((p.times, p.n, p.lo, p.mean, p.hi) for p in pieces), strict=True)]
        order = np.argsort(joined[0], kind="stable")
        out[mid] = RecordArrays(*(col[order] for col in joined))
    return out
