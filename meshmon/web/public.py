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
from collections.abc import Callable, Collection, Iterable, Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

import networkx as nx

from meshmon.model.addresses import safe_text
from meshmon.model.fastwire import AnyReport
from meshmon.model.state import LinkKey, LinkSample, LinkState, NodeState
from meshmon.model.topology import Topology
from meshmon.model.wire import LINK_METRICS, Info
from meshmon.web.incremental import Incremental

Json = dict[str, Any]


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


def link_counts(graph: nx.Graph) -> dict[str, tuple[int, int]]:
    """Per node with links: (resolved directed links it is an end of, distinct resolved
    neighbours), from the topology graph (its edges count their directed links)."""
    return {
        node: (sum(edge["links"] for edge in neighbours.values()), len(neighbours))
        for node, neighbours in graph.adj.items()
        if neighbours
    }


def public_source(info: Info | None) -> Json | None:
    """Who speaks for a node that runs no agent: `{"kind": "snmp", "via": "bridge-1"}`
    (the source kind and the bridge id are public); None for a node's own agent."""
    source = info.source if info is not None else None
    if source is None:
        return None
    return {"kind": source.kind, "via": safe_text(source.via)}


def source_text(source: Json | None) -> str | None:
    """`snmp via bridge-1`, as the pages show a `public_source`."""
    if source is None:
        return None
    return f"{source['kind']} via {source['via']}" if source["via"] else source["kind"]


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
        "source": public_source(info),
    }


def report_fields(report: AnyReport | None) -> Json:
    """The summary fields that come from the node's latest report."""
    sys = report.sys if report is not None else None
    return {
        "uptime_s": sys.uptime_s if sys else None,
        "load": list(sys.load) if sys and sys.load is not None else None,
        "clients": report.clients if report is not None else None,
    }


StateOf = Callable[[str], str]
"""node id → its condition: online, offline, silent, unreachable, flapping, unmonitored"""


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


def nodes_list(topology: Topology, coarsen_grid_deg: float,
               state_of: StateOf | None = None) -> list[Json]:
    """Every node's public summary, sorted by id."""
    counts = link_counts(topology.graph)
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


def links_list(topology: Topology) -> list[Json]:
    """Every resolved directed link, by key; unresolved ones (peer known only by MAC) are
    left out."""
    links = topology.links
    return [public_link(links[key]) for key in sorted(links) if links[key].dst is not None]


def _view(link: LinkState) -> Json:
    return {
        "iface": safe_text(link.key.iface),
        "metrics": link_metrics(link.sample),
        "last_seen": link.last_seen,
    }


def node_links_detail(topology: Topology, node_id: str) -> tuple[list[Json], int]:
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


def _sys(report: AnyReport | None) -> Json | None:
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


def _radios(report: AnyReport | None) -> list[Json]:
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


def _ifaces(report: AnyReport | None) -> list[Json]:
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


def node_detail(topology: Topology, node_id: str, coarsen_grid_deg: float,
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


def bridges_list(topology: Topology, state_of: StateOf | None = None) -> list[Json]:
    """Every bridge the collector knows (by its status or a node's `info.source.via`):
    online or not (None: never heard from), since when, how many nodes it speaks for, of
    which source kinds, and how many of them are unmonitored now."""
    bridges, nodes = topology.bridges, topology.nodes
    out: list[Json] = []
    for bridge in bridges.ids():
        if safe_text(bridge) is None:
            continue  # an id that looks like an address (only a bridge's own choice)
        state = bridges.states.get(bridge)
        kinds: dict[str, int] = {}
        unmonitored = 0
        members = bridges.nodes_of(bridge)
        for nid in members:
            node = nodes.get(nid)
            source = node.info.source if node is not None and node.info is not None else None
            if source is not None:
                kinds[source.kind] = kinds.get(source.kind, 0) + 1
            if state_of is not None and state_of(nid) == "unmonitored":
                unmonitored += 1
        out.append({
            "id": bridge,
            "online": state.online if state is not None else None,
            "since": state.since if state is not None else None,
            "last_seen": state.last_seen if state is not None else None,
            "nodes": len(members),
            "kinds": dict(sorted(kinds.items())),
            "unmonitored": unmonitored,
        })
    return out


def _safe_list(values: Iterable[str]) -> list[str]:
    return [v for v in values if safe_text(v) is not None]


def count_online(nodes: Mapping[str, NodeState], held: Collection[str] = ()) -> int:
    """How many nodes are online (not counting the `held` ones: their bridge is silent,
    so their online flag is only what was last heard)."""
    if held:
        return sum(1 for nid, n in nodes.items() if n.online and nid not in held)
    return sum(1 for n in nodes.values() if n.online)


def count_pairs(graph: nx.Graph) -> int:
    """The graph's edges (node pairs): `number_of_edges()` from networkx's own dicts, 2 ms
    instead of 15 at 35,000 nodes (its degree view costs a Python call per node)."""
    return sum(map(len, graph._adj.values())) // 2


class NodesRenderer(Incremental):
    """`nodes_list` as JSON bytes (`{"nodes": [...]}`), re-encoding only what changed.

    A node's fragment is spliced from its info part and its report part, kept while the
    node holds the same info / report object (the topology replaces, never mutates them),
    and the live fields (online, state, last_seen, link counts) read on every call: those
    are cheap, and change without a message (expiry, health).
    """

    def __init__(self) -> None:
        super().__init__()
        self._grid = 0.0
        self._info: dict[str, tuple[Info | None, bytes]] = {}
        self._report: dict[str, tuple[AnyReport | None, bytes]] = {}
        self._counts: dict[str, tuple[int, int]] | None = None
        """link and neighbour counts per node, kept while the set of links stays"""

    def forget(self) -> None:
        self._info, self._report, self._counts = {}, {}, None

    def links_came_or_went(self) -> None:
        self._counts = None

    def apply(self, topology: Topology, links: Collection[LinkKey], nodes: Collection[str]
              ) -> None:
        for nid in nodes:
            node = topology.nodes.get(nid)
            if node is None:
                self._info.pop(nid, None)
                self._report.pop(nid, None)
                continue
            self._info_part(node)
            self._report_part(node)

    def _info_part(self, node: NodeState) -> bytes:
        hit = self._info.get(node.id)
        if hit is None or hit[0] is not node.info:
            part = dump(info_fields(node.id, node.info, self._grid))[1:-1]
            hit = self._info[node.id] = (node.info, part)
        return hit[1]

    def _report_part(self, node: NodeState) -> bytes:
        hit = self._report.get(node.id)
        if hit is None or hit[0] is not node.last_report:
            hit = self._report[node.id] = (node.last_report,
                                           dump(report_fields(node.last_report))[1:-1])
        return hit[1]

    def nodes_json(self, topology: Topology, coarsen_grid_deg: float,
                   state_of: StateOf | None = None) -> bytes:
        """`{"nodes": [...]}` as `nodes_list` gives it."""
        if coarsen_grid_deg != self._grid:
            self.clear()
            self._grid = coarsen_grid_deg
        self.ready(topology)
        counts = self._counts
        if counts is None:
            counts = self._counts = link_counts(topology.graph)
        none = (0, 0)
        nodes = topology.nodes
        info_part, report_part = self._info_part, self._report_part
        parts: list[bytes] = []
        for nid in sorted(nodes):
            node = nodes[nid]
            c = counts.get(nid, none)
            last_seen = node.last_seen
            state = state_of(nid) if state_of is not None else plain_state(node)
            parts.append(
                b'{%b,"online":%b,"state":"%b","last_seen":%b,%b,"link_count":%d,"neighbours":%d}'
                % (
                    info_part(node),
                    b"true" if node.online else b"false",
                    state.encode(),
                    b"null" if last_seen is None else repr(float(last_seen)).encode(),
                    report_part(node),
                    c[0],
                    c[1],
                )
            )
        return b'{"nodes":[' + b",".join(parts) + b"]}"


class LinksRenderer(Incremental):
    """`links_list` as JSON bytes (`{"links": [...]}`), re-encoding only changed links."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: dict[LinkKey, bytes] = {}
        self._order: list[LinkKey] | None = None

    def forget(self) -> None:
        self._parts, self._order = {}, None

    def apply(self, topology: Topology, links: Collection[LinkKey], nodes: Collection[str]
              ) -> None:
        parts, current = self._parts, topology.links
        for key in links:
            link = current.get(key)
            if link is None or link.dst is None:
                if parts.pop(key, None) is not None:
                    self._order = None
                continue
            if key not in parts:
                self._order = None
            parts[key] = dump(public_link(link))

    def links_json(self, topology: Topology) -> bytes:
        """`{"links": [...]}` as `links_list` gives it."""
        self.ready(topology)
        if self._order is None:
            self._order = sorted(self._parts)
        parts = self._parts
        return b'{"links":[' + b",".join([parts[key] for key in self._order]) + b"]}"


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# `json.dumps(separators=…, ensure_ascii=False)` as one C encoder made once: `dumps` and
# `JSONEncoder.encode` make a new one per call, which is half the cost of encoding the
# small fragments the documents are made of (no circular check: our values are trees)
_C_ENCODE = c_make_encoder(None, _not_serializable, encode_basestring, None, ":", ",",
                           False, False, True) if c_make_encoder is not None else None
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dump(value: Any) -> bytes:
    """Compact JSON bytes, as `json.dumps(value, separators=(",", ":"),
    ensure_ascii=False).encode()` gives them."""
    if _C_ENCODE is None:
        return _ENCODE(value).encode()
    return "".join(_C_ENCODE(value, 0)).encode()
