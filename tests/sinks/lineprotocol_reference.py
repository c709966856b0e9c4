"""The line-protocol encoder as it was before the templates (meshmon @ 4e589e7,
`meshmon/sinks/lineprotocol.py`, caches left out): the reference the new one must match
byte for byte (`test_lineprotocol_reference.py`)."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import msgspec

from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import AnyReport
from meshmon.model.wire import LINK_METRICS
from meshmon.sinks.lineprotocol import (
    INT_LINK_METRICS,
    UNRESOLVED_DST_PREFIX,
    escape_key,
    format_float,
)

_LINK_FIELDS: tuple[tuple[str, bool], ...] = tuple((m, m in INT_LINK_METRICS) for m in LINK_METRICS)
_LINK_PARTS = tuple((f"{m}=", "i" if is_int else "") for m, is_int in _LINK_FIELDS)
_link_values = operator.attrgetter(*LINK_METRICS)
_encode_json = msgspec.json.Encoder().encode
_IFACE_COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors")
_RADIO_FIELDS: tuple[tuple[str, bool], ...] = (
    ("freq_mhz", False), ("channel", True), ("width_mhz", False), ("noise_dbm", False),
    ("txpower_dbm", False), ("busy_pct", False), ("clients", True),
)  # fmt: skip


def link_dst(link: wire.Link | fast.Link, dst: str | None) -> str:
    """The `dst` tag: resolved node id, else the agent's peer id, else `mac:<peer_mac>`."""
    if dst:
        return dst
    if link.peer:
        return link.peer
    return f"{UNRESOLVED_DST_PREFIX}{link.peer_mac}"

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
    ns = round((report.ts if t is None else t) * 1_000_000) * 1000
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
    for link, dst in zip(links, dsts, strict=True):
        lf = link_fields(link)
        if not lf:
            continue
        lines.append(f"link,dst={escape_key(link_dst(link, dst))},iface={escape_key(link.iface)},"
                     f"kind={link.kind},src={node} {','.join(lf)} {ns}")

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
