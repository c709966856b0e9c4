"""InfluxDB line protocol, built with plain string formatting (no influxdb_client.Point).

Timestamps are in **nanoseconds** (`precision=ns`), rounded to the microsecond of the
float seconds they come from, so points of one series never collide within a second
(installer mode reports every second; events can come in bursts).

Measurements and their tags/fields are documented in `docs/influxdb.md`. Field types
are fixed per field name (InfluxDB rejects a point whose field changes type), so the
type comes from the tables below, never from the runtime value.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import msgspec

from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import AnyReport
from meshmon.model.wire import LINK_METRICS
from meshmon.sinks.base import Event

INT_LINK_METRICS = frozenset({"tx_retries", "tx_failed", "inactive_ms", "tq"})
"""LINK_METRICS written as integers (`i` suffix); all others are floats."""

UNRESOLVED_DST_PREFIX = "mac:"

_LINK_FIELDS: tuple[tuple[str, bool], ...] = tuple((m, m in INT_LINK_METRICS) for m in LINK_METRICS)
_LINK_PARTS = tuple((f"{m}=", "i" if is_int else "") for m, is_int in _LINK_FIELDS)
"""(`name=`, suffix) of each of LINK_METRICS"""
_link_values = operator.attrgetter(*LINK_METRICS)
_encode_json = msgspec.json.Encoder().encode
_IFACE_COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors")
_RADIO_FIELDS: tuple[tuple[str, bool], ...] = (
    ("freq_mhz", False), ("channel", True), ("width_mhz", False), ("noise_dbm", False),
    ("txpower_dbm", False), ("busy_pct", False), ("clients", True),
)  # fmt: skip

_MEAS_SPECIAL = (",", " ", "\n", "\\")
_TAG_SPECIAL = (",", "=", " ", "\n", "\\")
_cache: dict[str, str] = {}
_link_heads: dict[tuple[str, str, str, str], str] = {}
_CACHE_MAX = 200_000


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
    cached = _cache.get(text)
    if cached is not None:
        return cached
    out = text
    if any(c in text for c in _TAG_SPECIAL):
        out = (
            text.replace("\\", "\\\\")
            .replace(",", "\\,")
            .replace("=", "\\=")
            .replace(" ", "\\ ")
            .replace("\n", "\\n")
        )
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[text] = out
    return out


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


def link_dst(link: wire.Link | fast.Link, dst: str | None) -> str:
    """The `dst` tag: resolved node id, else the agent's peer id, else `mac:<peer_mac>`."""
    if dst:
        return dst
    if link.peer:
        return link.peer
    return f"{UNRESOLVED_DST_PREFIX}{link.peer_mac}"


def _link_head(series: tuple[str, str, str, str]) -> str:
    """`link,dst=…,iface=…,kind=…,src=… ` of one series (cached: the same few per node)."""
    dst, iface, kind, node = series
    if len(_link_heads) >= _CACHE_MAX:
        _link_heads.clear()
    head = _link_heads[series] = (
        f"link,dst={escape_key(dst)},iface={escape_key(iface)},kind={kind},src={node} ")
    return head


def _numeric_fields(obj: object, spec: Sequence[tuple[str, bool]], out: list[str]) -> None:
    for name, is_int in spec:
        v = getattr(obj, name)
        if v is None:
            continue
        if is_int:
            out.append(f"{name}={int(v)}i")
        else:
            s = format_float(v)
            if s is not None:
                out.append(f"{name}={s}")


def link_fields(link: wire.Link | fast.Link) -> list[str]:
    """`key=value` strings of the metrics present in one link sample (absent stays absent)."""
    # the numbers as text in one call (a JSON array: null for absent, inf and nan; floats
    # round-trip as with repr, exponents written 1e16 — line protocol reads both), ~40 %
    # less than formatting each (one report: five links, ~10 metrics each)
    texts = _encode_json(_link_values(link))[1:-1].decode().split(",")
    out = [prefix + text + suffix
           for (prefix, suffix), text in zip(_LINK_PARTS, texts, strict=True) if text != "null"]
    if link.chains_dbm:
        for i, v in enumerate(link.chains_dbm):
            s = format_float(v)
            if s is not None:
                out.append(f"chain{i}_dbm={s}")
    if link.peer_mac:
        out.append(f'peer_mac="{link.peer_mac}"')  # validated MAC: nothing to escape
    return out


def report_lines(
    report: AnyReport, received_at: float, dsts: Sequence[str | None], t: float | None = None
) -> list[str]:
    """All lines of one report: `node`, one `link` per link, `iface`, `radio`.

    `t` is the point time in unix seconds (see `base.sample_time`); default `report.ts`.
    """
    ns = timestamp_ns(report.ts if t is None else t)
    node = escape_key(report.node)
    lines: list[str] = []

    fields = [f"online=true,seq={report.seq}i,interval_s={float(report.interval_s)!r}"]
    offset = format_float(received_at - report.ts)
    if offset is not None:
        fields.append(f"clock_offset_s={offset}")
    fields.append(f"links={len(report.links)}i")
    if report.clients is not None:
        fields.append(f"clients={report.clients}i")
    sys = report.sys
    if sys is not None:
        if sys.uptime_s is not None and (s := format_float(sys.uptime_s)) is not None:
            fields.append(f"uptime_s={s}")
        if sys.load:
            for name, v in zip(("load1", "load5", "load15"), sys.load, strict=False):
                fields.append(f"{name}={float(v)!r}")
        if sys.mem_total_kb is not None:
            fields.append(f"mem_total_kb={sys.mem_total_kb}i")
        if sys.mem_avail_kb is not None:
            fields.append(f"mem_avail_kb={sys.mem_avail_kb}i")
        if sys.rootfs_used_pct is not None:
            fields.append(f"rootfs_used_pct={float(sys.rootfs_used_pct)!r}")
    lines.append(f"node,node={node} {','.join(fields)} {ns}")

    links: Sequence[wire.Link | fast.Link] = report.links
    heads = _link_heads
    for link, dst in zip(links, dsts, strict=True):
        lf = link_fields(link)
        if not lf:
            continue
        series = (link_dst(link, dst), link.iface, link.kind, node)
        head = heads.get(series)
        if head is None:
            head = _link_head(series)
        lines.append(f"{head}{','.join(lf)} {ns}")

    for iface in report.ifaces:
        ff: list[str] = []
        if iface.up is not None:
            ff.append("up=true" if iface.up else "up=false")
        for name in _IFACE_COUNTERS:
            v = getattr(iface, name)
            if v is not None:
                ff.append(f"{name}={v}i")
        if ff:
            lines.append(f"iface,iface={escape_key(iface.name)},node={node} {','.join(ff)} {ns}")

    for radio in report.radios:
        ff = []
        _numeric_fields(radio, _RADIO_FIELDS, ff)
        if ff:
            lines.append(f"radio,iface={escape_key(radio.iface)},node={node} {','.join(ff)} {ns}")
    return lines


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
