"""The topology as a NetJSON NetworkGraph (http://netjson.org/rfc.html#section-4).

One NetJSON link per pair of nodes: both ends' views of every link between the two are
folded into one, with the lowest cost. Nodes carry `properties.location {lat, lng}` as
netjsongraph.js expects for its map view, privacy-filtered like the rest of the API.
A peer that links point at but that never spoke (a router without the agent) is listed as
a node with `properties.agent = false`, so every link's ends are listed nodes.
The graph has no timestamps (the list APIs do), so a report that repeats the same
numbers changes nothing and its encoded fragment is reused.

`cost` is an ETX-like number (1 = perfect, larger = worse) so that links measured by
different mechanisms can be drawn on one scale; `cost_text` names its source. It is for
drawing, not routing: ETX as reported; Babel/BMX7 `cost` / 256; batman `tq` as 255 / tq;
OLSR `lq`, `nlq` as 1 / (lq · nlq); Wi-Fi signal mapped linearly from 1 at -60 dBm to 10
at -90 dBm; 1 for a link with none of these (ethernet, vpn).
"""

from __future__ import annotations

import json
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple

import meshmon
from meshmon.model.state import LinkKey, LinkSample, NodeState
from meshmon.web.public import Json, TopologyView, dump, public_location, safe_text

PROTOCOL = "meshmon"
METRIC = "ETX"
MAX_COST = 1000.0
"""cost of a link whose quality is zero (tq 0, lq 0)"""
_SUMMARY_METRICS = ("signal_dbm", "snr_db", "expected_tput_mbps", "tq", "etx", "cost")
"""what each direction shows in `properties.source_view` / `target_view`"""
_COST_INPUTS = ("etx", "cost", "tq", "lq", "nlq", "signal_avg_dbm", "signal_dbm")
_get_inputs = attrgetter(*dict.fromkeys(_SUMMARY_METRICS + _COST_INPUTS))


def link_cost(sample: LinkSample) -> tuple[float, str]:
    """An ETX-like cost of one directed link and a short text naming its source."""
    if sample.etx is not None:
        return float(sample.etx), f"etx {sample.etx:g}"
    if sample.cost is not None:
        return max(sample.cost / 256.0, 1.0), f"cost {sample.cost:g}"
    if sample.tq is not None:
        return (255.0 / sample.tq if sample.tq else MAX_COST), f"tq {sample.tq}"
    if sample.lq is not None and sample.nlq is not None:
        q = sample.lq * sample.nlq
        return (1.0 / q if q else MAX_COST), f"lq {sample.lq:g} nlq {sample.nlq:g}"
    signal = sample.signal_avg_dbm if sample.signal_avg_dbm is not None else sample.signal_dbm
    if signal is not None:
        clipped = min(max(signal, -90.0), -60.0)
        return 1.0 + (-60.0 - clipped) * 9.0 / 30.0, f"signal {signal:g} dBm"
    return 1.0, "no metric"


class _LinkEntry(NamedTuple):
    sample: LinkSample
    inputs: tuple[object, ...]
    """kind and the metrics cost and summary are made of: equal inputs, same entry"""
    cost: float
    cost_text: str
    summary: bytes
    """the encoded `source_view`/`target_view` object"""


class NetJsonRenderer:
    """The NetworkGraph as JSON bytes, re-encoding only nodes and links that changed.

    Same idea as `public.PublicRenderer`: fragments are kept with the objects they came
    from and reused while those are the same objects (the topology replaces, not mutates).
    """

    def __init__(self, label: str = "meshmon") -> None:
        self.label = label
        self._nodes: dict[str, tuple[object, bool, float, bytes]] = {}
        self._links: dict[LinkKey, _LinkEntry] = {}
        self._pairs: dict[tuple[str, str], tuple[bytes | None, bytes | None, bytes]] = {}

    def graph_json(self, topology: TopologyView, coarsen_grid_deg: float) -> bytes:
        """The whole topology as a NetJSON NetworkGraph (resolved links only)."""
        nodes = topology.nodes
        unspoken: set[str] = set()
        # per unordered pair (a < b): the best (lowest cost) directed link each way
        old_links = self._links
        new_links: dict[LinkKey, _LinkEntry] = {}
        best: dict[tuple[str, str], list[_LinkEntry | None]] = {}
        for key, link in topology.links.items():
            dst = link.dst
            src = key.src
            if dst is None or dst == src:
                continue
            if dst not in nodes:
                unspoken.add(dst)
            sample = link.sample
            entry = old_links.get(key)
            if entry is None or entry.sample is not sample:
                inputs = (key.kind, _get_inputs(sample))
                if entry is None or entry.inputs != inputs:
                    cost, text = link_cost(sample)
                    entry = _LinkEntry(sample, inputs, cost, text, _summary(key.kind, inputs[1]))
                else:  # a new report with the same numbers: keep the encoded entry
                    entry = entry._replace(sample=sample)
            new_links[key] = entry
            pair, side = ((src, dst), 0) if src < dst else ((dst, src), 1)
            views = best.get(pair)
            if views is None:
                views = best[pair] = [None, None]
            current = views[side]
            if current is None or entry.cost < current.cost:
                views[side] = entry
        self._links = new_links

        old_pairs = self._pairs
        new_pairs: dict[tuple[str, str], tuple[bytes | None, bytes | None, bytes]] = {}
        link_parts: list[bytes] = []
        for pair, (fwd, rev) in best.items():
            phit = old_pairs.get(pair)
            # an entry's summary bytes are new exactly when the entry was rebuilt
            fwd_id = fwd.summary if fwd is not None else None
            rev_id = rev.summary if rev is not None else None
            if phit is None or phit[0] is not fwd_id or phit[1] is not rev_id:
                phit = (fwd_id, rev_id, _link_object(pair, fwd, rev))
            new_pairs[pair] = phit
            link_parts.append(phit[2])
        self._pairs = new_pairs

        old_nodes = self._nodes
        new_nodes: dict[str, tuple[object, bool, float, bytes]] = {}
        node_parts: list[bytes] = []
        for nid in sorted(nodes.keys() | unspoken):
            node = nodes.get(nid)
            if node is None:  # a peer without the agent: known only from links to it
                node_parts.append(dump({"id": nid, "label": nid, "properties": {"agent": False}}))
                continue
            hit = old_nodes.get(nid)
            if (
                hit is None
                or hit[0] is not node.info
                or hit[1] != node.online
                or hit[2] != coarsen_grid_deg
            ):
                frag = dump(node_object(node, coarsen_grid_deg))
                hit = (node.info, node.online, coarsen_grid_deg, frag)
            new_nodes[nid] = hit
            node_parts.append(hit[3])
        self._nodes = new_nodes

        head = {
            "type": "NetworkGraph",
            "protocol": PROTOCOL,
            "version": meshmon.__version__,
            "metric": METRIC,
            "label": self.label,
        }
        return (
            dump(head)[:-1]
            + b',"nodes":['
            + b",".join(node_parts)
            + b'],"links":['
            + b",".join(link_parts)
            + b"]}"
        )


def network_graph(topology: TopologyView, coarsen_grid_deg: float, label: str = "meshmon") -> Json:
    """The NetworkGraph as a dict (uncached; for tests and one-off exports)."""
    graph: Json = json.loads(NetJsonRenderer(label).graph_json(topology, coarsen_grid_deg))
    return graph


def node_object(node: NodeState, coarsen_grid_deg: float) -> Json:
    """One NetJSON node: id, label (hostname or id), public properties."""
    info = node.info
    props: Json = {
        "agent": True,
        "online": node.online,
        "gateway": node.is_gateway,
    }
    hostname = safe_text(info.hostname) if info else None
    if hostname:
        props["hostname"] = hostname
    loc = public_location(info, coarsen_grid_deg)
    if loc is not None:
        props["location"] = {"lat": loc["lat"], "lng": loc["lon"]}
        if loc.get("approximate"):
            props["location_approximate"] = True
    return {"id": node.id, "label": hostname or node.id, "properties": props}


def _link_object(pair: tuple[str, str], fwd: _LinkEntry | None, rev: _LinkEntry | None) -> bytes:
    """One encoded NetJSON link. Hand-made: this runs for every changed link and the
    parts are plain (node ids and kinds need no escaping, metrics are numbers)."""
    chosen = rev if fwd is None or (rev is not None and rev.cost < fwd.cost) else fwd
    assert chosen is not None
    return (
        b'{"source":%b,"target":%b,"cost":%b,"cost_text":%b,"properties":{"source_view":%b,"target_view":%b}}'
        % (
            _quoted(pair[0]),
            _quoted(pair[1]),
            _number(round(chosen.cost, 3)),
            _quoted(chosen.cost_text),
            fwd.summary if fwd is not None else b"null",
            rev.summary if rev is not None else b"null",
        )
    )


@lru_cache(maxsize=131072)
def _quoted(text: str) -> bytes:
    return dump(text)


def _number(value: float) -> bytes:
    # float.__repr__ is what the json module writes for finite floats
    return repr(value).encode() if isinstance(value, float) else b"%d" % value


_SUMMARY_KEYS = tuple(f',"{name}":' for name in _SUMMARY_METRICS)


def _summary(kind: str, values: tuple[object, ...]) -> bytes:
    """The encoded view of one direction from the inputs tuple (summary metrics first).
    Built as one str: repr() of an int or a finite float is what JSON wants."""
    text = '{"kind":' + _quoted(kind).decode()
    for key, value in zip(_SUMMARY_KEYS, values, strict=False):
        if value is not None:
            text += key + repr(value)
    return (text + "}").encode()
