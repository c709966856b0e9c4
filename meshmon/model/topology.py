"""The topology core: nodes, directed links and the undirected mesh graph, kept up to date
message by message. Pure: no clock, no I/O; every call that needs the time gets `now`.

Choices the rest of the collector relies on:

- `nodes` holds only nodes that have spoken (status, info or report). `graph` holds every
  spoken node plus every resolved peer that a link points at, even one that never spoke
  (a router without the agent is still part of the mesh); such a peer leaves the graph
  with its last link.
- A link is resolved by `peer` (node id) first, else by `peer_mac` through the MACs nodes
  announce in `info.macs`. Unresolved links are keyed `LinkKey(src, "mac:<mac>", …)` and
  re-keyed when a node announces that MAC. Links that resolve to their own source are
  ignored.
- Each direction is its own `LinkState` and ages out on its own timer: A→B is removed
  when A has not reported it for `link_timeout_s`, whatever B reports. The radio link
  (the graph edge A–B) therefore lives while either end reports it.
- A node is online after a report or `status online`, offline at once on `status
  offline` (the last will), and offline when it has sent nothing for
  `offline_after_intervals` × its report interval (the larger of the last report's and
  the info's `interval_s`, so the end of installer fast mode is not an outage).
- A node that a bridge speaks for (`info.source.via`) neither times out nor has its
  links age while that bridge is offline; when it is back, their timers count from its
  return (`meshmon.model.bridges`).
- `now` is expected not to go backwards. State changes go through the methods: expire()
  remembers the earliest moment anything can expire and skips its scans until then.
- The topology keeps no record of what changed: each method returns it, and the core
  (`meshmon.model.core`) writes it to its change log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from sys import intern
from typing import Any, NamedTuple

import networkx as nx

from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.analysis import Analysis, weak_points
from meshmon.model.bridges import BridgeChange, Bridges
from meshmon.model.fastwire import AnyReport, without_links
from meshmon.model.peers import MacOwners
from meshmon.model.state import LinkKey, LinkSample, LinkState, NodeState
from meshmon.model.wire import BridgeStatus, Info, Status

MAC_PREFIX = "mac:"
"""LinkKey.peer of a link whose peer MAC no node has announced (node ids cannot hold ':')"""
_by_key = attrgetter("key")
_identity = attrgetter("peer", "peer_mac", "iface", "kind")


class ReportLinks(NamedTuple):
    """What apply_report() did with the report's links."""

    dsts: tuple[str | None, ...]
    """`dsts[i]` is the node `report.links[i]` points at, or None when its MAC is not
    known yet or it points back at the reporting node (ignored). A tuple: the SQLite store
    queues it with each report, and a queued entry holding a list stays tracked by the
    garbage collector (scanned by the young and middle collections) until written."""
    keys: list[LinkKey]
    """the links upserted, in report order"""
    states: list[LinkState]
    """their states (`states[i].key == keys[i]`)"""
    all_states: list[LinkState | None]
    """the state of each `report.links[i]` (None where `dsts[i]` is None)"""


@dataclass(slots=True)
class Rekeyed:
    """Links that changed key because a MAC became known (apply_info, restore)."""

    removed: list[LinkKey] = field(default_factory=list)
    """the old `mac:` keys (so stores can delete the old row)"""
    added: list[LinkKey] = field(default_factory=list)
    """their new keys (a link to the node itself is dropped, not added)"""


@dataclass(slots=True)
class Expired:
    """What one expire() call changed."""

    nodes_offline: list[str] = field(default_factory=list)
    links_removed: list[LinkKey] = field(default_factory=list)
    """links that aged out"""


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    """The online network as `Topology.analysis_input` copied it."""

    adj: dict[str, list[str]]
    up: set[str] | None
    """the nodes that count (None: all)"""
    gateways: list[str]
    """online gateways, sorted"""
    known: frozenset[str]
    """nodes that spoke (not only peers)"""
    copy_ms: float

    def analyse(self) -> Analysis:
        """Components, gateway reach and weak points of this copy."""
        started = time.perf_counter()
        found = weak_points(self.adj, self.up)
        gateway_set = set(self.gateways)
        reach: set[str] = set()
        for component in found.components:
            if not gateway_set.isdisjoint(component):
                reach.update(n for n in component if n in self.known)
        return Analysis(
            components=found.components,
            gateways=self.gateways,
            reach_gateway=reach,
            articulation_points=found.articulation_points,
            bridges=found.bridges,
            duration_ms=self.copy_ms + (time.perf_counter() - started) * 1000.0,
        )


class Topology:
    """Current nodes and links of the mesh and the undirected graph between them."""

    def __init__(
        self,
        offline_after_intervals: float = 3.0,
        link_timeout_s: float = 300.0,
        offline_after_s: float = 0.0,
    ) -> None:
        self.offline_after_intervals = offline_after_intervals
        self.link_timeout_s = link_timeout_s
        self.offline_after_s = offline_after_s
        """when > 0, the fixed silence after which a node is offline (overrides intervals)"""
        self.nodes: dict[str, NodeState] = {}
        self.links: dict[LinkKey, LinkState] = {}
        self.graph: nx.Graph = nx.Graph()
        """undirected; edge attribute `links` = number of directed resolved links of the pair"""
        self.macs = MacOwners()
        self._unresolved: dict[str, set[LinkKey]] = {}
        """peer MAC → keys of links waiting for a node to announce it"""
        self._by_node: dict[str, set[LinkKey]] = {}
        """node → keys of the links where it is src or resolved dst"""
        self.bridges = Bridges()
        """the bridges heard of, the nodes each speaks for, the nodes held by a silent one"""
        # expire() runs every second; it skips its scans until something can have expired
        self._next_node_check = -math.inf
        self._restored_at = -math.inf
        """restart time given to restore(): expiry timers count from here at the earliest"""
        self._next_link_check = -math.inf
        self._layouts: dict[str, tuple[int, list[tuple[Any, ...]], ReportLinks]] = {}
        """node → how its last report's links were resolved: the MAC owners' version then,
        each link's identity (peer, peer_mac, iface, kind) and the result. A node reports
        the same links again and again; while they and the MAC owners stay the same the
        next report only replaces samples (a removed link forgets its source's entry)."""

    # ------------------------------------------------------------------ messages
    def apply_status(self, status: Status, now: float) -> bool:
        """Set the node's online flag from its status (or last will); True if it changed."""
        node = self._touch(status.node, now)
        changed = node.online != status.online
        node.online = status.online
        if status.online:
            self._node_deadline(now + self.offline_after(node))
        return changed

    def apply_info(self, info: Info, now: float) -> Rekeyed:
        """Store the node's info, index its MACs and resolve links that waited for them."""
        node = self._touch(info.node, now)
        node.info = info
        if (info.source is not None or self.bridges.via(info.node) is not None) and (
                self.bridges.node_source(info.node, node.via, now)):
            self._recheck_timers()
        rekeyed = Rekeyed()
        for mac in self.macs.announce(info.node, info.macs):
            if mac in self._unresolved:
                self._resolve_mac(mac, info.node, rekeyed)
        return rekeyed

    def apply_report(self, report: AnyReport, now: float, online: bool = True) -> ReportLinks:
        """Mark the node online (unless not `online`: a report sent before the node's
        last will) and upsert its links; the resolved peer of each link and the keys
        upserted. When one report lists the same link twice, the last one wins."""
        src = report.node
        node = self._touch(src, now)
        node.interval_s = report.interval_s
        # kept without its links: they live on as LinkSamples, and the Link objects
        # would otherwise stay pinned until the node's next report
        node.last_report = without_links(report)
        if online:
            node.online = True
            self._node_deadline(now + self.offline_after(node))
        ts = report.ts
        report_links: Sequence[wire.Link | fast.Link] = report.links
        idents = list(map(_identity, report_links))
        known = self._layouts.get(src)
        if known is not None and known[0] == self.macs.version and known[1] == idents:
            # the same links as last time, resolved the same way: new samples only
            layout = known[2]
            from_link = LinkSample.from_link
            for state, link in zip(layout.all_states, report_links, strict=True):
                if state is not None:
                    state.sample = from_link(link)
                    state.last_seen = now
                    state.report_ts = ts
            return layout
        layout = self._upsert_links(src, report_links, now, ts)
        # kept with shared strings: each report's strings are its own copies
        self._layouts[src] = (self.macs.version, [
            tuple(None if part is None else intern(part) for part in ident)
            for ident in idents], layout)
        return layout

    def _upsert_links(self, src: str, report_links: Iterable[wire.Link | fast.Link],
                      now: float, ts: float) -> ReportLinks:
        """Resolve and upsert the links of one report of `src` (apply_report's slow path)."""
        links = self.links
        mac_owner = self.macs.owner  # (MacOwners.dsts resolves the same way)
        keys: list[LinkKey] = []
        states: list[LinkState] = []
        dsts: list[str | None] = []
        all_states: list[LinkState | None] = []
        for link in report_links:
            dst = link.peer
            mac = link.peer_mac.lower() if link.peer_mac is not None else None
            if dst is None and mac is not None:
                dst = mac_owner.get(mac)
            if dst is not None:
                peer = dst
            elif mac is not None:
                peer = MAC_PREFIX + mac
            else:  # only possible for a Link built without validation
                dsts.append(None)
                all_states.append(None)
                continue
            if dst == src:
                dsts.append(None)
                all_states.append(None)
                continue
            key = LinkKey(intern(src), intern(peer), intern(link.iface), intern(link.kind))
            keys.append(key)
            sample = LinkSample.from_link(link)
            state = links.get(key)
            if state is None:
                state = LinkState(key, key.peer if dst is not None else None,
                                  None if mac is None else intern(mac), sample, now, now, ts)
                self._add_link(state)
            else:
                state.sample = sample
                state.last_seen = now
                state.report_ts = ts
                if mac is not None and mac != state.peer_mac:
                    state.peer_mac = intern(mac)
            states.append(state)
            all_states.append(state)
            dsts.append(dst)
        return ReportLinks(tuple(dsts), keys, states, all_states)

    def apply_bridge_status(self, status: BridgeStatus, now: float) -> BridgeChange | None:
        """Note a bridge's status (or last will): its nodes are held while it is offline."""
        change = self.bridges.apply_status(status, now)
        if change is not None and change.online:
            self._recheck_timers()
        return change

    def offline_after(self, node: NodeState) -> float:
        """How long `node` may be silent before it counts as offline."""
        if self.offline_after_s > 0:
            return self.offline_after_s
        interval = node.interval_s
        if node.info is not None and node.info.interval_s is not None:
            interval = max(interval, node.info.interval_s)
        return self.offline_after_intervals * interval

    def links_from(self, node: str) -> list[LinkState]:
        """The links `node` reports (unsorted)."""
        links = self.links
        return [links[k] for k in self._by_node.get(node, ()) if k.src == node]

    def links_to(self, node: str) -> list[LinkState]:
        """Links other nodes report towards `node` (its neighbours' view of it)."""
        links = self.links
        return [links[k] for k in self._by_node.get(node, ()) if k.src != node]

    # ------------------------------------------------------------------ time
    def expire(self, now: float) -> Expired:
        """Mark silent nodes offline and drop links their source stopped reporting."""
        expired = Expired()
        if now > self._next_node_check:
            soonest = math.inf
            offline_after = self.offline_after
            held, timers = self.bridges.held, self.bridges.timers_from
            for node in self.nodes.values():
                if not node.online or (held and node.id in held):
                    continue
                seen = node.last_seen
                if seen is not None:
                    seen = max(seen, self._restored_at)
                    if timers:
                        seen = max(seen, timers.get(node.id, seen))
                deadline = -math.inf if seen is None else seen + offline_after(node)
                if now > deadline:
                    node.online = False
                    expired.nodes_offline.append(node.id)
                elif deadline < soonest:
                    soonest = deadline
            self._next_node_check = soonest
        stale: list[LinkKey] = []
        if now > self._next_link_check:
            cutoff = now - self.link_timeout_s
            oldest = math.inf
            held, timers = self.bridges.held, self.bridges.timers_from
            if timers:  # a return older than every timeout delays nothing any more
                self.bridges.forget_timers(now - max(self.link_timeout_s, self._longest_wait()))
            for key, state in self.links.items():
                seen = max(state.last_seen, self._restored_at)
                if held or timers:
                    if key.src in held:
                        continue
                    seen = max(seen, timers.get(key.src, seen))
                if seen < cutoff:
                    stale.append(key)
                elif seen < oldest:
                    oldest = seen
            self._next_link_check = oldest + self.link_timeout_s
            for key in stale:
                self._remove_link(key)
        expired.links_removed = stale
        return expired

    # ------------------------------------------------------------------ queries
    def node_links(self, node: str) -> list[LinkState]:
        """Links where `node` is the source or the resolved destination, sorted by key."""
        return [self.links[key] for key in sorted(self._by_node.get(node, ()))]

    def pair_links(self, a: str, b: str) -> list[LinkState]:
        """The resolved links between nodes `a` and `b`, both directions, sorted by key."""
        by_node = self._by_node
        keys_a, keys_b = by_node.get(a, ()), by_node.get(b, ())
        if len(keys_b) < len(keys_a):
            a, b, keys_a = b, a, keys_b
        links = self.links
        found = [links[k] for k in keys_a if (k.peer == b if k.src == a else k.src == b)]
        if len(found) > 1:
            found.sort(key=_by_key)
        return found

    def reverse(self, key: LinkKey) -> LinkState | None:
        """The other end's view of the same radio link: dst→src of the same kind.

        Interface names differ between routers, so when the peer has several links of that
        kind back to us the one on the same interface name wins, then the one on a radio of
        the same frequency, then the most recently seen.
        """
        if key.peer.startswith(MAC_PREFIX):
            return None
        candidates = [
            self.links[k]
            for k in self._by_node.get(key.peer, ())
            if k.src == key.peer and k.peer == key.src and k.kind == key.kind
        ]
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        freq = self._freq(key.src, key.iface)

        def rank(state: LinkState) -> tuple[bool, bool, float]:
            same_freq = freq is not None and self._freq(state.key.src, state.key.iface) == freq
            return (state.key.iface == key.iface, same_freq, state.last_seen)

        return max(candidates, key=rank)

    def analyse(self) -> Analysis:
        """Components, gateway reach and weak points of the online network.

        Only online nodes count, plus peers that never spoke (they are in the graph only
        while a link to them is alive); an edge counts when both ends count.
        """
        return self.analysis_input().analyse()

    def analysis_input(self) -> AnalysisInput:
        """A copy of what `analyse` reads: the analysis of the copy may run in a thread
        while the loop goes on changing the topology."""
        started = time.perf_counter()  # measures our own duration; not the model's clock
        nodes = self.nodes
        # networkx's own dict: its `adj` view wraps every node's neighbours in a view
        # object (42 ms instead of 24 at 35,000 nodes, on the event loop)
        adj = {n: list(nbrs) for n, nbrs in self.graph._adj.items()}
        offline = [n for n, s in nodes.items() if not s.online]
        up = set(adj).difference(offline) if offline else None  # None: all of it
        gateways = sorted(n for n, s in nodes.items() if s.online and s.is_gateway)
        return AnalysisInput(adj, up, gateways, frozenset(nodes),
                             (time.perf_counter() - started) * 1000.0)


    # ------------------------------------------------------------------ persistence
    def restore(
        self, nodes: Iterable[NodeState], links: Iterable[LinkState], now: float | None = None,
        bridges: Iterable[Mapping[str, Any]] = (),
    ) -> Rekeyed:
        """Replace the current state with saved nodes and links (and bridge states, as
        `bridges.snapshot()` gave them) and rebuild the indexes; the saved `mac:` links
        whose MAC a node announced meanwhile are re-keyed.

        With `now` (the restart time), restored nodes and links get their full timeout
        from `now` before they expire: the collector was away, not the network, and
        marking every node offline at once after a restart would flood maintainers.
        """
        self._restored_at = -math.inf if now is None else now
        node_list = list(nodes)
        link_list = list(links)
        self.nodes.clear()
        self.links.clear()
        self.graph.clear()
        self.macs.clear()
        self._unresolved.clear()
        self._by_node.clear()
        self._layouts.clear()
        self._next_node_check = self._next_link_check = -math.inf
        rekeyed = Rekeyed()
        for node in node_list:
            node.id = intern(node.id)
            self.nodes[node.id] = node
            self.graph.add_node(node.id)
        self.bridges.restore(bridges, [(n.id, via) for n in node_list if (via := n.via)],
                             0.0 if now is None else now)
        # when two nodes claim one MAC, the one heard from last owns it (as it would live)
        for node in sorted(self.nodes.values(), key=lambda n: n.last_seen or 0.0):
            if node.info is not None:
                self.macs.announce(node.id, node.info.macs)
        for state in link_list:
            key = LinkKey(*map(intern, state.key))  # as apply_report's keys: shared strings
            if state.peer_mac is not None:
                state.peer_mac = intern(state.peer_mac)
            if key.peer.startswith(MAC_PREFIX):
                mac = key.peer[len(MAC_PREFIX) :]
                owner = self.macs.owner.get(mac)
                if owner is None:
                    state.key, state.dst = key, None
                    self._put_link(state)
                    continue
                rekeyed.removed.append(key)
                key = LinkKey(key.src, owner, key.iface, key.kind)
                if key.peer == key.src:
                    continue
                rekeyed.added.append(key)
            if key.peer == key.src:
                continue
            state.key, state.dst = key, key.peer
            self._put_link(state)
        return rekeyed

    # ------------------------------------------------------------------ internals
    def _recheck_timers(self) -> None:
        """Held nodes were released: the next expire() looks at every node and link."""
        self._next_node_check = self._next_link_check = -math.inf

    def _longest_wait(self) -> float:
        """The longest offline timeout of a node whose timers a bridge's return delays."""
        nodes = self.nodes
        return max((self.offline_after(nodes[n]) for n in self.bridges.timers_from
                    if n in nodes), default=0.0)

    def _touch(self, node_id: str, now: float) -> NodeState:
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = NodeState(node_id, first_seen=now)
            self.graph.add_node(node_id)
        node.last_seen = now
        return node

    def _node_deadline(self, deadline: float) -> None:
        if deadline < self._next_node_check:
            self._next_node_check = deadline

    def _put_link(self, state: LinkState) -> None:
        """Add a link; when its key is taken, the more recently seen of the two stays."""
        old = self.links.get(state.key)
        if old is not None:
            if old.last_seen >= state.last_seen:
                return
            self._remove_link(state.key)
        self._add_link(state)

    def _add_link(self, state: LinkState) -> None:
        key = state.key
        self.links[key] = state
        if state.last_seen + self.link_timeout_s < self._next_link_check:
            self._next_link_check = state.last_seen + self.link_timeout_s
        self._by_node.setdefault(key.src, set()).add(key)
        dst = state.dst
        if dst is None:
            self._unresolved.setdefault(key.peer[len(MAC_PREFIX) :], set()).add(key)
            return
        self._by_node.setdefault(dst, set()).add(key)
        edge = self.graph.get_edge_data(key.src, dst)
        if edge is None:
            self.graph.add_edge(key.src, dst, links=1)
        else:
            edge["links"] += 1

    def _remove_link(self, key: LinkKey) -> LinkState:
        state = self.links.pop(key)
        self._layouts.pop(key.src, None)
        self._discard_index(self._by_node, key.src, key)
        dst = state.dst
        if dst is None:
            self._discard_index(self._unresolved, key.peer[len(MAC_PREFIX) :], key)
            return state
        self._discard_index(self._by_node, dst, key)
        edge = self.graph.get_edge_data(key.src, dst)
        if edge is not None:
            edge["links"] -= 1
            if edge["links"] <= 0:
                self.graph.remove_edge(key.src, dst)
                for end in (key.src, dst):
                    if end not in self.nodes and self.graph.degree(end) == 0:
                        self.graph.remove_node(end)
        return state

    @staticmethod
    def _discard_index(index: dict[str, set[LinkKey]], name: str, key: LinkKey) -> None:
        keys = index.get(name)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[name]

    def _resolve_mac(self, mac: str, owner: str, rekeyed: Rekeyed) -> None:
        """Re-key the links that waited for `mac` now that `owner` announced it."""
        for key in list(self._unresolved.get(mac, ())):
            state = self._remove_link(key)
            rekeyed.removed.append(key)
            if key.src == owner:
                continue  # the node saw its own MAC: a self-link, ignored
            state.key = LinkKey(key.src, owner, key.iface, key.kind)
            state.dst = owner
            self._put_link(state)
            rekeyed.added.append(state.key)

    def _freq(self, node: str, iface: str) -> float | None:
        state = self.nodes.get(node)
        if state is None or state.last_report is None:
            return None
        for radio in state.last_report.radios:
            if radio.iface == iface:
                return radio.freq_mhz
        return None
