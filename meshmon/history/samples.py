"""What a report adds to the history: one sample per series, counters turned into rates.

Pure: no clock, no I/O. A series is one thing measured over time:

- `node` NODE: load, memory, root fs, clients, its number of links, `up_s` (the seconds
  since its previous report that it was up, for availability) and the report's `seq` (a
  gap after a restart is a report that never got stored);
- `iface` NODE IFACE: traffic rates from the interface counters;
- `radio` NODE IFACE: every number the radio reports (noise, busy, clients, …);
- `link` SRC DST IFACE KIND: every number the link reports, from SRC's side. Only links
  whose peer is resolved to a node are kept: a `mac:` peer must never reach a public page.

Every numeric field of the wire models is kept, found by type, so a metric added to the
contract is kept without a change here (and without a migration: metric names are data).
The fields are found once per part type (`plan_for`) and read at once; the store's worker
gets samples keyed by its metric ids directly (`Extractor(tables.metric_id)`).
Counters (bytes, packets, errors, retries) become rates per second; a counter that goes
backwards was reset (a reboot, a re-association) unless it looks like a 32-bit wrap, and
gives no rate rather than a negative one.

This runs for every report in the SQLite store's worker (the history recorder), so
the per-part paths count instructions: `zip` without `strict=` there (the keyword alone is
~1,500 instructions a call, its argument parsing), keys made without the NamedTuple's
Python-level `__new__` (`_series_key`).
"""

from __future__ import annotations

import math
import operator
import types
import typing
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from sys import intern
from typing import Any, Generic, NamedTuple, TypeVar, overload

import msgspec
from pydantic import BaseModel

from meshmon.model.fastwire import AnyReport
from meshmon.model.wire import Iface, Link, Radio, Sys
from meshmon.model.wire_structs import Link as StructLink

SKIPPED = frozenset({"v", "ts", "seq", "interval_s", "handshake_ts", "inactive_ms"})
"""numbers that are not measurements: protocol fields, times, and `inactive_ms` (the age of
the last frame from the station: noise, not link quality)"""

COUNTERS: dict[str, tuple[str, float]] = {
    "rx_bytes": ("rx_bps", 8.0), "tx_bytes": ("tx_bps", 8.0),
    "rx_packets": ("rx_pps", 1.0), "tx_packets": ("tx_pps", 1.0),
    "rx_errors": ("rx_errors_per_s", 1.0), "tx_errors": ("tx_errors_per_s", 1.0),
    "tx_retries": ("tx_retries_per_s", 1.0), "tx_failed": ("tx_failed_per_s", 1.0),
}  # fmt: skip
"""counter field → (the rate kept instead, factor: bytes become bits per second)"""

MAX_RATE = {"rx_bps": 4e11, "tx_bps": 4e11}
"""rates above this are not believed (400 Gbit/s); others are capped by MAX_OTHER_RATE"""
MAX_OTHER_RATE = 1e9
MAX_RATE_GAP_S = 3600.0
"""a rate is the mean over the gap since the counter was last seen; longer gaps say too
little about any one moment"""
WRAP_32 = 2**32
OFFLINE_INTERVALS = 3.0
"""a report more than this many intervals after the node's previous one ends a downtime"""


def _is_number(annotation: Any) -> bool:
    """Whether a field's type is a number (int or float, maybe constrained or optional)."""
    if annotation in (int, float):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_number(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_number(a) for a in args)
    return False


def _numeric_fields(model: type[BaseModel]) -> set[str]:
    return {name for name, f in model.model_fields.items() if _is_number(f.annotation)}


KNOWN_METRICS: frozenset[str] = frozenset(
    {COUNTERS[n][0] if n in COUNTERS else n
     for model in (Sys, Iface, Radio, Link) for n in _numeric_fields(model)} - SKIPPED
    - {"uptime_s"} | {"load1", "load5", "load15", "mem_used_pct", "up_s", "links", "clients",
                      "seq", "up"})
"""every metric name a report can give (what a request may ask for)"""


class SeriesKey(NamedTuple):
    """One series: what is measured (kind) and where."""

    kind: str
    """node | iface | radio | link"""
    node: str
    """the node that reports it (a link's source)"""
    peer: str = ""
    """a link's destination node"""
    iface: str = ""
    link_kind: str = ""


_series_key = partial(tuple.__new__, SeriesKey)
"""SeriesKey((kind, node, peer, iface, link_kind)), a tuple made a key in C: the
NamedTuple's own `__new__` is a Python function (~1,000 instructions more a key)"""

PartReader = Callable[[Any], tuple[Any, ...]]
"""reads some fields of a report part at once, from its `fields_of`"""


def fields_of(part: Any, of_model: bool) -> Any:
    """What a plan's readers read: a pydantic model's `__dict__` (getattr on a model costs
    3x as much), a Struct itself."""
    return part.__dict__ if of_model else part


def _reader(names: tuple[str, ...], of_model: bool) -> PartReader:
    """Reads these fields from a part's `fields_of` as a tuple: with one itemgetter (a
    model's dict) or attrgetter (a Struct)."""
    if not names:
        return lambda fields: ()
    get = (operator.itemgetter if of_model else operator.attrgetter)(*names)
    return (lambda fields: (get(fields),)) if len(names) == 1 else get


@dataclass(frozen=True, slots=True)
class PartPlan:
    """What one type of report part (Sys, Iface, Radio, Link; model or Struct) gives: its
    numeric fields, found once by annotation. Each value read is still checked to be a
    number (absent is None; an attribute can be set without validation)."""

    gauges: tuple[str, ...]
    """numbers kept as they are, in the type's field order"""
    counters: tuple[str, ...]
    """numbers that become rates (COUNTERS)"""
    read_gauges: PartReader
    read_counters: PartReader
    rate_names: tuple[str, ...]
    """the rate kept for each counter"""
    counter_specs: tuple[tuple[int, int, float, float], ...]
    """per counter: its index, where its last reading is in a series' readings (slot),
    the factor of its rate and the highest rate believed"""
    no_counters: tuple[None, ...]
    """what `read_counters` gives for a part without counters"""
    of_model: bool
    """a pydantic model (read from its `__dict__`), not a Struct"""


def _fields_of_type(part_type: type) -> tuple[list[tuple[str, Any]], bool]:
    """(name, annotation) of a part type's fields, and whether it is a pydantic model."""
    if issubclass(part_type, BaseModel):
        return [(n, f.annotation) for n, f in part_type.model_fields.items()], True
    struct = typing.cast(type[msgspec.Struct], part_type)
    return [(f.name, f.type) for f in msgspec.structs.fields(struct)], False


def plan_for(part_type: type, skipped: frozenset[str] = SKIPPED) -> PartPlan:
    """The plan of a part type (a pydantic model or a msgspec Struct), fields in
    `skipped` left out. A field added to a model is in its plan: kept without a change
    here."""
    plan = _PLANS.get((part_type, skipped))
    if plan is None:
        plan = _PLANS[(part_type, skipped)] = _plan_of(part_type, skipped)
    return plan


def _plan_of(part_type: type, skipped: frozenset[str]) -> PartPlan:
    fields, of_model = _fields_of_type(part_type)
    numeric = [name for name, annotation in fields
               if name not in skipped and _is_number(annotation)]
    gauges = tuple(n for n in numeric if n not in COUNTERS)
    counters = tuple(n for n in numeric if n in COUNTERS)
    rate_names = tuple(COUNTERS[n][0] for n in counters)
    specs = tuple((i, _COUNTER_SLOT[n], COUNTERS[n][1], MAX_RATE.get(rate, MAX_OTHER_RATE))
                  for i, (n, rate) in enumerate(zip(counters, rate_names, strict=True)))
    return PartPlan(gauges, counters, _reader(gauges, of_model), _reader(counters, of_model),
                    rate_names, specs, (None,) * len(counters), of_model)


_PLANS: dict[tuple[type, frozenset[str]], PartPlan] = {}

_COUNTER_SLOT = {name: 2 * i for i, name in enumerate(
    ["tx_retries", "tx_failed", *(n for n in COUNTERS if n not in ("tx_retries", "tx_failed"))])}
"""counter → where its (time, value) is in a series' readings: a link's two counters
first, so its readings take four doubles (an interface's take all)"""
_NOT_SEEN = array("d", [math.nan, math.nan])


def _rate(readings: array[float], at: int, factor: float, limit: float, ts: float,
          value: int, reset: bool) -> float | None:
    """The rate since the reading at `at` (None: first reading, reset, or not believable);
    the reading is replaced by this one."""
    t0, v0 = readings[at], readings[at + 1]
    readings[at], readings[at + 1] = ts, value
    if t0 != t0 or reset:
        return None
    dt = ts - t0
    if not 0 < dt <= MAX_RATE_GAP_S:
        return None
    delta = value - v0
    if delta < 0:
        if v0 < WRAP_32 and v0 >= WRAP_32 // 2 and value < WRAP_32 // 2:
            delta += WRAP_32  # a 32-bit counter wrapped
        else:
            return None  # reset: a re-association, a driver reload
    rate = delta * factor / dt
    return rate if rate <= limit else None


class CounterRates:
    """Rates from successive counter readings, per (series, counter).

    Each series' last readings are one array of doubles, (time, value) per counter (NaN
    time: not seen): a dict entry and two objects per reading took ~3x the memory at
    35,000 nodes (bench/README.md, "memory"). A double holds a counter exactly up to 2**53
    (9 PB); above that a rate is off by at most a few parts in 10**16.
    """

    def __init__(self) -> None:
        self._last: dict[SeriesKey, array[float]] = {}

    def readings(self, key: SeriesKey, at: int) -> array[float]:
        """A series' readings, long enough to hold the counter at slot `at`."""
        readings = self._last.get(key)
        if readings is None:
            readings = self._last[key] = _NOT_SEEN * (at // 2 + 1)
        elif len(readings) <= at:
            readings.extend(_NOT_SEEN * ((at - len(readings)) // 2 + 1))
        return readings

    def rate(self, key: SeriesKey, counter: str, ts: float, value: int,
             reset: bool) -> float | None:
        """The rate since the previous reading (None: first reading, reset, or not
        believable); `reset` says the device rebooted since."""
        at = _COUNTER_SLOT[counter]
        name, factor = COUNTERS[counter]
        return _rate(self.readings(key, at), at, factor, MAX_RATE.get(name, MAX_OTHER_RATE),
                     ts, value, reset)

    def forget(self, keys: Iterable[SeriesKey]) -> None:
        """Drop the readings of these series."""
        for key in keys:
            self._last.pop(key, None)


K = TypeVar("K", bound=Hashable)
"""how a sample names its metrics: by name, or by the store's metric id"""
_NUMBER_TYPES = frozenset({int, float})
"""a number: booleans (an int subclass) and lists are not"""
_LOADS = ("load1", "load5", "load15")
_SYS_SKIPPED = SKIPPED | {"uptime_s"}
"""the node's uptime gives its `up_s`, it is not kept itself"""


class _PlanState(Generic[K]):
    """What one extractor knows of one plan: the gauges that had a number so far (hot:
    read and keyed; a part has a few of its type's dozens) and each metric's key, found
    when it first has a value (an id is given to a name only when a sample has it)."""

    __slots__ = ("cold_nones", "hot", "hot_keys", "plan", "rate_keys", "read_cold",
                 "read_hot")

    def __init__(self, plan: PartPlan) -> None:
        self.plan = plan
        self.rate_keys: list[K | None] = [None] * len(plan.counters)
        self.hot: dict[int, K] = {}
        """index in `plan.gauges` → its key, in plan order"""
        self.hot_keys: tuple[K, ...] = ()
        self.read_hot: PartReader = _reader((), plan.of_model)
        self.read_cold: PartReader = plan.read_gauges
        self.cold_nones: tuple[None, ...] = (None,) * len(plan.gauges)

    def heat(self, found: dict[int, K]) -> None:
        """These gauges had a number: read them with the hot ones from now on."""
        plan = self.plan
        self.hot = dict(sorted({**self.hot, **found}.items()))
        self.hot_keys = tuple(self.hot.values())
        self.read_hot = _reader(tuple(plan.gauges[i] for i in self.hot), plan.of_model)
        cold = tuple(n for i, n in enumerate(plan.gauges) if i not in self.hot)
        self.read_cold = _reader(cold, plan.of_model)
        self.cold_nones = (None,) * len(cold)


class _NamedKeys(dict[str, Any]):
    """Metric name → key, found by the extractor's `metric_key` when first asked."""

    def __init__(self, metric_key: Callable[[str], Any]) -> None:
        super().__init__()
        self.metric_key = metric_key

    def __missing__(self, name: str) -> Any:
        key = self[name] = self.metric_key(name)
        return key


class Extractor(Generic[K]):
    """Turns reports into samples; keeps what rates and availability need from the last one.

    A sample names its metrics by `metric_key(name)` (the name itself by default; the
    history recorder gives the store's metric ids, found once per part type and metric).
    """

    @overload
    def __init__(self: Extractor[str]) -> None: ...

    @overload
    def __init__(self, metric_key: Callable[[str], K]) -> None: ...

    def __init__(self, metric_key: Callable[[str], Any] | None = None) -> None:
        self.rates = CounterRates()
        self._last: dict[str, tuple[float, float | None]] = {}
        """node → (ts, uptime_s) of its previous report"""
        self._metric_key: Callable[[str], K] = metric_key or _same_name
        self._named = _NamedKeys(self._metric_key)
        self._plans: dict[type, _PlanState[K]] = {}
        """part type → its plan (SKIPPED fields left out)"""
        self._sys_plans: dict[type, _PlanState[K]] = {}
        """the same for the node's `sys` (its uptime left out too)"""

    def samples(self, report: AnyReport, ts: float, dsts: Sequence[str | None]
                ) -> list[tuple[SeriesKey, dict[K, float]]]:
        """(series, {metric: value}) of one report stored at `ts`; series without a
        number are left out. A key's strings are interned: the registries and the counter
        readings keep a key per series, and each decoded report brings its own copies."""
        node = intern(report.node)
        sys = report.sys
        uptime = sys.uptime_s if sys is not None else None
        prev = self._last.get(node)
        if prev is None or ts >= prev[0]:  # a late report does not move the clock back
            self._last[node] = (ts, uptime)
        rebooted = prev is not None and uptime is not None and prev[1] is not None and (
            uptime < prev[1])
        named = self._named
        main: dict[K, float] = {
            named["up_s"]: _up_seconds(prev, ts, report.interval_s),
            named["links"]: float(len(report.links)), named["seq"]: report.seq}
        if report.clients is not None:
            main[named["clients"]] = report.clients
        if sys is not None:
            for name, value in zip(_LOADS, sys.load or ()):  # noqa: B905 (hot path)
                main[named[name]] = value
            state = self._sys_plans.get(type(sys)) or self._state(sys, _SYS_SKIPPED)
            main.update(self._gauges(state, fields_of(sys, state.plan.of_model)))
            if sys.mem_total_kb and sys.mem_avail_kb is not None:
                main[named["mem_used_pct"]] = 100.0 * (
                    1 - sys.mem_avail_kb / sys.mem_total_kb)
        out: list[tuple[SeriesKey, dict[K, float]]] = [
            (_series_key(("node", node, "", "", "")), main)]
        for iface in report.ifaces:
            key = _series_key(("iface", node, "", intern(iface.name), ""))
            values = self._values(key, iface, ts, rebooted)
            if iface.up is not None:
                values[named["up"]] = 1.0 if iface.up else 0.0
            if values:
                out.append((key, values))
        for radio in report.radios:
            key = _series_key(("radio", node, "", intern(radio.iface), ""))
            values = self._values(key, radio, ts, rebooted)
            if values:
                out.append((key, values))
        links: Sequence[Link | StructLink] = report.links
        for link, dst in zip(links, dsts, strict=True):
            if dst is None:
                continue
            key = _series_key(("link", node, intern(dst), intern(link.iface),
                               intern(link.kind)))
            values = self._values(key, link, ts, rebooted)
            if values:
                out.append((key, values))
        return out

    def _state(self, part: Any, skipped: frozenset[str] = SKIPPED) -> _PlanState[K]:
        states = self._plans if skipped is SKIPPED else self._sys_plans
        state = states.get(type(part))
        if state is None:
            state = states[type(part)] = _PlanState(plan_for(type(part), skipped))
        return state

    def _gauges(self, state: _PlanState[K], fields: Any) -> dict[K, float]:
        """The numbers kept as they are of a part (its `fields_of`)."""
        if state.read_cold(fields) != state.cold_nones:
            return self._new_gauges(state, fields)
        values = state.read_hot(fields)
        if _NUMBER_TYPES.issuperset(map(type, values)):  # the usual: each one a number
            return dict(zip(state.hot_keys, values))  # noqa: B905 (hot path)
        out = {key: value for key, value in zip(state.hot_keys, values)  # noqa: B905
               if value is not None}
        if not _NUMBER_TYPES.issuperset(map(type, out.values())):
            return self._new_gauges(state, fields)
        return out

    def _new_gauges(self, state: _PlanState[K], fields: Any) -> dict[K, float]:
        """`_gauges` when a field not read so far has a value (a metric's first one), or
        a field holds something that is not a number (left out)."""
        out: dict[K, float] = {}
        hot, new = state.hot, {}
        names = state.plan.gauges
        for i, value in enumerate(state.plan.read_gauges(fields)):
            if type(value) in _NUMBER_TYPES:
                key = hot.get(i)
                if key is None:
                    key = new[i] = self._named[names[i]]
                out[key] = value
        if new:
            state.heat(new)
        return out

    def _values(self, series: SeriesKey, part: Any, ts: float, rebooted: bool
                ) -> dict[K, float]:
        """The part's numbers, its counters as rates."""
        state = self._plans.get(type(part)) or self._state(part)
        plan = state.plan
        fields = part.__dict__ if plan.of_model else part  # fields_of, inline (hot path)
        out = self._gauges(state, fields)
        counters = plan.read_counters(fields)
        if counters == plan.no_counters:
            return out
        readings = None
        for (i, at, factor, limit), value in zip(plan.counter_specs,  # noqa: B905
                                                 counters):
            if value is None or type(value) not in _NUMBER_TYPES:
                continue
            if readings is None or len(readings) <= at:
                readings = self.rates.readings(series, at)
            rate = _rate(readings, at, factor, limit, ts, int(value), rebooted)
            if rate is not None:
                key = state.rate_keys[i]
                if key is None:
                    key = state.rate_keys[i] = self._named[plan.rate_names[i]]
                out[key] = rate
        return out

    def forget_node(self, node: str) -> None:
        """Forget a node's previous report (its next one starts afresh)."""
        self._last.pop(node, None)


def _same_name(name: str) -> Any:
    return name


def _up_seconds(prev: tuple[float, float | None] | None, ts: float, interval_s: float
                ) -> float:
    """How long the node counts as up before this report: the gap since its previous
    report while that is short, else one interval (it was down, or we did not listen)."""
    if prev is None:
        return interval_s
    gap = ts - prev[0]
    if 0 < gap <= OFFLINE_INTERVALS * interval_s:
        return gap
    return interval_s if gap > 0 else 0.0
