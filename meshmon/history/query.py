"""What a history request asks for, and the answer from the stored levels: pure functions
of the tables and the open buckets (they run in the store's worker).

A request names a time window (`from`, `to`, or a `range` up to now), a `step` and the
metrics. The step decides where the numbers come from:

- `step` 0: the samples as reported (raw, kept `raw` retention, 48 h by default);
- a step under 5 minutes: raw samples, grouped into steps;
- 5 minutes up to an hour: the 5-minute records (kept 30 days);
- an hour or more: the hourly records (kept a year).

Without a step, the window picks one (`auto_step`): raw up to 3 h, 5 minutes up to 3 days,
hours up to 40 days, days beyond — steps the stored records give without regrouping. A
window reaching further back than its level is kept is a `BadRequest` that says which step
would do. Stepped answers share one time axis (`t`, every step of the window, null where a
series has no data); raw answers give each series its own `t`.

`availability` is a node metric made from `up_s` (seconds up per report): the share of each
step the node was up, 0 for a step without a report after its first one. A raw answer
(every sample) gives it in 5-minute steps, with its own `t`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from meshmon.history.chunks import (
    BUCKET_S,
    DAY_S,
    HOUR_S,
    BucketsInMemory,
    RawBucket,
    RecordArrays,
    bucket_of,
)
from meshmon.history.samples import KNOWN_METRICS, SeriesKey
from meshmon.history.tables import COARSE, DAILY, FINE, HistoryTables, Level, Retention
from meshmon.model.addresses import safe_text

RANGES: dict[str, int] = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400,
                          "1y": 365 * 86_400}
"""the ranges the pages offer (`range=`)"""
STEPS = (0, 10, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800)
"""the steps a request may ask for (seconds; 0 = the samples as reported)"""
STATS = ("mean", "min", "max")
MAX_POINTS = 20_000
"""steps per series in one answer"""
AVAILABILITY = "availability"
UP_S = "up_s"


class BadRequest(ValueError):
    """A request the history cannot answer; the message says what would do."""


@dataclass(frozen=True, slots=True)
class Window:
    """The steps of an answer: [start, end) in `step`s read from `level` (None: raw)."""

    start: float
    end: float
    step: int
    level: Level | None

    @property
    def grid(self) -> list[int]:
        """Every step's start (stepped answers)."""
        first = bucket_of(self.start, self.step)
        return list(range(first, math.ceil(self.end / self.step) * self.step, self.step))

    @property
    def source(self) -> str:
        # days are the hourly records merged per day (history_1d): still the 1 h roll-ups
        return "raw" if self.level is None else {FINE: "5min", COARSE: "1h", DAILY: "1h"}[
            self.level]


def parse_time(text: str, name: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{name} must be unix seconds or an ISO 8601 time such as "
                             "2026-12-06T07:00:00Z") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        value = parsed.timestamp()
    if not math.isfinite(value) or not 0 <= value < 253_402_300_800:
        raise BadRequest(f"{name} must be a time between 1970 and 9999")
    return value


def auto_step(span: float) -> int:
    """The step a window of `span` seconds is shown at without one given."""
    if span <= 3 * 3600:
        return 0
    if span <= 3 * 86_400:
        return BUCKET_S
    if span <= 40 * 86_400:
        return HOUR_S
    return DAY_S


def window(query: Mapping[str, str], now: float, retention: Retention) -> Window:
    """The window a request's `from`, `to`, `range` and `step` ask for (raises BadRequest)."""
    end = parse_time(query["to"], "to") if query.get("to") else now
    if query.get("range"):
        if "from" in query:
            raise BadRequest("give range or from, not both")
        span = RANGES.get(query["range"])
        if span is None:
            raise BadRequest(f"range must be one of {', '.join(RANGES)}")
        start = end - span
    elif query.get("from"):
        start = parse_time(query["from"], "from")
    else:
        start = end - 86_400
    if start >= end:
        raise BadRequest("from must be before to")
    raw_step = query.get("step", "")
    given = raw_step not in ("", "auto")
    step = _step(raw_step) if given else auto_step(end - start)
    return _level(start, end, step, now, retention, given=given)


def _step(text: str) -> int:
    if text == "raw":
        return 0
    try:
        step = int(text)
    except ValueError:
        step = -1
    if step not in STEPS:
        raise BadRequest(f"step must be one of {', '.join(map(str, STEPS))} (seconds; 0 or "
                         "raw for the samples as reported) or auto")
    return step


def _level(start: float, end: float, step: int, now: float, retention: Retention,
           given: bool) -> Window:
    """Where a step's numbers come from: the finest level kept since `start` that gives
    the step. A step finer than that is refused when given, made coarser when chosen."""
    for kept, what, coarser in ((retention.raw, "samples", BUCKET_S),
                                (retention.fine, "5-minute records", HOUR_S)):
        if step >= coarser or start >= now - kept:
            continue
        if given:
            raise BadRequest(f"{what} are kept {_duration(kept)}: for data from before then "
                             f"ask for step={coarser} or more")
        step = coarser
    level: Level | None = (None if step < BUCKET_S else FINE if step < HOUR_S else
                           COARSE if step < DAY_S else DAILY)
    points = (end - start) / step if step else 0
    if points > MAX_POINTS:
        raise BadRequest(f"{int(points)} steps is too many (at most {MAX_POINTS}): ask for a "
                         "shorter window or a longer step")
    return Window(start, end, step, level)


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:g} days"
    return f"{seconds / 3600:g} hours"


def metric_names(text: str | None, default: Sequence[str], known: Iterable[str]) -> list[str]:
    """The metrics a request names (`metrics=a,b`; `all`: every known one)."""
    if not text:
        return list(default)
    known_set = set(known) | KNOWN_METRICS | {AVAILABILITY}
    if text == "all":
        return sorted(known_set)
    names = [n for n in dict.fromkeys(p.strip() for p in text.split(",")) if n]
    unknown = [n for n in names if n not in known_set]
    if unknown:
        raise BadRequest(f"unknown metric {unknown[0][:64]!r}; known: "
                         f"{', '.join(sorted(known_set))}")
    return names


def stat_names(text: str | None) -> tuple[str, ...]:
    """`stats=mean,min,max` (default all three)."""
    if not text:
        return STATS
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names or any(n not in STATS for n in names):
        raise BadRequest(f"stats must be some of {', '.join(STATS)}")
    return names


# ---------------------------------------------------------------------- reading


class Grid:
    """Accumulators over a window's steps: count, min, total (Σ mean × n), max, as numpy
    arrays: records are merged into their steps a series at a time, not one by one."""

    __slots__ = ("hi", "lo", "n", "total")

    def __init__(self, size: int) -> None:
        self.n = np.zeros(size, np.int64)
        self.lo = np.full(size, np.nan)
        self.total = np.zeros(size)
        self.hi = np.full(size, np.nan)

    def add_records(self, rec: RecordArrays, first: int, step: int) -> None:
        """Merge records (in time order) into the steps that hold them."""
        idx = ((rec.times - first) // step).astype(np.int64)
        keep = (idx >= 0) & (idx < len(self.n)) & (rec.n > 0)
        n, lo, mean, hi = rec.n, rec.lo, rec.mean, rec.hi
        if not keep.all():
            idx, n, lo, mean, hi = idx[keep], n[keep], lo[keep], mean[keep], hi[keep]
        if not len(idx):
            return
        totals = mean * n
        if len(idx) > 1 and not (idx[1:] > idx[:-1]).all():  # several records per step
            starts = np.flatnonzero(np.concatenate(([True], idx[1:] != idx[:-1])))
            idx = idx[starts]
            n, totals = np.add.reduceat(n, starts), np.add.reduceat(totals, starts)
            lo, hi = np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts)
        self.n[idx] += n
        self.total[idx] += totals
        self.lo[idx] = np.fmin(self.lo[idx], lo)
        self.hi[idx] = np.fmax(self.hi[idx], hi)

    def add(self, i: int, n: int, lo: float, total: float, hi: float) -> None:
        """Merge one record into step `i`."""
        if not 0 <= i < len(self.n) or n <= 0:
            return
        self.n[i] += n
        self.total[i] += total
        self.lo[i] = np.fmin(self.lo[i], lo)
        self.hi[i] = np.fmax(self.hi[i], hi)

    def _listed(self, values: npt.NDArray[np.float64]) -> list[float | None]:
        out: list[float | None] = values.tolist()
        for i in np.flatnonzero(self.n == 0).tolist():  # steps without data
            out[i] = None
        return out

    def means(self, digits: int) -> list[float | None]:
        """Each step's mean to `digits` decimals (None: no data)."""
        return self._listed(np.round(self.total / np.maximum(self.n, 1), digits))

    def lows(self) -> list[float | None]:
        """Each step's minimum (None: no data)."""
        return self._listed(self.lo)

    def highs(self) -> list[float | None]:
        """Each step's maximum (None: no data)."""
        return self._listed(self.hi)


def _digits(scale: int) -> int:
    return max(0, len(str(scale)) - 1)


def read(tables: HistoryTables, in_memory: BucketsInMemory,
         series: Sequence[tuple[int, SeriesKey]], metrics: Sequence[str], win: Window,
         stats: Sequence[str], now: float) -> dict[str, Any]:
    """The answer: `{step, source, from, to, t?, series: [...]}` (see the module doc)."""
    names = [m for m in metrics if m != AVAILABILITY]
    if AVAILABILITY in metrics:
        names.append(UP_S)
    mids = {tables.metrics[m]: m for m in dict.fromkeys(names) if m in tables.metrics}
    sids = [sid for sid, _ in series]
    out: dict[str, Any] = {"from": win.start, "to": win.end, "step": win.step,
                           "source": win.source}
    if win.step == 0:
        found = _raw_points(tables, in_memory, sids, mids, win)
        out["series"] = [
            {**_key_json(key), "metric": mids[mid], "t": times, "mean": values}
            for sid, key in series for mid in mids if mids[mid] in metrics
            for times, values in [found.get((sid, mid), ([], []))] if times
        ]
        if AVAILABILITY in metrics:
            out["series"] += _raw_availability(tables, in_memory, series, mids, win, now)
        return out
    grid = win.grid
    grids = (_grids_from_raw(tables, in_memory, sids, mids, win, grid)
             if win.level is None else
             _grids_from_rollups(tables, in_memory, sids, mids, win, grid))
    out["t"] = grid
    entries: list[dict[str, Any]] = []
    for sid, key in series:
        for mid, name in mids.items():
            g = grids.get((sid, mid))
            if g is None:
                continue
            if name == UP_S:
                if AVAILABILITY in metrics and key.kind == "node":
                    entries.append(_availability_entry(tables, sid, key, g, grid, win.step,
                                                       now))
                if UP_S not in metrics:
                    continue
            digits = _digits(tables.scales[mid])
            entry: dict[str, Any] = {**_key_json(key), "metric": name}
            if "mean" in stats:
                entry["mean"] = g.means(digits)
            if "min" in stats:
                entry["min"] = g.lows()
            if "max" in stats:
                entry["max"] = g.highs()
            entries.append(entry)
    out["series"] = entries
    return out


def _raw_availability(tables: HistoryTables, in_memory: BucketsInMemory,
                      series: Sequence[tuple[int, SeriesKey]], mids: Mapping[int, str],
                      win: Window, now: float) -> list[dict[str, Any]]:
    """Each node's availability over a raw window, in 5-minute steps (a step finer than a
    node's report interval would show the gaps between its reports as down time)."""
    up = next((mid for mid, name in mids.items() if name == UP_S), None)
    nodes = [(sid, key) for sid, key in series if key.kind == "node"]
    if up is None or not nodes:
        return []
    steps = Window(win.start, win.end, BUCKET_S, None)
    grid = steps.grid
    grids = _grids_from_raw(tables, in_memory, [sid for sid, _ in nodes], {up: UP_S},
                            steps, grid)
    return [{**_availability_entry(tables, sid, key, g, grid, BUCKET_S, now), "t": grid}
            for sid, key in nodes if (g := grids.get((sid, up))) is not None]


def _availability_entry(tables: HistoryTables, sid: int, key: SeriesKey, g: Grid,
                        grid: Sequence[int], step: int, now: float) -> dict[str, Any]:
    """A node's `availability` series from its `up_s` over the grid's steps."""
    before = tables.first_start(sid)
    return {**_key_json(key), "metric": AVAILABILITY,
            "mean": availability(g, grid, step, now, before is not None and before < grid[0])}


def availability(g: Grid, grid: Sequence[int], step: int, now: float,
                 known_before: bool = False) -> list[float | None]:
    """The share of each step a node was up (from `up_s`): None before its first report
    (`known_before`: it reported before the window), 0 for a step without a report after
    that, at most 1; the step that holds `now` counts up to now."""
    counts, totals = g.n.tolist(), g.total.tolist()
    first = 0 if known_before else next((i for i, n in enumerate(counts) if n), None)
    out: list[float | None] = []
    for i, start in enumerate(grid):
        if first is None or i < first or start >= now:
            out.append(None)
            continue
        length = min(step, now - start)
        share = totals[i] / length if counts[i] and length > 0 else 0.0
        out.append(round(min(1.0, share), 4))
    return out


def _key_json(key: SeriesKey) -> dict[str, Any]:
    """What names a series in public: interface names that show an address are null."""
    out: dict[str, Any] = {"kind": key.kind, "node": key.node}
    if key.kind == "link":
        out["peer"] = key.peer
        out["link_kind"] = key.link_kind
    if key.kind in ("link", "iface", "radio"):
        out["iface"] = safe_text(key.iface)
    return out


_KIND_ORDER = {"node": 0, "iface": 1, "radio": 2, "link": 3}


def _ordered(found: Iterable[tuple[int, SeriesKey]]) -> list[tuple[int, SeriesKey]]:
    return sorted(found, key=lambda item: (_KIND_ORDER.get(item[1].kind, 9), item[1]))


def node_series(tables: HistoryTables, node: str) -> list[tuple[int, SeriesKey]]:
    """The series on a node's page: its own, its interfaces' and radios', and its links
    both ways (its view of each neighbour, and each neighbour's view of it)."""
    return _ordered((sid, key) for sid, key in tables.keys.items()
                    if key.node == node or (key.kind == "link" and key.peer == node))


def link_series(tables: HistoryTables, a: str, b: str) -> list[tuple[int, SeriesKey]]:
    """The series of the links between two nodes, both directions, every interface."""
    ends = {(a, b), (b, a)}
    return _ordered((sid, key) for sid, key in tables.keys.items()
                    if key.kind == "link" and (key.node, key.peer) in ends)


def _held(tables: HistoryTables, in_memory: BucketsInMemory, sid: int
          ) -> Sequence[RawBucket]:
    """A series' buckets in memory, each with every sample of its bucket. A bucket the
    collector continued after a restart within it (`unknown_stored`: the recorder merges
    what the last run stored of it only when it stores the bucket) is read merged with
    that row here (a copy)."""
    live = in_memory.get(sid, ())
    if not any(b.unknown_stored for b in live):
        return live
    return [tables.with_stored(sid, b) if b.unknown_stored else b for b in live]


def _raw_points(tables: HistoryTables, in_memory: BucketsInMemory,
                sids: Sequence[int], mids: Mapping[int, str], win: Window
                ) -> dict[tuple[int, int], tuple[list[float], list[float]]]:
    stored = tables.raw(sids, win.start, win.end)
    found: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
    for sid in sids:
        live = _held(tables, in_memory, sid)
        # what is in memory is newer than a stored row of the same bucket
        held = {b.start for b in live}
        buckets = [b for b in stored.get(sid, []) if b.start not in held]
        buckets += (b for b in live if win.start - BUCKET_S < b.start < win.end)
        for bucket in buckets:
            times = bucket.times
            for mid in mids:
                column = bucket.values.get(mid)
                if column is None:
                    continue
                ts_out, vs_out = found.setdefault((sid, mid), ([], []))
                for t, v in zip(times, column, strict=True):
                    if v == v and win.start <= t < win.end:
                        ts_out.append(round(t, 3))
                        vs_out.append(v)
    for ts_out, vs_out in found.values():  # a late bucket may come after a newer one
        if any(a > b for a, b in itertools.pairwise(ts_out)):
            order = sorted(range(len(ts_out)), key=ts_out.__getitem__)
            ts_out[:] = [ts_out[i] for i in order]
            vs_out[:] = [vs_out[i] for i in order]
    return found


def _grids_from_raw(tables: HistoryTables, in_memory: BucketsInMemory,
                    sids: Sequence[int], mids: Mapping[int, str], win: Window,
                    grid: Sequence[int]) -> dict[tuple[int, int], Grid]:
    points = _raw_points(tables, in_memory, sids, mids, win)
    grids: dict[tuple[int, int], Grid] = {}
    for slot, (times, values) in points.items():
        g = grids[slot] = Grid(len(grid))
        column = np.asarray(values, np.float64)
        g.add_records(RecordArrays(np.asarray(times), np.ones(len(times), np.int64), column,
                                   column, column), grid[0], win.step)
    return grids


def _grids_from_rollups(tables: HistoryTables, in_memory: BucketsInMemory,
                        sids: Sequence[int], mids: Mapping[int, str], win: Window,
                        grid: Sequence[int]) -> dict[tuple[int, int], Grid]:
    level = win.level
    assert level is not None
    first, step = grid[0], win.step
    stored = tables.rollups(level, sids, mids, first, grid[-1] + step)
    grids: dict[tuple[int, int], Grid] = {}
    for sid in sids:
        per_metric = stored.get(sid, {})
        # buckets in memory have no record stored yet (closed ones wait to be stored),
        # or one they hold every sample of: a bucket the collector continued after a
        # restart within it (its record of the samples before counts once, from memory)
        live = [(b.start, b.rollup()) for b in _held(tables, in_memory, sid)
                if first <= b.start < grid[-1] + step]
        continued = [start for start, _ in live]
        # the newest hour (day) of the series is merged into history_1h (history_1d) when
        # the series moves on: until then it comes from the level below
        newest = [(start, rec) for start, rec in (
            tables.newest_records(level, sid, continued) if level in (COARSE, DAILY) else [])
            if first <= start < grid[-1] + step]
        not_stored = (*newest, *live)
        # history_1h or _1d may hold an older record of the newest hour or day
        superseded = [start for start, _ in newest] if level is not FINE else continued
        for mid in mids:
            records = per_metric.get(mid)
            if records is None and not any(mid in rec.stats for _, rec in not_stored):
                continue
            g = grids[(sid, mid)] = Grid(len(grid))
            if records is not None:
                for start in superseded:
                    records = records.without(start)
                g.add_records(records, first, step)
            for start, rec in not_stored:
                got = rec.stats.get(mid)
                if got is not None:
                    g.add(int((start - first) // step), got.n, got.lo, got.mean * got.n, got.hi)
    return grids


def samples(tables: HistoryTables, in_memory: BucketsInMemory, key: SeriesKey,
            start: float = 0.0, end: float = math.inf) -> list[dict[str, float]]:
    """Every stored sample of one series with start ≤ ts < end, oldest first, as
    `{"ts": …, metric: value, …}` (the metrics it had)."""
    sid = tables.series.get(key)
    if sid is None:
        return []
    live = _held(tables, in_memory, sid)
    held = {b.start for b in live}  # what is in memory is newer than a stored row
    buckets = [b for b in tables.raw([sid], start, end).get(sid, []) if b.start not in held]
    rows: dict[float, dict[str, float]] = {}
    for bucket in (*buckets, *live):
        for i, ts in enumerate(bucket.times):
            if start <= ts < end:
                row = rows.setdefault(ts, {"ts": ts})
                for mid, column in bucket.values.items():
                    value = column[i]
                    if value == value:
                        row[tables.names.get(mid, str(mid))] = value
    return [rows[ts] for ts in sorted(rows)]
