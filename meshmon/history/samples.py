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
Counters (bytes, packets, errors, retries) become rates per second; a counter that goes
backwards was reset (a reboot, a re-association) unless it looks like a 32-bit wrap, and
gives no rate rather than a negative one.
"""

from __future__ import annotations

import math
import types
import typing
from array import array
from collections.abc import Iterable, Iterator, Sequence
from sys import intern
from typing import Any, NamedTuple

import msgspec
from pydantic import BaseModel

from meshmon.model.fastwire import AnyReport
from meshmon.model.wire import Iface, Link, Radio, Sys

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


def fields_of(part: Any) -> dict[str, Any]:
    """A report part's fields by name: a model's `__dict__` (getattr on a pydantic model
    costs 3x as much), or a decoded Struct's fields (the ingest's reports)."""
    fields = getattr(part, "__dict__", None)
    return fields if fields is not None else msgspec.structs.asdict(part)


def numbers(fields: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """The numeric fields of a model's `__dict__` (booleans and lists are not numbers)."""
    for name, value in fields.items():
        if value is None or name in SKIPPED:
            continue
        kind = type(value)
        if kind is float or kind is int:
            yield name, value


_COUNTER_SLOT = {name: 2 * i for i, name in enumerate(
    ["tx_retries", "tx_failed", *(n for n in COUNTERS if n not in ("tx_retries", "tx_failed"))])}
"""counter → where its (time, value) is in a series' readings: a link's two counters
first, so its readings take four doubles (an interface's take all)"""
_NOT_SEEN = array("d", [math.nan, math.nan])


class CounterRates:
    """Rates from successive counter readings, per (series, counter).

    Each series' last readings are one array of doubles, (time, value) per counter (NaN
    time: not seen): a dict entry and two objects per reading took ~3x the memory at
    35,000 nodes (bench/README.md, "memory"). A double holds a counter exactly up to 2**53
    (9 PB); above that a rate is off by at most a few parts in 10**16.
    """

    def __init__(self) -> None:
        self._last: dict[SeriesKey, array[float]] = {}

    def rate(self, key: SeriesKey, counter: str, ts: float, value: int,
             reset: bool) -> float | None:
        """The rate since the previous reading (None: first reading, reset, or not
        believable); `reset` says the device rebooted since."""
        readings = self._last.get(key)
        at = _COUNTER_SLOT[counter]
        if readings is None:
            readings = self._last[key] = _NOT_SEEN * (at // 2 + 1)
        elif len(readings) <= at:
            readings.extend(_NOT_SEEN * ((at - len(readings)) // 2 + 1))
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
        name, factor = COUNTERS[counter]
        rate = delta * factor / dt
        return rate if rate <= MAX_RATE.get(name, MAX_OTHER_RATE) else None

    def forget(self, keys: Iterable[SeriesKey]) -> None:
        """Drop the readings of these series."""
        for key in keys:
            self._last.pop(key, None)


class Extractor:
    """Turns reports into samples; keeps what rates and availability need from the last one."""

    def __init__(self) -> None:
        self.rates = CounterRates()
        self._last: dict[str, tuple[float, float | None]] = {}
        """node → (ts, uptime_s) of its previous report"""

    def samples(self, report: AnyReport, ts: float, dsts: Sequence[str | None]
                ) -> list[tuple[SeriesKey, dict[str, float]]]:
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
        out: list[tuple[SeriesKey, dict[str, float]]] = []
        main: dict[str, float] = {"up_s": _up_seconds(prev, ts, report.interval_s),
                                  "links": float(len(report.links)), "seq": report.seq}
        if report.clients is not None:
            main["clients"] = report.clients
        if sys is not None:
            load = sys.load or []
            for name, value in zip(("load1", "load5", "load15"), load, strict=False):
                main[name] = value
            for name, value in numbers(fields_of(sys)):
                if name != "uptime_s":
                    main[name] = value
            if sys.mem_total_kb and sys.mem_avail_kb is not None:
                main["mem_used_pct"] = 100.0 * (1 - sys.mem_avail_kb / sys.mem_total_kb)
        out.append((SeriesKey("node", node), main))
        for iface in report.ifaces:
            key = SeriesKey("iface", node, "", intern(iface.name))
            values = self._values(key, fields_of(iface), ts, rebooted)
            if iface.up is not None:
                values["up"] = 1.0 if iface.up else 0.0
            if values:
                out.append((key, values))
        for radio in report.radios:
            key = SeriesKey("radio", node, "", intern(radio.iface))
            values = self._values(key, fields_of(radio), ts, rebooted)
            if values:
                out.append((key, values))
        for link, dst in zip(report.links, dsts, strict=True):
            if dst is None:
                continue
            fields = fields_of(link)
            key = SeriesKey("link", node, intern(dst), intern(fields["iface"]),
                            intern(fields["kind"]))
            values = self._values(key, fields, ts, rebooted)
            if values:
                out.append((key, values))
        return out

    def _values(self, key: SeriesKey, fields: dict[str, Any], ts: float,
                rebooted: bool) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, value in numbers(fields):
            counter = COUNTERS.get(name)
            if counter is None:
                values[name] = value
                continue
            rate = self.rates.rate(key, name, ts, int(value), rebooted)
            if rate is not None:
                values[counter[0]] = rate
        return values

    def forget_node(self, node: str) -> None:
        """Forget a node's previous report (its next one starts afresh)."""
        self._last.pop(node, None)


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
