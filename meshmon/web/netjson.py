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
from collections.abc import Collection
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple

import meshmon
from meshmon.model.state import LinkKey, LinkSample, NodeState
from meshmon.model.topology import Topology
from meshmon.web.incremental import Incremental, Pair, pair_of
from meshmon.web.public import Json, dump, public_location, public_source, safe_text

PROTOCOL = "meshmon"
METRIC = "ETX"
MAX_COST = 1000.0
"""cost of a link whose quality is zero (tq 0, lq 0)"""
_SUMMARY_METRICS = ("signal_dbm", "snr_db", "expected_tput_mbps", "tq", "etx", "cost")
"""what each direction shows in `properties.source_view` / `target_view`"""
_COST_INPUTS = ("etx", "cost", "tq", "lq", "nlq", "signal_avg_dbm", "signal_dbm")
_NO_AGENT = object()
"""stands for the info of a peer that never spoke"""
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


class NetJsonRenderer(Incremental):
    """The NetworkGraph as JSON bytes, re-encoding only the links that changed.

    Kept per directed link: its cost and encoded view (a new report with the same numbers
    keeps them); per node pair: the encoded NetJSON link, rebuilt when the best view of
    either direction changes. Node objects are checked on every call (info object, online
    flag): cheap, and online changes without a message.
    """

    def __init__(self, label: str = "meshmon") -> None:
        super().__init__()
        self.label = label
        self._grid = 0.0
        self._nodes: dict[str, tuple[object, bool, bytes]] = {}
        self._links: dict[LinkKey, _LinkEntry] = {}
        self._pairs: dict[Pair, tuple[bytes | None, bytes | None, bytes]] = {}
        self._order: list[Pair] | None = None

    def forget(self) -> None:
        self._nodes, self._links, self._pairs, self._order = {}, {}, {}, None

    def apply(self, topology: Topology, links: Collection[LinkKey], nodes: Collection[str]
              ) -> None:
        entries, current = self._links, topology.links
        dirty: set[Pair] = set()
        for key in links:
            link = current.get(key)
            old = entries.get(key)
            if link is None or link.dst is None:
                if old is not None:
                    del entries[key]
                    dirty.add(pair_of(key.src, key.peer))
                continue
            sample = link.sample
            if old is not None and old.sample is sample:
                continue
            inputs = (key.kind, _get_inputs(sample))
            if old is not None and old.inputs == inputs:
                # a new report with the same numbers: keep the encoded entry
                entries[key] = old._replace(sample=sample)
                continue
            cost, text = link_cost(sample)
            entries[key] = _LinkEntry(sample, inputs, cost, text, _summary(key.kind, inputs[1]))
            dirty.add(pair_of(key.src, key.peer))
        for pair in dirty:
            self._render_pair(topology, pair)

    def _render_pair(self, topology: Topology, pair: Pair) -> None:
        """One NetJSON link from the best (lowest cost) directed link each way."""
        entries = self._links
        views: list[_LinkEntry | None] = [None, None]
        for link in topology.pair_links(*pair):
            entry = entries.get(link.key)
            if entry is None:
                continue
            side = 0 if link.key.src == pair[0] else 1
            best = views[side]
            if best is None or entry.cost < best.cost:
                views[side] = entry
        fwd, rev = views
        if fwd is None and rev is None:
            if self._pairs.pop(pair, None) is not None:
                self._order = None
            return
        # an entry's summary bytes are new exactly when the entry was rebuilt
        fwd_id = fwd.summary if fwd is not None else None
        rev_id = rev.summary if rev is not None else None
        old = self._pairs.get(pair)
        if old is None:
            self._order = None
        elif old[0] is fwd_id and old[1] is rev_id:
            return
        self._pairs[pair] = (fwd_id, rev_id, _link_object(pair, fwd, rev))

    def graph_json(self, topology: Topology, coarsen_grid_deg: float) -> bytes:
        """The whole topology as a NetJSON NetworkGraph (resolved links only)."""
        if coarsen_grid_deg != self._grid:
            self.clear()
            self._grid = coarsen_grid_deg
        self.ready(topology)
        nodes, cache = topology.nodes, self._nodes
        node_parts: list[bytes] = []
        # the graph holds every node that spoke and every peer a resolved link points at
        for nid in sorted(topology.graph):
            node = nodes.get(nid)
            info, online = (node.info, node.online) if node is not None else (_NO_AGENT, False)
            hit = cache.get(nid)
            if hit is None or hit[0] is not info or hit[1] != online:
                if node is None:  # a peer without the agent: known only from links to it
                    frag = dump({"id": nid, "label": nid, "properties": {"agent": False}})
                else:
                    frag = dump(node_object(node, coarsen_grid_deg))
                hit = cache[nid] = (info, online, frag)
            node_parts.append(hit[2])
        if len(cache) > len(node_parts):
            for nid in cache.keys() - set(topology.graph):
                del cache[nid]
        if self._order is None:
            self._order = sorted(self._pairs)
        pairs = self._pairs
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
            + b",".join([pairs[pair][2] for pair in self._order])
            + b"]}"
        )


def network_graph(topology: Topology, coarsen_grid_deg: float, label: str = "meshmon") -> Json:
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
    source = public_source(info)
    if source is not None:  # a node that runs no agent: the bridge that speaks for it
        props["source"] = source
    loc = public_location(info, coarsen_grid_deg)
    if loc is not None:
        props["location"] = {"lat": loc["lat"], "lng": loc["lon"]}
        if loc.get("approximate"):
            props["location_approximate"] = True
    return {"id": node.id, "label": hostname or node.id, "properties": props}


def _link_object(pair: Pair, fwd: _LinkEntry | None, rev: _LinkEntry | None) -> bytes:
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
