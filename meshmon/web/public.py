"""State → public JSON: plain functions, no HTTP, no clock.

Everything here builds new dicts from an allow-list of fields; a model is never dumped,
so a field added to the wire contract stays private until it is listed here. Public
output never carries owner contacts, MAC or IP addresses, nor the exact location of a
node that is not marked public (DESIGN.md, HTTP). Free text from agents (hostname,
model, firmware, tags, interface names) is dropped when it looks like an address or an
e-mail, because agents are outside our control.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from meshmon.model.addresses import safe_text
from meshmon.model.state import LinkKey, LinkSample, LinkState, NodeState
from meshmon.model.wire import LINK_METRICS, Info, Report

Json = dict[str, Any]

class TopologyView(Protocol):
    """The part of `meshmon.model.topology.Topology` the web reads."""

    nodes: dict[str, NodeState]
    links: dict[LinkKey, LinkState]

    def node_links(self, node: str) -> list[LinkState]: ...

    def reverse(self, key: LinkKey) -> LinkState | None: ...


def public_location(info: Info | None, coarsen_grid_deg: float) -> Json | None:
    """Exact location of a public node; snapped to the grid (no altitude) otherwise."""
    if info is None or info.location is None:
        return None
    loc = info.location
    if info.public:
        out: Json = {"lat": loc.lat, "lon": loc.lon}
        if loc.alt_m is not None:
            out["alt_m"] = loc.alt_m
        return out
    if coarsen_grid_deg <= 0:
        return None
    return {
        "lat": _snap(loc.lat, coarsen_grid_deg),
        "lon": _snap(loc.lon, coarsen_grid_deg),
        "approximate": True,
    }


def _snap(value: float, grid: float) -> float:
    # the second round() removes float noise such as 52.510000000000005
    return round(round(value / grid) * grid, 6)


def link_metrics(sample: LinkSample) -> Json:
    """The scalar metrics the source reported (absent stays absent), plus chains_dbm."""
    out: Json = {}
    for name in LINK_METRICS:
        value = getattr(sample, name)
        if value is not None:
            out[name] = value
    if sample.chains_dbm:
        out["chains_dbm"] = list(sample.chains_dbm)
    return out


def link_counts(links: Iterable[LinkState]) -> dict[str, tuple[int, int]]:
    """Per node: (resolved directed links it is an end of, distinct resolved neighbours)."""
    count: dict[str, int] = {}
    neighbours: dict[str, set[str]] = {}
    for link in links:
        dst = link.dst
        if dst is None:
            continue
        src = link.key.src
        count[src] = count.get(src, 0) + 1
        count[dst] = count.get(dst, 0) + 1
        neighbours.setdefault(src, set()).add(dst)
        neighbours.setdefault(dst, set()).add(src)
    return {node: (n, len(neighbours[node])) for node, n in count.items()}


def info_fields(node_id: str, info: Info | None, coarsen_grid_deg: float) -> Json:
    """The summary fields that come from the node's info (they change rarely)."""
    return {
        "id": node_id,
        "hostname": safe_text(info.hostname) if info else None,
        "model": safe_text(info.model) if info else None,
        "firmware": safe_text(info.firmware) if info else None,
        "gateway": bool(info and info.gateway),
        "location": public_location(info, coarsen_grid_deg),
        "tags": _safe_list(info.tags) if info else [],
    }


def report_fields(report: Report | None) -> Json:
    """The summary fields that come from the node's latest report."""
    sys = report.sys if report is not None else None
    return {
        "uptime_s": sys.uptime_s if sys else None,
        "load": list(sys.load) if sys and sys.load is not None else None,
        "clients": report.clients if report is not None else None,
    }


StateOf = Callable[[str], str]
"""node id → its condition: online, offline, silent, unreachable, flapping"""


def plain_state(node: NodeState) -> str:
    return "online" if node.online else "offline"


def node_summary(node: NodeState, counts: tuple[int, int], coarsen_grid_deg: float,
                 state_of: StateOf | None = None) -> Json:
    """The public summary of one node, as listed by /api/v1/nodes."""
    return {
        **info_fields(node.id, node.info, coarsen_grid_deg),
        "online": node.online,
        "state": state_of(node.id) if state_of is not None else plain_state(node),
        "last_seen": node.last_seen,
        **report_fields(node.last_report),
        "link_count": counts[0],
        "neighbours": counts[1],
    }


def nodes_list(topology: TopologyView, coarsen_grid_deg: float,
               state_of: StateOf | None = None) -> list[Json]:
    """Every node's public summary, sorted by id."""
    counts = link_counts(topology.links.values())
    none = (0, 0)
    nodes = topology.nodes
    return [
        node_summary(nodes[nid], counts.get(nid, none), coarsen_grid_deg, state_of)
        for nid in sorted(nodes)
    ]


def public_link(link: LinkState) -> Json:
    """One resolved directed link as listed by /api/v1/links."""
    return {
        "src": link.key.src,
        "dst": link.dst,
        "iface": safe_text(link.key.iface),
        "kind": link.key.kind,
        "metrics": link_metrics(link.sample),
        "last_seen": link.last_seen,
    }


def links_list(topology: TopologyView) -> list[Json]:
    """Every resolved directed link; unresolved ones (peer known only by MAC) are left out."""
    return [public_link(link) for link in topology.links.values() if link.dst is not None]


def _view(link: LinkState) -> Json:
    return {
        "iface": safe_text(link.key.iface),
        "metrics": link_metrics(link.sample),
        "last_seen": link.last_seen,
    }


def node_links_detail(topology: TopologyView, node_id: str) -> tuple[list[Json], int]:
    """The node's links paired by direction, and how many of its links are unresolved.

    Each entry is one neighbour on one mechanism: `out` is this node's view of the link
    (node → peer), `in` the peer's view (peer → node, the reverse), either may be null.
    """
    entries: list[Json] = []
    paired: set[LinkKey] = set()
    unresolved = 0
    incoming: list[LinkState] = []
    for link in topology.node_links(node_id):
        if link.key.src != node_id:
            incoming.append(link)
            continue
        if link.dst is None:
            unresolved += 1
            continue
        rev = topology.reverse(link.key)
        if rev is not None:
            paired.add(rev.key)
        entries.append(
            {
                "peer": link.dst,
                "kind": link.key.kind,
                "out": _view(link),
                "in": _view(rev) if rev is not None else None,
            }
        )
    for link in incoming:
        if link.key in paired or link.dst != node_id:
            continue
        entries.append(
            {"peer": link.key.src, "kind": link.key.kind, "out": None, "in": _view(link)}
        )
    entries.sort(key=lambda e: (e["peer"], e["kind"], (e["out"] or e["in"])["iface"] or ""))
    return entries, unresolved


def _sys(report: Report | None) -> Json | None:
    if report is None or report.sys is None:
        return None
    s = report.sys
    return {
        "uptime_s": s.uptime_s,
        "load": list(s.load) if s.load is not None else None,
        "mem_total_kb": s.mem_total_kb,
        "mem_avail_kb": s.mem_avail_kb,
        "rootfs_used_pct": s.rootfs_used_pct,
    }


def _radios(report: Report | None) -> list[Json]:
    if report is None:
        return []
    return [
        {
            "iface": safe_text(r.iface),
            "freq_mhz": r.freq_mhz,
            "channel": r.channel,
            "width_mhz": r.width_mhz,
            "noise_dbm": r.noise_dbm,
            "txpower_dbm": r.txpower_dbm,
            "busy_pct": r.busy_pct,
            "clients": r.clients,
        }
        for r in report.radios
    ]


def _ifaces(report: Report | None) -> list[Json]:
    if report is None:
        return []
    return [
        {
            "name": safe_text(i.name),
            "up": i.up,
            "rx_bytes": i.rx_bytes,
            "tx_bytes": i.tx_bytes,
            "rx_errors": i.rx_errors,
            "tx_errors": i.tx_errors,
        }
        for i in report.ifaces
    ]


def node_detail(topology: TopologyView, node_id: str, coarsen_grid_deg: float,
                state_of: StateOf | None = None) -> Json | None:
    """The public view of one node with its links both ways; None if unknown."""
    node = topology.nodes.get(node_id)
    if node is None:
        return None
    links, unresolved = node_links_detail(topology, node_id)
    neighbours = {e["peer"] for e in links}
    link_count = sum((e["out"] is not None) + (e["in"] is not None) for e in links)
    out = node_summary(node, (link_count, len(neighbours)), coarsen_grid_deg, state_of)
    report = node.last_report
    out.update(
        {
            "first_seen": node.first_seen,
            "interval_s": node.interval_s,
            "report_ts": report.ts if report is not None else None,
            "sys": _sys(report),
            "radios": _radios(report),
            "ifaces": _ifaces(report),
            "links": links,
            "unresolved_links": unresolved,
        }
    )
    return out


def _safe_list(values: Iterable[str]) -> list[str]:
    return [v for v in values if safe_text(v) is not None]


def count_online(nodes: Mapping[str, NodeState]) -> int:
    """How many nodes are online."""
    return sum(1 for n in nodes.values() if n.online)


class PublicRenderer:
    """`nodes_list` and `links_list` as JSON bytes, re-encoding only what changed.

    Encoded fragments are kept with the objects they came from; the topology replaces a
    model (info, report, link sample) when new data arrives, so an identity check tells
    what is unchanged. A node's fragment is spliced from its info part, its report part
    and the few live fields (online, last_seen, counts) that change with every message.
    Entries of nodes and links that are gone drop out on the next call.
    """

    def __init__(self) -> None:
        self._info: dict[str, tuple[Info | None, float, bytes]] = {}
        self._report: dict[str, tuple[Report | None, bytes]] = {}
        self._links: dict[LinkKey, tuple[LinkSample, float, str | None, bytes]] = {}

    def nodes_json(self, topology: TopologyView, coarsen_grid_deg: float,
                   state_of: StateOf | None = None) -> bytes:
        """`{"nodes": [...]}` as `nodes_list` gives it."""
        counts = link_counts(topology.links.values())
        none = (0, 0)
        old_info, old_report = self._info, self._report
        new_info: dict[str, tuple[Info | None, float, bytes]] = {}
        new_report: dict[str, tuple[Report | None, bytes]] = {}
        nodes = topology.nodes
        parts: list[bytes] = []
        for nid in sorted(nodes):
            node = nodes[nid]
            info, report = node.info, node.last_report
            ih = old_info.get(nid)
            if ih is None or ih[0] is not info or ih[1] != coarsen_grid_deg:
                ih = (info, coarsen_grid_deg, dump(info_fields(nid, info, coarsen_grid_deg))[1:-1])
            new_info[nid] = ih
            rh = old_report.get(nid)
            if rh is None or rh[0] is not report:
                rh = (report, dump(report_fields(report))[1:-1])
            new_report[nid] = rh
            c = counts.get(nid, none)
            last_seen = node.last_seen
            state = state_of(nid) if state_of is not None else plain_state(node)
            parts.append(
                b'{%b,"online":%b,"state":"%b","last_seen":%b,%b,"link_count":%d,"neighbours":%d}'
                % (
                    ih[2],
                    b"true" if node.online else b"false",
                    state.encode(),
                    b"null" if last_seen is None else repr(float(last_seen)).encode(),
                    rh[1],
                    c[0],
                    c[1],
                )
            )
        self._info, self._report = new_info, new_report
        return b'{"nodes":[' + b",".join(parts) + b"]}"

    def links_json(self, topology: TopologyView) -> bytes:
        """`{"links": [...]}` as `links_list` gives it."""
        old = self._links
        new: dict[LinkKey, tuple[LinkSample, float, str | None, bytes]] = {}
        parts: list[bytes] = []
        for key, link in topology.links.items():
            if link.dst is None:
                continue
            hit = old.get(key)
            if (
                hit is None
                or hit[0] is not link.sample
                or hit[1] != link.last_seen
                or hit[2] != link.dst
            ):
                hit = (link.sample, link.last_seen, link.dst, dump(public_link(link)))
            new[key] = hit
            parts.append(hit[3])
        self._links = new
        return b'{"links":[' + b",".join(parts) + b"]}"


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dump(value: Any) -> bytes:
    """Compact JSON bytes (one shared encoder: `json.dumps` with options builds one per call)."""
    return _ENCODE(value).encode()
