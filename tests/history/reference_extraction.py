"""The extraction of samples as `meshmon.history.samples` did it before its per-type plans
(meshmon 4e589e7): the oracle the fast extraction is compared with (test_extraction_plans)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from sys import intern
from typing import Any

import msgspec

from meshmon.history.samples import COUNTERS, SKIPPED, CounterRates, SeriesKey, _up_seconds
from meshmon.model.fastwire import AnyReport


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


class ReferenceExtractor:
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
