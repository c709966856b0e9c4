"""The document of `GET /api/v1/map`: one compact public JSON for the coverage map at `/`.

The map polls it every `[map] refresh_s`, so it carries only what is drawn and what the
summary line needs; a node's details come from `/api/v1/nodes/NODE` when it is clicked.
Optional keys are left out when they have no value (false, unknown, empty) so that a
network of thousands of nodes stays a small download:

```
{"generated_at": 1700000000.0,
 "summary": {"online": 3, "total": 4, "links": 3},
 "unlocated": 2,
 "unlocated_nodes": [{"id": "cellar", "name": "cellar-1", "state": "offline",
                      "gateway": true}],
 "nodes": [{"id": "alpha", "name": "alpha-roof", "lat": 52.520008, "lon": 13.404954,
            "state": "online",
            "approximate": true, "gateway": true, "clients": 7, "model": "…",
            "source": "snmp via bridge-1",
            "antennas": [{"azimuth_deg": 90.0, "width_deg": 60.0, "range_m": 800.0}]}],
 "links": [{"a": "alpha", "b": "bravo", "kind": "wifi", "quality": "good",
            "signal_dbm": -61, "tq": 200, "etx": 1.2, "tput_mbps": 60.5}]}
```

- `summary` counts what `/api/v1/nodes` lists: `total` nodes that have spoken, `online`
  of them, `unmonitored` (when there are any) the nodes whose bridge is silent, and
  `links`: **node pairs with a link, each pair counted once** whatever their mechanisms,
  interfaces and directions (the topology graph's edges, peers without an agent
  included). That is the one link count of the map page (header and legend);
  `links` below holds those pairs whose two ends are drawn, and `/api/v1/links` lists
  directed links (one per direction, interface and mechanism: several per pair).
- `unlocated` of the `total` have no public position (none announced, or private with
  `[privacy] coarsen_grid_deg = 0`) and are not in `nodes`; `unlocated_nodes` names them
  (`id`, `name`, `state`, `gateway` when true) so that the map can find, list and open
  them.
- `nodes`: position from `public.public_location` (a private node snapped to the grid,
  `approximate: true`, and without antennas: a sector drawn from a blurred point would
  pretend to know where the roof is); `name` is the hostname when it is safe to show,
  else the id; `state` is online/offline/silent/unreachable/flapping/unmonitored;
  `source` names the bridge that speaks for a node that runs no agent (`KIND via ID`).
- `links`: one per node pair where both ends are in `nodes`, over all directed links of
  the pair (both directions, every interface and mechanism). Each metric is the best
  either end reports (`signal_dbm` the strongest, falling back to `signal_avg_dbm`; `tq`
  the highest; `etx` the lowest; `tput_mbps` the highest `expected_tput_mbps`; rounded
  to 0.1 dBm, 0.01 ETX, 0.1 Mbit/s), `kind` the pair's most direct mechanism (wifi
  first, in the order of `wire.LINK_KINDS`).
- Key order within an object is not part of the contract. The response is gzipped for
  clients that accept it.

`quality` is decided by the first metric the pair has, in this order (the thresholds are
`quality_thresholds()`, shown in the map's legend):

| metric | good | fair | poor |
|---|---|---|---|
| signal (dBm) | ≥ `[installer] good_signal_dbm` (−65) | ≥ `marginal_signal_dbm` (−75) | below |
| batman TQ (0–255) | ≥ 200 | ≥ 120 | below |
| ETX (1 = perfect) | ≤ 1.5 | ≤ 3 | above |

and is `unknown` when it has none of them (e.g. plain ethernet). The signal thresholds
are the installer view's, so the map and the person on the roof give the same verdict;
with the default `[health]` thresholds (signal −80 dBm, TQ 100, ETX 4) a link the
maintainers are alerted about as degraded is always drawn poor.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Collection
from dataclasses import dataclass

from meshmon.config import Config
from meshmon.model.state import LinkKey, LinkSample, LinkState
from meshmon.model.topology import MAC_PREFIX, Topology
from meshmon.model.wire import LINK_KINDS, Info
from meshmon.web.incremental import Incremental, Pair, pair_of
from meshmon.web.public import (
    Json,
    StateOf,
    count_online,
    count_pairs,
    dump,
    plain_state,
    public_location,
    public_source,
    safe_text,
    source_text,
)

GOOD_TQ = 200
FAIR_TQ = 120
GOOD_ETX = 1.5
FAIR_ETX = 3.0
QUALITIES = ("good", "fair", "poor", "unknown")
_KIND_RANK = {kind: i for i, kind in enumerate(LINK_KINDS)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where good ends and fair begins, and fair and poor, per metric."""

    good_signal_dbm: float
    fair_signal_dbm: float
    good_tq: int = GOOD_TQ
    fair_tq: int = FAIR_TQ
    good_etx: float = GOOD_ETX
    fair_etx: float = FAIR_ETX

    def as_json(self) -> Json:
        return {
            "signal_dbm": [self.good_signal_dbm, self.fair_signal_dbm],
            "tq": [self.good_tq, self.fair_tq],
            "etx": [self.good_etx, self.fair_etx],
        }


def quality_thresholds(config: Config) -> Thresholds:
    """The link quality thresholds of this collector (signal ones from `[installer]`)."""
    inst = config.installer
    return Thresholds(inst.good_signal_dbm, inst.marginal_signal_dbm)


def quality(t: Thresholds, signal_dbm: float | None, tq: float | None,
            etx: float | None) -> str:
    """good / fair / poor from the first metric present (signal, TQ, ETX), else unknown."""
    if signal_dbm is not None:
        return _grade(signal_dbm >= t.good_signal_dbm, signal_dbm >= t.fair_signal_dbm)
    if tq is not None:
        return _grade(tq >= t.good_tq, tq >= t.fair_tq)
    if etx is not None:
        return _grade(etx <= t.good_etx, etx <= t.fair_etx)
    return "unknown"


def _grade(good: bool, fair: bool) -> str:
    return "good" if good else "fair" if fair else "poor"


def pair_entry(a: str, b: str, links: list[LinkState], t: Thresholds) -> Json:
    """The map's link between nodes `a` < `b` from every directed link between them."""
    kind, rank = "", 99
    signal = tq = etx = tput = None
    for link in links:  # one pass: this runs for every changed pair
        k = link.key.kind
        r = _KIND_RANK.get(k, 99)
        if not kind or r < rank:
            kind, rank = k, r
        s = link.sample
        v = s.signal_dbm if s.signal_dbm is not None else s.signal_avg_dbm
        if v is not None and (signal is None or v > signal):
            signal = v
        if s.tq is not None and (tq is None or s.tq > tq):
            tq = s.tq
        if s.etx is not None and (etx is None or s.etx < etx):
            etx = s.etx
        v = s.expected_tput_mbps
        if v is not None and (tput is None or v > tput):
            tput = v
    out: Json = {"a": a, "b": b, "kind": kind, "quality": quality(t, signal, tq, etx)}
    # rounded: a drawing needs no more, and thousands of links stay small on the wire
    if signal is not None:
        out["signal_dbm"] = _round(signal, 1)
    if tq is not None:
        out["tq"] = _round(tq, 0)
    if etx is not None:
        out["etx"] = _round(etx, 2)
    if tput is not None:
        out["tput_mbps"] = _round(tput, 1)
    return out


def _round(value: float, digits: int) -> float | int:
    rounded = round(value, digits)
    return int(rounded) if rounded == int(rounded) else rounded


def node_fixed(node_id: str, info: Info | None, grid: float) -> Json | None:
    """What the map shows of a node from its info; None when it has no public position."""
    where = public_location(info, grid)
    if where is None or info is None:
        return None
    approximate = bool(where.get("approximate"))
    out: Json = {
        "id": node_id,
        "name": safe_text(info.hostname) or node_id,
        "lat": round(where["lat"], 6),
        "lon": round(where["lon"], 6),
    }
    if approximate:
        out["approximate"] = True
    if info.gateway:
        out["gateway"] = True
    model = safe_text(info.model)
    if model:
        out["model"] = model
    source = source_text(public_source(info))
    if source:
        out["source"] = source
    if info.antennas and not approximate:
        out["antennas"] = [_antenna(a.azimuth_deg, a.width_deg, a.range_m)
                           for a in info.antennas]
    return out


def node_unlocated(node_id: str, info: Info | None) -> Json:
    """What the map knows of a node it cannot draw: its id, name and gateway flag."""
    out: Json = {"id": node_id, "name": (safe_text(info.hostname) if info else None) or node_id}
    if info is not None and info.gateway:
        out["gateway"] = True
    return out


def _antenna(azimuth: float, width: float, range_m: float | None) -> Json:
    out: Json = {"azimuth_deg": azimuth, "width_deg": width}
    if range_m is not None:
        out["range_m"] = range_m
    return out


class MapRenderer(Incremental):
    """`/api/v1/map` as JSON bytes, re-encoding only the nodes and pairs that changed.

    A node's fragment is its info part (kept while the node holds the same info object)
    plus state and clients, spliced in on every call; a pair's fragment is kept while its
    links' kinds and samples are the same (or equal), and re-rendered when a link of the
    pair changes or an end starts or stops being drawn (gets or loses a public position).
    """

    def __init__(self) -> None:
        super().__init__()
        self._grid = 0.0
        self._thresholds: Thresholds | None = None
        self._fixed: dict[str, tuple[Info | None, bytes | None]] = {}
        """node → (its info, its encoded fixed part; None when it is not drawn)"""
        self._unlocated: dict[str, bytes] = {}
        """node that is not drawn → its encoded `unlocated_nodes` part (without state)"""
        self._pairs: dict[Pair, tuple[list[tuple[str, LinkSample]], bytes]] = {}
        self._order: list[Pair] | None = None
        self._edges: int | None = None
        """the graph's edge count, kept while the set of links stays"""
        self._gzip: tuple[bytes, bytes] | None = None

    def forget(self) -> None:
        self._fixed, self._pairs, self._order, self._edges = {}, {}, None, None
        self._unlocated = {}

    def links_came_or_went(self) -> None:
        self._edges = None

    def apply(self, topology: Topology, links: Collection[LinkKey], nodes: Collection[str]
              ) -> None:
        dirty: set[Pair] = set()
        for nid in nodes:
            if self._refresh_node(topology, nid):
                dirty.update(_pairs_of(topology, nid))
        for key in links:
            if not key.peer.startswith(MAC_PREFIX):
                dirty.add(pair_of(key.src, key.peer))
        for pair in dirty:
            self._render_pair(topology, pair)

    def _refresh_node(self, topology: Topology, nid: str) -> bool:
        """Re-encode the node's fixed part if its info changed; True if it started or
        stopped being drawn."""
        node = topology.nodes.get(nid)
        hit = self._fixed.get(nid)
        if node is not None and hit is not None and hit[0] is node.info:
            return False
        was_drawn = hit is not None and hit[1] is not None
        if node is None:
            self._fixed.pop(nid, None)
            self._unlocated.pop(nid, None)
            return was_drawn
        fixed = node_fixed(nid, node.info, self._grid)
        part = None if fixed is None else dump(fixed)[1:-1]
        self._fixed[nid] = (node.info, part)
        if part is None:
            self._unlocated[nid] = dump(node_unlocated(nid, node.info))[1:-1]
        else:
            self._unlocated.pop(nid, None)
        return was_drawn != (part is not None)

    def _render_pair(self, topology: Topology, pair: Pair) -> None:
        a, b = pair
        ends = self._fixed.get(a), self._fixed.get(b)
        drawn = all(end is not None and end[1] is not None for end in ends)
        group = topology.pair_links(a, b) if drawn else []
        if not group:
            if self._pairs.pop(pair, None) is not None:
                self._order = None
            return
        inputs = [(link.key.kind, link.sample) for link in group]
        hit = self._pairs.get(pair)
        if hit is None:
            self._order = None
        # equality tries identity first, so unchanged samples cost a pointer compare; a
        # new report with the same numbers compares equal and keeps the bytes too
        elif hit[0] == inputs:
            return
        assert self._thresholds is not None
        self._pairs[pair] = (inputs, dump(pair_entry(a, b, group, self._thresholds)))

    def map_json(self, topology: Topology, config: Config, state_of: StateOf | None,
                 now: float) -> bytes:
        """The whole document (shape in the module docstring)."""
        grid, thresholds = config.privacy.coarsen_grid_deg, quality_thresholds(config)
        if grid != self._grid or thresholds != self._thresholds:  # every node and pair anew
            self.clear()
            self._grid, self._thresholds = grid, thresholds
        self.ready(topology)
        nodes, fixed = topology.nodes, self._fixed
        if len(fixed) > len(nodes):  # nodes that are gone
            for nid in fixed.keys() - nodes.keys():
                self._redraw(topology, nid)
        parts: list[bytes] = []
        hidden: list[bytes] = []
        for nid in sorted(nodes):
            node = nodes[nid]
            hit = fixed.get(nid)
            if hit is None or hit[0] is not node.info:  # changed without a change note
                self._redraw(topology, nid)
                hit = fixed[nid]
            state = state_of(nid) if state_of is not None else plain_state(node)
            if hit[1] is None:
                hidden.append(b'{%b,"state":"%b"}' % (self._unlocated[nid], state.encode()))
                continue
            report = node.last_report
            clients = report.clients if report is not None else None
            parts.append(b'{%b,"state":"%b"%b}' % (
                hit[1], state.encode(), b"" if clients is None else b',"clients":%d' % clients))
        edges = self._edges
        if edges is None:
            edges = self._edges = count_pairs(topology.graph)
        held = topology.bridges.held
        summary = {"online": count_online(nodes, held), "total": len(nodes), "links": edges}
        if held:
            summary["unmonitored"] = len(held)
        head = dump({"generated_at": now, "summary": summary, "unlocated": len(hidden)})
        if self._order is None:
            self._order = sorted(self._pairs)
        pairs = self._pairs
        links = b",".join([pairs[pair][1] for pair in self._order])
        return b'%b,"unlocated_nodes":[%b],"nodes":[%b],"links":[%b]}' % (
            head[:-1], b",".join(hidden), b",".join(parts), links)

    def _redraw(self, topology: Topology, nid: str) -> None:
        if self._refresh_node(topology, nid):
            for pair in _pairs_of(topology, nid):
                self._render_pair(topology, pair)

    async def gzipped(self, body: bytes) -> bytes:
        """`body` gzip-compressed, kept while the same body is served (the cache's TTL).

        Compressed in a thread (zlib lets go of the GIL): half a megabyte takes ~10 ms,
        which the event loop should spend on ingest."""
        kept = self._gzip
        if kept is not None and kept[0] is body:
            return kept[1]
        zipped = await asyncio.to_thread(gzip.compress, body, 6)
        self._gzip = (body, zipped)
        return zipped


def _pairs_of(topology: Topology, nid: str) -> list[Pair]:
    """The node pairs of `nid` and its graph neighbours."""
    if nid not in topology.graph:
        return []
    return [pair_of(nid, peer) for peer in topology.graph.adj[nid]]


def map_document(topology: Topology, config: Config, state_of: StateOf | None,
                 now: float) -> Json:
    """The document as a dict (uncached; for tests and one-off exports)."""
    doc: Json = json.loads(MapRenderer().map_json(topology, config, state_of, now))
    return doc
