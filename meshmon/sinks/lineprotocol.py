"""InfluxDB line protocol, built as bytes from cached templates (no influxdb_client.Point).

Timestamps are in **nanoseconds** (`precision=ns`), rounded to the microsecond of the
float seconds they come from, so points of one series never collide within a second
(installer mode reports every second; events can come in bursts).

Measurements and their tags/fields are documented in `docs/influxdb.md`. Field types
are fixed per field name (InfluxDB rejects a point whose field changes type), so the
type comes from the tables below, never from the runtime value.

A report's lines are cheap because a node sends the same shape again and again: all the
report's numbers become text in one msgspec call, and a template made once per layout
(the node, its links' tags, interfaces and radios, which values are absent) puts them
between the tag and field names with one `bytes % tuple`.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterator, Sequence
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import msgspec

from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import AnyReport
from meshmon.model.wire import LINK_METRICS
from meshmon.sinks.base import Event

INT_LINK_METRICS = frozenset({"tx_retries", "tx_failed", "inactive_ms", "tq"})
"""LINK_METRICS written as integers (`i` suffix); all others are floats."""

UNRESOLVED_DST_PREFIX = "mac:"

_IFACE_COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors")
_RADIO_FIELDS: tuple[tuple[str, bool], ...] = (
    ("freq_mhz", False), ("channel", True), ("width_mhz", False), ("noise_dbm", False),
    ("txpower_dbm", False), ("busy_pct", False), ("clients", True),
)  # fmt: skip
_LOAD_NAMES = ("load1", "load5", "load15")

_MEAS_SPECIAL = (",", " ", "\n", "\\")
_TAG_SPECIAL = (",", "=", " ", "\n", "\\")

# what one msgspec call turns into text, per report
_sys_values = attrgetter("uptime_s", "load", "mem_total_kb", "mem_avail_kb", "rootfs_used_pct")
_NO_SYS = (None, None, None, None, None)
_link_values = attrgetter(*LINK_METRICS, "chains_dbm")
_iface_values = attrgetter("up", *_IFACE_COUNTERS)
_radio_values = attrgetter(*(name for name, _ in _RADIO_FIELDS))
# and the names (tags, `peer_mac`) in another
_link_names = attrgetter("peer", "peer_mac", "iface", "kind")
_iface_name = attrgetter("name")
_radio_iface = attrgetter("iface")

_encode_json = msgspec.json.Encoder().encode
_NUMBER_CHARS = b"0123456789.-+"
"""deleted from a report's numbers to get their shape: which are absent (null), the lengths
of its lists, and which are written with an exponent (the `e` stays)"""
_NAME_CHARS = string.ascii_letters.encode() + string.digits.encode() + b"._-:"
"""deleted from a report's names to get their shape: which are absent (null, deleted too)
and how many; a name with any other character (one to escape) leaves a trace"""
_NAME_SHAPE_CHARS = b'[]",'

_LAYOUTS_MAX = 50_000
"""layouts kept of each kind (more: they are made afresh)"""


class _Layout(NamedTuple):
    template: bytes
    """the report's lines joined by newlines, `%s` where a number or name goes"""
    pick: Any
    """the parts of the numbers and names → the tuple the template takes (an itemgetter)"""
    points: int
    fix: bool
    """a float written the `repr` way has an exponent in this shape"""
    repr_positions: tuple[int, ...]
    """parts written as `repr(float)` (where that differs from msgspec: exponents)"""


_shared: dict[tuple[bytes, bytes], _Layout] = {}
"""(numbers' shape, names' shape) → the layout of every report of that shape whose names
need no escaping (names are parts, like numbers): a few for a whole network"""
_own: dict[tuple[bytes, bytes], _Layout] = {}
"""(numbers' shape, names) → the layout of a report with names to escape (in the template)"""
_picks: dict[tuple[int, ...], Any] = {}
"""the itemgetters of the layouts, shared by those that pick the same parts"""


def escape_measurement(name: str) -> str:
    """Escape a measurement name: commas and spaces (backslash first)."""
    if not any(c in name for c in _MEAS_SPECIAL):
        return name
    return (
        name.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ").replace("\n", "\\n")
    )


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key: commas, equals signs and spaces.

    Newlines cannot be escaped in line protocol; they become the two characters `\\n`.
    A trailing backslash would escape the following separator, so it is doubled.
    """
    if not any(c in text for c in _TAG_SPECIAL):
        return text
    return (
        text.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace("=", "\\=")
        .replace(" ", "\\ ")
        .replace("\n", "\\n")
    )


def quote_string(text: str) -> str:
    """A string field value: double-quoted, with `"` and `\\` escaped, newlines as `\\n`."""
    if '"' in text or "\\" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def format_float(value: float) -> str | None:
    """A float field value, or None for inf/nan (line protocol cannot carry them)."""
    if value - value != 0:  # inf or nan
        return None
    return repr(float(value))


def format_field(value: float | int | str | bool) -> str | None:
    """A field value by its Python type (for event fields): bool, int `i`, float, string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return format_float(value)
    return quote_string(str(value))


def timestamp_ns(ts: float) -> int:
    """Unix seconds (float) to integer nanoseconds, rounded to the microsecond."""
    return round(ts * 1_000_000) * 1000


def report_chunk(
    report: AnyReport, received_at: float, dsts: Sequence[str | None], t: float | None = None
) -> tuple[bytes, int]:
    """All lines of one report joined by newlines, and how many: `node`, one `link` per
    link with a value, `iface` and `radio` per interface and radio with a value.

    `t` is the point time in unix seconds (see `base.sample_time`); default `report.ts`.
    """
    numbers = _encode_json(_numbers(report, received_at, t))  # nan, inf: null, like None
    names = _encode_json((report.node, dsts, list(map(_link_names, report.links)),
                          list(map(_iface_name, report.ifaces)),
                          list(map(_radio_iface, report.radios))))
    shape = (numbers.translate(None, _NUMBER_CHARS), names.translate(None, _NAME_CHARS))
    parts = numbers.translate(None, b"[]").split(b",")
    layout = _shared.get(shape)
    if layout is None or b'""' in names:
        layout = _own_layout(shape, names, report, dsts, parts)
    if layout.fix or b"0.0000" in numbers:
        _as_repr(parts, layout.repr_positions)
    parts += names.translate(None, b'[]"').split(b",")
    return layout.template % layout.pick(parts), layout.points


def _numbers(report: AnyReport, received_at: float, t: float | None) -> tuple[Any, ...]:
    """The numbers of a report's lines, nested as in the report."""
    sys = report.sys
    return (
        round((report.ts if t is None else t) * 1_000_000) * 1000,
        report.seq, report.interval_s, received_at - report.ts, len(report.links),
        report.clients,
        _NO_SYS if sys is None else _sys_values(sys),
        list(map(_link_values, report.links)),
        list(map(_iface_values, report.ifaces)),
        list(map(_radio_values, report.radios)),
    )  # fmt: skip


def report_lines(
    report: AnyReport, received_at: float, dsts: Sequence[str | None], t: float | None = None
) -> list[str]:
    """The lines of `report_chunk` as strings."""
    return report_chunk(report, received_at, dsts, t)[0].decode().split("\n")


def _as_repr(parts: list[bytes], positions: tuple[int, ...]) -> None:
    """Write these floats as `repr` does where msgspec differs (exponents: 1e+16, 1e-05)."""
    for p in positions:
        text = parts[p]
        if b"e" in text or b"0.0000" in text:
            parts[p] = repr(float(text)).encode()


def _positions(value: object, counter: Iterator[int]) -> Any:
    """The index in the flattened text of each item of `value` (an empty list takes one
    part of its own: nothing between two commas)."""
    if isinstance(value, list | tuple):
        if not value:
            next(counter)
            return []
        return [_positions(v, counter) for v in value]
    return next(counter)


class _TemplateBuilder:
    """Collects a report's lines as template text and the parts they take, in order.

    Names are parts too (`shared`), or text in the template, escaped."""

    def __init__(self, parts: list[bytes], shared: bool) -> None:
        self.parts = parts
        self.shared = shared
        self.lines: list[str] = []
        self.picks: list[int] = []
        self.reprs: list[int] = []
        self._head: list[str] = []
        self._head_picks: list[int] = []
        self._fields: list[str] = []
        self._field_picks: list[int] = []

    def tag(self, key: str, value: str, p: int, prefix: str = "") -> None:
        """`key=value`: part `p` (shared) or the escaped value."""
        if self.shared:
            self._head.append(f"{key}={prefix}%s")
            self._head_picks.append(p)
        else:
            self._head.append(f"{key}={escape_key(prefix + value).replace('%', '%%')}")

    def text(self, name: str, value: str, p: int) -> None:
        """A string field: part `p` (shared: nothing to escape) or the quoted value."""
        if self.shared:
            self._fields.append(f'{name}="%s"')
            self._field_picks.append(p)
        else:
            self._fields.append(f"{name}={quote_string(value).replace('%', '%%')}")

    def literal(self, field: str) -> None:
        self._fields.append(field)

    def number(self, name: str, p: int, suffix: str = "", as_repr: bool = False) -> None:
        """`name=` the number in part `p`, unless it is absent."""
        if self.parts[p] == b"null":
            return
        self._fields.append(f"{name}=%s{suffix}")
        self._field_picks.append(p)
        if as_repr:
            self.reprs.append(p)

    def end_line(self, measurement: str, ns: int) -> None:
        """The line of the tags and fields collected since the last one, if it has a field."""
        if self._fields:
            self.lines.append(f"{','.join([measurement, *self._head])} "
                              f"{','.join(self._fields)} %s")
            self.picks += self._head_picks + self._field_picks
            self.picks.append(ns)
        self._head, self._head_picks, self._fields, self._field_picks = [], [], [], []


def _own_layout(shape: tuple[bytes, bytes], names: bytes, report: AnyReport,
                dsts: Sequence[str | None], parts: list[bytes]) -> _Layout:
    """The layout of a report not found among the shared ones: made shared if its names
    need no escaping, else its own (kept by its names)."""
    shared = not shape[1].strip(_NAME_SHAPE_CHARS) and b'""' not in names
    key = shape if shared else (shape[0], names)
    cache = _shared if shared else _own
    layout = cache.get(key)
    if layout is None:
        layout = _new_layout(report, dsts, parts, shared)
        if len(cache) >= _LAYOUTS_MAX:
            cache.clear()
            _picks.clear()
        cache[key] = layout
    return layout


def _new_layout(report: AnyReport, dsts: Sequence[str | None], parts: list[bytes],
                shared: bool) -> _Layout:
    """The template of a report's layout: what its numbers and names look like."""
    counter = itertools.count()
    (ns, seq, interval, offset, n_links, clients, sys, link_pos, iface_pos,
     radio_pos) = _positions(_numbers(report, 0.0, None), counter)
    links: Sequence[wire.Link | fast.Link] = report.links
    ifaces: Sequence[wire.Iface | fast.Iface] = report.ifaces
    radios: Sequence[wire.Radio | fast.Radio] = report.radios
    node_p, dst_pos, link_name_pos, iface_name_pos, radio_name_pos = _positions(
        (report.node, list(dsts), [list(_link_names(link)) for link in links],
         [iface.name for iface in ifaces], [radio.iface for radio in radios]), counter)
    b = _TemplateBuilder(parts, shared)

    b.tag("node", report.node, node_p)
    b.literal("online=true")
    b.number("seq", seq, "i")
    b.number("interval_s", interval, as_repr=True)
    b.number("clock_offset_s", offset, as_repr=True)
    b.number("links", n_links, "i")
    b.number("clients", clients, "i")
    uptime, load, mem_total, mem_avail, rootfs = sys
    b.number("uptime_s", uptime, as_repr=True)
    for name, p in zip(_LOAD_NAMES, load if isinstance(load, list) else [], strict=False):
        b.number(name, p, as_repr=True)
    b.number("mem_total_kb", mem_total, "i")
    b.number("mem_avail_kb", mem_avail, "i")
    b.number("rootfs_used_pct", rootfs, as_repr=True)
    b.end_line("node", ns)

    for link, dst, dst_p, positions, (peer_p, mac_p, iface_p, kind_p) in zip(
            links, dsts, dst_pos, link_pos, link_name_pos, strict=True):
        if dst:
            b.tag("dst", dst, dst_p)
        elif link.peer:
            b.tag("dst", link.peer, peer_p)
        else:
            b.tag("dst", str(link.peer_mac), mac_p, prefix=UNRESOLVED_DST_PREFIX)
        b.tag("iface", link.iface, iface_p)
        b.tag("kind", link.kind, kind_p)
        b.tag("src", report.node, node_p)
        for metric, p in zip(LINK_METRICS, positions, strict=False):
            b.number(metric, p, "i" if metric in INT_LINK_METRICS else "")
        chains = positions[len(LINK_METRICS)]
        for i, p in enumerate(chains if isinstance(chains, list) else []):
            b.number(f"chain{i}_dbm", p, as_repr=True)
        if link.peer_mac:
            b.text("peer_mac", link.peer_mac, mac_p)
        b.end_line("link", ns)

    for iface, positions, name_p in zip(ifaces, iface_pos, iface_name_pos, strict=True):
        b.tag("iface", iface.name, name_p)
        b.tag("node", report.node, node_p)
        b.number("up", positions[0])
        for name, p in zip(_IFACE_COUNTERS, positions[1:], strict=True):
            b.number(name, p, "i")
        b.end_line("iface", ns)

    for radio, positions, name_p in zip(radios, radio_pos, radio_name_pos, strict=True):
        b.tag("iface", radio.iface, name_p)
        b.tag("node", report.node, node_p)
        for (name, is_int), p in zip(_RADIO_FIELDS, positions, strict=True):
            b.number(name, p, "i" if is_int else "", as_repr=not is_int)
        b.end_line("radio", ns)

    picks = tuple(b.picks)
    pick = _picks.get(picks)
    if pick is None:  # at least seq, interval_s, links and the time: it gives a tuple
        pick = _picks[picks] = itemgetter(*picks)
    reprs = tuple(b.reprs)
    return _Layout(template="\n".join(b.lines).encode(), pick=pick, points=len(b.lines),
                   fix=any(b"e" in parts[p] for p in reprs), repr_positions=reprs)


def event_line(event: Event) -> str:
    """One `event` point: tags kind (and node), fields summary plus the event's fields."""
    tags = f"event,kind={escape_key(event.kind)}" if event.kind else "event,kind=unknown"
    if event.node:
        tags += f",node={escape_key(event.node)}"
    fields = [f"summary={quote_string(event.summary)}"]
    for key, value in sorted(event.fields.items()):
        if key == "summary" or not key:
            continue
        s = format_field(value)
        if s is not None:
            fields.append(f"{escape_key(key)}={s}")
    return f"{tags} {','.join(fields)} {timestamp_ns(event.ts)}"
