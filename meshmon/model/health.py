"""Health of the mesh: node and link states, outages with their root cause, flapping,
silent agents, degraded links and new weak points. Pure: time comes in as `now`.

The service tells `Health` what changed (node up/down, links removed by the topology) and
calls `evaluate(now)`, which returns `Change`s of `Incident`s: `opened` (confirmed, to be
notified), `updated`, `resolved`, and `cancelled` (dropped before it was ever opened).

Root cause. Gateways are nodes whose info says `gateway: true`. The *known graph* is the
topology's graph plus *ghost edges*: edges the topology dropped while an end was failed
(they still say how the mesh was wired) and *down* edges (both ends alive, the link
vanished). A BFS from every gateway that is not failed, avoiding failed nodes and down
edges, gives the reachable set R. The rest of the known graph falls into components;
each component with a failure is one outage: its cause is the failed nodes of it that
touch R (or are gateways) plus the down edges from R into it; every other node of it is
affected (`unreachable` when offline). Without any gateway, every failed node touching a
live node is a cause.

Grouping. A new outage is *pending* for `group_wait_s` before it opens, so nodes that
fail together (a backbone node and the leaves whose MQTT path ran through it) give one
outage: a pending outage whose cause stops being a cause (it turned out to be behind
another failure) is cancelled. After an outage resolves, the nodes it had cut off get
their own offline timeout to come back before they count as failures of their own.

Flapping counts only a node's or link's *own* failures, so nobody is blamed for being cut
off: a node's failure counts once its pending outage names it as the cause (when the
outage opens, or when the node is back before the group wait ended); a node that was
behind another failure never counts. A link's failure counts when a report drops it
while both ends are up and settled, and is taken back if an end turns out to have failed
around then (its neighbours stopped hearing it before its timeout or last will came).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from meshmon.model.linkhealth import LinkThresholds, LinkTracker
from meshmon.model.rootcause import find_root_causes
from meshmon.model.state import LinkKey, LinkRef, LinkState
from meshmon.model.topology import MAC_PREFIX, Topology

if TYPE_CHECKING:
    from meshmon.model.analysis import GatewayCuts

NodeCondition = Literal["online", "offline", "silent", "unreachable", "flapping"]
LinkCondition = Literal["up", "degraded", "down"]
ChangeKind = Literal["opened", "updated", "resolved", "cancelled"]

EVIDENCE_MARGIN_S = 2.0
"""a neighbour must have heard a quiet node this long after it went quiet (clock slack)"""
GHOST_RETENTION_S = 7 * 86_400.0
"""ghost edges of long-dead nodes are forgotten after this long"""
RECOVERY_GRACE_MAX_S = 600.0
FLAP_TABLE_PRUNE = 10_000
SILENT_RECHECK_S = 1.0


@dataclass
class HealthSettings(LinkThresholds):
    """Link thresholds plus noise control (the [health] and [alerts] config sections)."""

    group_wait_s: float = 0.5
    flap_changes: int = 3
    flap_window_s: float = 600.0


@dataclass
class Incident:
    """One thing maintainers hear about once: an outage, a flapping node or link, a
    silent agent, a degraded link, a new weak point."""

    id: str
    kind: str
    severity: str
    started_at: float
    cause_nodes: list[str] = field(default_factory=list)
    cause_links: list[LinkRef] = field(default_factory=list)
    affected: list[str] = field(default_factory=list)
    ended_at: float | None = None
    confirmed: bool = False
    """pending outages are not confirmed until group_wait_s has passed"""
    confirm_at: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "severity": self.severity,
            "started_at": self.started_at, "ended_at": self.ended_at,
            "cause_nodes": list(self.cause_nodes),
            "cause_links": [[ln.a, ln.b, ln.kind] for ln in self.cause_links],
            "affected": list(self.affected), "confirmed": self.confirmed,
            "confirm_at": self.confirm_at, "details": dict(self.details),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Incident:
        return cls(
            id=d["id"], kind=d["kind"], severity=d["severity"], started_at=d["started_at"],
            ended_at=d.get("ended_at"), cause_nodes=list(d.get("cause_nodes", [])),
            cause_links=[LinkRef(a, b, k) for a, b, k in d.get("cause_links", [])],
            affected=list(d.get("affected", [])), confirmed=bool(d.get("confirmed")),
            confirm_at=float(d.get("confirm_at", 0.0)), details=dict(d.get("details", {})),
        )  # fmt: skip


@dataclass(slots=True)
class Change:
    """What evaluate() reports about one incident."""

    what: ChangeKind
    incident: Incident


@dataclass(slots=True)
class Ghost:
    """An edge the topology no longer has that still matters for root cause."""

    kind: str
    since: float
    down: bool
    """True: both ends were alive when it vanished (the link itself failed)"""


def _elements(nodes: Iterable[str], links: Iterable[LinkRef]) -> set[str]:
    """Node ids and link names of a cause, in one namespace (node ids cannot hold '–')."""
    return {*nodes, *(str(ln) for ln in links)}


def incident_id(kind: str, cause: Iterable[str], started_at: float) -> str:
    """A stable short id from what the incident is about and when it started."""
    text = f"{kind}|{'|'.join(sorted(cause))}|{started_at:.3f}"
    return f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


class Health:
    """Node and link conditions and the incidents derived from them."""

    def __init__(self, topology: Topology, settings: HealthSettings | None = None) -> None:
        self.topology = topology
        topology.track_changes = True
        self.settings = settings or HealthSettings()
        self.failed: dict[str, float] = {}
        """offline nodes (not silent) → since when"""
        self.silent: dict[str, float] = {}
        """nodes whose agent is quiet while neighbours still hear them → since when"""
        self.known_down: set[str] = set()
        """nodes already offline when the collector started without saved health state:
        not new failures; they count again once they come back"""
        self.ghosts: dict[tuple[str, str], Ghost] = {}
        self.incidents: dict[str, Incident] = {}
        """open incidents (pending ones included) by id"""
        self.link_trackers: dict[LinkKey, LinkTracker] = {}
        self.unreachable: set[str] = set()
        """offline nodes that are behind another failure (affected, not a cause)"""
        self.weak_points: dict[str, Incident] = {}
        """weak point key (`node:X` / `link:a|b`) → its open incident"""
        self._weak_baseline_taken = False
        self._weak_seen_nodes: set[str] = set()
        """nodes in the graph at the previous weak-point analysis"""
        self._node_changes: dict[str, deque[float]] = {}
        """node → times of its own failures within flap_window_s"""
        self._link_changes: dict[LinkKey, deque[float]] = {}
        """directed link → times reports dropped it while both ends were up"""
        self._last_transition: dict[str, float] = {}
        """node → when it last went down or came back (links around it are settling)"""
        self._flapping: dict[str, Incident] = {}
        """flap key (`node:X` / `link:a|b|kind`) → open flapping incident"""
        self._flap_last: dict[str, float] = {}
        """flap key → its latest up/down change: it stops flapping flap_window_s later"""
        self._evidence_floor: dict[str, float] = {}
        """node → last time neighbours heard it before they stopped (silent → offline)"""
        self._grace: dict[str, float] = {}
        """node → until when it may come back after the outage that cut it off resolved"""
        self._back_in_grace: set[str] = set()
        """nodes that came back in their grace since the last root cause run: that was
        the end of being cut off, not of a failure of their own"""
        self._dirty = True
        self._last_silent_check = -math.inf
        self.last_duration_ms = 0.0

    # ------------------------------------------------------------------ inputs
    def node_changed(self, node: str, online: bool, now: float) -> None:
        """A node came online (report/status) or went offline (last will/timeout)."""
        self._dirty = True
        # coming online is a transition only after we had it down (not when first seen);
        # whether a failure was its own is known only once root cause has run
        was_down = node in self.failed or node in self.silent or node in self.known_down
        if not online or was_down:
            self._last_transition[node] = now
            if f"node:{node}" in self._flapping:
                self._flap_last[f"node:{node}"] = now
        if not online:
            self._forget_link_failures_around(node, now)
        if online:
            # a silent node stays in `silent` until evaluate() closes its incident
            self.failed.pop(node, None)
            self.known_down.discard(node)
            if self._grace.pop(node, None) is not None:
                self._back_in_grace.add(node)
            self._evidence_floor.pop(node, None)
        elif node not in self.known_down:
            self.failed.setdefault(node, now)

    def links_removed(self, keys: Iterable[LinkKey], now: float) -> None:
        """The topology aged these links out: remember edges that vanished as ghosts."""
        graph = self.topology.graph
        for key in keys:
            if key.peer.startswith(MAC_PREFIX) or graph.has_edge(key.src, key.peer):
                continue
            a, b = sorted((key.src, key.peer))
            if (a, b) in self.ghosts:
                continue
            alive = self._alive(a) and self._alive(b)
            self.ghosts[(a, b)] = Ghost(key.kind, now, down=alive)
            self._dirty = True

    def observe_links(self, states: Iterable[LinkState], now: float) -> list[Change]:
        """Feed new link samples (Topology.take_touched) to the degraded-link machines."""
        cfg = self.settings
        trackers = self.link_trackers
        changed: set[tuple[str, str, str]] = set()
        seen: set[int] = set()
        ghosts = self.ghosts
        for state in states:
            if id(state) in seen or state.dst is None:
                continue
            seen.add(id(state))
            if ghosts and self._pair(state.key)[:2] in ghosts:
                self._dirty = True  # a vanished link is back: outages may resolve
            tracker = trackers.get(state.key)
            if tracker is None:
                tracker = trackers[state.key] = LinkTracker()
            if tracker.observe(state.sample, now, cfg):
                changed.add(self._pair(state.key))
        return [c for pair in sorted(changed) if (c := self._degraded_change(pair, now))]

    def presence_changed(self, changes: Iterable[tuple[LinkKey, bool, float]]) -> list[Change]:
        """Links that reports added or dropped (Topology.take_presence_changes)."""
        out: list[Change] = []
        for key, present, now in changes:
            if key.peer.startswith(MAC_PREFIX):
                continue
            pair = self._pair(key)
            flap_key = f"link:{pair[0]}|{pair[1]}|{pair[2]}"
            if flap_key in self._flapping:
                self._flap_last[flap_key] = now  # any change keeps it flapping
            # a failure is a link dropping out of a report while both ends are up and
            # settled (counted per directed link: one radio link is seen by both ends)
            if present or flap_key in self._flapping or not (
                self._settled(key.src, now) and self._settled(key.peer, now)
            ):
                continue
            history = self._count_change(self._link_changes, key, now)
            if len(history) >= self.settings.flap_changes and not (
                f"node:{pair[0]}" in self._flapping or f"node:{pair[1]}" in self._flapping
            ):
                ref = LinkRef(pair[0], pair[1], pair[2])
                inc = Incident(
                    incident_id("flapping", [str(ref), ref.kind], now), "flapping", "warning",
                    history[0], cause_links=[ref], confirmed=True,
                    details={"changes": len(history), "window_s": self.settings.flap_window_s},
                )
                self._flapping[flap_key] = self.incidents[inc.id] = inc
                self._flap_last[flap_key] = now
                out.append(Change("opened", inc))
        return out

    # ------------------------------------------------------------------ evaluation
    def due(self, now: float) -> bool:
        """Whether evaluate() has anything to do (something changed or a timer is due)."""
        if self._dirty or now >= self.next_deadline():
            return True
        # quiet nodes are re-checked for neighbours that (still) hear them
        return bool(self.failed or self.silent) and now - self._last_silent_check >= (
            SILENT_RECHECK_S)

    def next_deadline(self) -> float:
        """The earliest moment a pending incident confirms or a flapping one may end."""
        soonest = math.inf
        for inc in self.incidents.values():
            if not inc.confirmed:
                soonest = min(soonest, inc.confirm_at)
        if self._flapping:
            soonest = min(soonest, self._flap_check_at())
        return soonest

    def evaluate(self, now: float) -> list[Change]:
        """Silent agents, root cause, flapping, and what changed for each incident."""
        started = time.perf_counter()  # our own duration, not the model's clock
        changes: list[Change] = []
        self._last_silent_check = now
        changes += self._update_silent(now)
        changes += self._update_node_flapping(now)
        if self._dirty or now >= self.next_deadline():
            self._dirty = False
            changes += self._update_outages(now)
            self.last_duration_ms = (time.perf_counter() - started) * 1000.0
        return changes

    def _update_silent(self, now: float) -> list[Change]:
        out: list[Change] = []
        nodes = self.topology.nodes
        for node in list(self.failed):
            state = nodes.get(node)
            if state is None:
                continue
            quiet_since = max(state.last_seen or self.failed[node],
                              self._evidence_floor.get(node, -math.inf))
            if self._heard_at(node) > quiet_since + EVIDENCE_MARGIN_S:
                del self.failed[node]
                self.silent[node] = now
                self._dirty = True
                inc = Incident(
                    incident_id("silent", [node], now), "silent", "warning", quiet_since,
                    cause_nodes=[node], confirmed=True,
                    details={"last_heard_from_agent": quiet_since},
                )
                self.incidents[inc.id] = inc
                out.append(Change("opened", inc))
        for node in list(self.silent):
            state = nodes.get(node)
            if state is None or state.online:
                self.silent.pop(node)
                out += self._close(lambda i, n=node: i.kind == "silent" and i.cause_nodes == [n],
                                   now)
                continue
            grace = self.topology.offline_after(state)
            heard = self._heard_at(node)
            if heard < now - grace:
                # the neighbours stopped hearing it too: the router is down now
                self.silent.pop(node)
                self.failed[node] = max(heard, state.last_seen or heard)
                self._evidence_floor[node] = heard  # only newer hearing makes it silent again
                self._forget_link_failures_around(node, now)
                self._dirty = True
                out += self._close(lambda i, n=node: i.kind == "silent" and i.cause_nodes == [n],
                                   now)
        return out

    def _heard_at(self, node: str) -> float:
        """The latest moment an online neighbour's radio heard `node` (-inf: none).

        Only links that say how long ago the peer was heard (`inactive_ms`: wifi station
        dumps, batman) count: a routing table may list a dead neighbour for minutes."""
        nodes = self.topology.nodes
        best = -math.inf
        for link in self.topology.links_to(node):
            inactive = link.sample.inactive_ms
            if inactive is None:
                continue
            src = nodes.get(link.key.src)
            if src is None or not src.online:
                continue
            heard = link.last_seen - inactive / 1000.0
            if heard > best:
                best = heard
        return best

    def _own_failures(self, nodes: Iterable[str], at: float, now: float) -> list[Change]:
        """Count a failure of each node's own (it was a cause); open `flapping` for those
        that failed flap_changes times within flap_window_s."""
        out: list[Change] = []
        cfg = self.settings
        for node in nodes:
            key = f"node:{node}"
            if key in self._flapping:
                continue
            history = self._count_change(self._node_changes, node, at)
            if len(history) < cfg.flap_changes:
                continue
            inc = Incident(
                incident_id("flapping", [node], now), "flapping", "warning", history[0],
                cause_nodes=[node], confirmed=True,
                details={"changes": len(history), "window_s": cfg.flap_window_s},
            )
            self._flapping[key] = self.incidents[inc.id] = inc
            self._flap_last[key] = max(at, self._last_transition.get(node, at))
            self._dirty = True  # its outages give way to the flapping incident
            out.append(Change("opened", inc))
        return out

    def _update_node_flapping(self, now: float) -> list[Change]:
        out: list[Change] = []
        cfg = self.settings
        for key, inc in list(self._flapping.items()):
            if now - self._flap_last.get(key, now) >= cfg.flap_window_s:
                if key.startswith("node:"):
                    self._node_changes.pop(key[5:], None)
                del self._flapping[key]
                self._flap_last.pop(key, None)
                self._dirty = True
                out += self._close(lambda i, target=inc.id: i.id == target, now)
        return out

    def _flap_check_at(self) -> float:
        last = self._flap_last
        return min(last.get(key, -math.inf) for key in self._flapping) + (
            self.settings.flap_window_s)

    def _update_outages(self, now: float) -> list[Change]:
        out: list[Change] = []
        was_unreachable = self.unreachable
        candidates = self._root_causes(now)
        open_outages = [i for i in self.incidents.values() if i.kind == "outage"]
        # 1. outages whose cause is all back are resolved; their affected get a grace
        for inc in open_outages:
            if any(n in self.failed for n in inc.cause_nodes) or any(
                self._is_down(ln) for ln in inc.cause_links
            ):
                continue
            del self.incidents[inc.id]
            inc.ended_at = now
            if inc.confirmed:
                self._give_grace(inc.affected, now)
                out.append(Change("resolved", inc))
            else:  # back within the group wait (not a grace): a failure of its own
                out.append(Change("cancelled", inc))
                own = [n for n in inc.cause_nodes if n not in self._back_in_grace]
                out += self._own_failures(own, inc.started_at, now)
        self._back_in_grace.clear()
        # nodes cut off by what was no outage (a flapping node) get their grace too
        self._give_grace([n for nodes, _, _ in candidates for n in nodes
                          if n in was_unreachable and n not in self._grace], now)
        open_outages = [i for i in self.incidents.values() if i.kind == "outage"]
        # 2. candidates: attach to outages that already name their cause, else open new
        by_element: dict[str, Incident] = {}
        for inc in open_outages:
            for element in _elements(inc.cause_nodes, inc.cause_links):
                by_element[element] = inc
        still_causes: set[str] = set()
        for cause_nodes, cause_links, affected in candidates:
            elements = _elements(cause_nodes, cause_links)
            still_causes |= elements
            covering = list({id(i): i for e in elements if (i := by_element.get(e))}.values())
            new_nodes = [n for n in cause_nodes if n not in by_element]
            new_links = [ln for ln in cause_links if str(ln) not in by_element]
            pending = [i for i in covering if not i.confirmed]
            if (new_nodes or new_links) and pending:
                # failures seen within one group wait are one outage
                target = min(pending, key=lambda i: i.started_at)
                target.cause_nodes = sorted(set(target.cause_nodes) | set(new_nodes))
                target.cause_links = sorted(set(target.cause_links) | set(new_links),
                                            key=lambda ln: (ln.a, ln.b, ln.kind))
                target.affected = affected
                target.severity = self._outage_severity(target)
                for element in _elements(new_nodes, new_links):
                    by_element[element] = target
            elif new_nodes or new_links:
                # its start is when *its* elements failed, not older outages it completes
                started = min([self.failed[n] for n in new_nodes]
                              + [self.ghosts[(ln.a, ln.b)].since for ln in new_links])
                confirm_at = started + self.settings.group_wait_s
                for n in new_nodes:
                    confirm_at = max(confirm_at, self._grace.get(n, -math.inf))
                inc = Incident(
                    incident_id("outage", [*new_nodes, *(str(ln) for ln in new_links)], started),
                    "outage", "warning", started, cause_nodes=new_nodes, cause_links=new_links,
                    affected=affected, confirm_at=confirm_at,
                    details={"with": [i.id for i in covering]} if covering else {},
                )
                inc.severity = self._outage_severity(inc)
                self.incidents[inc.id] = inc
                open_outages.append(inc)
                for element in _elements(new_nodes, new_links):
                    by_element[element] = inc
            elif covering:
                owner = max(covering, key=lambda i: i.started_at)
                if owner.affected != affected:
                    owner.affected = affected
                    owner.severity = self._outage_severity(owner)
                    if owner.confirmed:
                        out.append(Change("updated", owner))
        # 3. pending outages whose cause is no longer a cause were behind something else
        for inc in open_outages:
            if inc.confirmed:
                continue
            if not _elements(inc.cause_nodes, inc.cause_links) & still_causes:
                del self.incidents[inc.id]
                out.append(Change("cancelled", inc))
            elif now >= inc.confirm_at:
                # its causes failed on their own: a cause that is now flapping gets the
                # flapping alert instead of this outage
                out += self._own_failures(inc.cause_nodes, inc.started_at, now)
                inc.cause_nodes = [n for n in inc.cause_nodes
                                   if f"node:{n}" not in self._flapping]
                if inc.cause_nodes or inc.cause_links:
                    inc.confirmed = True
                    out.append(Change("opened", inc))
                else:
                    del self.incidents[inc.id]
                    out.append(Change("cancelled", inc))
        return out

    def _give_grace(self, nodes: Iterable[str], now: float) -> None:
        """Nodes no longer cut off get their own offline timeout to come back."""
        for n in nodes:
            state = self.topology.nodes.get(n)
            if n in self.failed and state is not None:
                grace = min(self.topology.offline_after(state), RECOVERY_GRACE_MAX_S)
                self._grace[n] = now + grace

    def _outage_severity(self, inc: Incident) -> str:
        nodes = self.topology.nodes
        gateway = any((s := nodes.get(n)) is not None and s.is_gateway for n in inc.cause_nodes)
        return "critical" if inc.affected or gateway or inc.cause_links else "warning"

    def _root_causes(self, now: float) -> list[tuple[list[str], list[LinkRef], list[str]]]:
        """(cause nodes, cause links, affected) for each cut-off part of the mesh."""
        graph = self.topology.graph
        failed = self.failed
        ghosts = self.ghosts
        for pair in [p for p, g in ghosts.items()
                     if graph.has_edge(*p) or g.since < now - GHOST_RETENTION_S]:
            del ghosts[pair]  # back in the topology, or too old to matter
        if not failed and not any(g.down for g in ghosts.values()):
            ghosts.clear()
            self.unreachable = set()
            return []
        nodes = self.topology.nodes
        found = find_root_causes(
            graph.adj, failed, [n for n, s in nodes.items() if s.is_gateway],
            extra_edges=list(ghosts), down=[p for p, g in ghosts.items() if g.down],
        )  # fmt: skip
        out = []
        unreachable: set[str] = set()
        for part in found.parts:
            causes = [c for c in part.causes if f"node:{c}" not in self._flapping]
            links = [LinkRef(a, b, ghosts[(a, b)].kind) for a, b in part.links]
            links = [ln for ln in links if f"link:{ln.a}|{ln.b}|{ln.kind}" not in self._flapping]
            unreachable.update(v for v in part.members if v in failed and v not in causes)
            if not causes and not links:
                continue
            cause_set = set(causes)
            affected = [v for v in part.members if v not in cause_set]
            out.append((causes, links, affected))
        self.unreachable = unreachable
        # ghost edges between reachable live nodes say nothing any more
        reach = found.reach
        for pair in [p for p in ghosts if p[0] in reach and p[1] in reach]:
            del ghosts[pair]
        return out

    # ------------------------------------------------------------------ weak points
    def known_mesh(self) -> tuple[dict[str, list[str]] | Any, list[str]]:
        """The mesh as it is wired, failed parts included (adjacency, gateways): the live
        graph plus ghost edges, without down links. Weak points are computed on this, so
        an outage does not make weak points come and go."""
        graph = self.topology.graph
        gateways = [n for n, s in self.topology.nodes.items() if s.is_gateway]
        ghosts = [p for p, g in self.ghosts.items() if not g.down and not graph.has_edge(*p)]
        if not ghosts:
            return graph.adj, gateways
        adj: dict[str, list[str]] = {n: list(nbrs) for n, nbrs in graph.adj.items()}
        for a, b in ghosts:
            adj.setdefault(a, []).append(b)
            adj.setdefault(b, []).append(a)
        return adj, gateways

    def weak_point_changes(self, cuts: GatewayCuts, now: float) -> list[Change]:
        """Open/resolve `weak_point` incidents from a gateway-cut analysis.

        News is a weakness that arose among nodes that were already there: the first
        analysis only takes the baseline, and a weak point that involves a node new since
        the previous analysis (a network being built, a new leaf) is recorded silently."""
        current: dict[str, tuple[list[str], list[LinkRef], list[str]]] = {}
        for node, cut in cuts.node_cuts.items():
            current[f"node:{node}"] = ([node], [], cut)
        for (a, b), cut in cuts.link_cuts.items():
            if cut in (cuts.node_cuts.get(a), cuts.node_cuts.get(b)):
                continue  # the same weakness as the node at its end: one alert is enough
            current[f"link:{a}|{b}"] = ([], [LinkRef(a, b, self._edge_kind(a, b))], cut)
        out: list[Change] = []
        before, self._weak_seen_nodes = self._weak_seen_nodes, set(self.topology.graph)
        if not self._weak_baseline_taken:
            self._weak_baseline_taken = True
            for key, (nodes, links, cut) in current.items():
                self.weak_points[key] = self._weak_incident(key, nodes, links, cut, now)
            return out
        for key in [k for k in self.weak_points if k not in current]:
            inc = self.weak_points.pop(key)
            inc.ended_at = now
            if inc.id in self.incidents:
                del self.incidents[inc.id]
                out.append(Change("resolved", inc))
        for key, (nodes, links, cut) in current.items():
            known = self.weak_points.get(key)
            if known is not None:
                known.affected = cut
                continue
            inc = self._weak_incident(key, nodes, links, cut, now)
            self.weak_points[key] = inc
            named = [*nodes, *(n for ln in links for n in (ln.a, ln.b)), *cut]
            if all(n in before for n in named):
                self.incidents[inc.id] = inc
                out.append(Change("opened", inc))
        return out

    def _weak_incident(
        self, key: str, nodes: list[str], links: list[LinkRef], cut: list[str], now: float
    ) -> Incident:
        return Incident(incident_id("weak_point", [key], now), "weak_point", "info", now,
                        cause_nodes=nodes, cause_links=links, affected=cut, confirmed=True)

    def _edge_kind(self, a: str, b: str) -> str:
        for link in self.topology.node_links(a):
            if link.dst in (a, b) and link.key.src in (a, b):
                return link.key.kind
        return "other"

    # ------------------------------------------------------------------ queries
    def node_condition(self, node: str) -> NodeCondition:
        """online | offline | silent | unreachable | flapping"""
        if f"node:{node}" in self._flapping:
            return "flapping"
        if node in self.silent:
            return "silent"
        if node in self.unreachable:
            return "unreachable"
        state = self.topology.nodes.get(node)
        return "online" if state is not None and state.online else "offline"

    def link_condition(self, key: LinkKey) -> LinkCondition:
        tracker = self.link_trackers.get(key)
        return "degraded" if tracker is not None and tracker.degraded else "up"

    def down_links(self) -> list[LinkRef]:
        return [LinkRef(a, b, g.kind) for (a, b), g in sorted(self.ghosts.items()) if g.down]

    def outages(self) -> list[Incident]:
        """Confirmed open outages, oldest first."""
        found = [i for i in self.incidents.values() if i.kind == "outage" and i.confirmed]
        return sorted(found, key=lambda i: i.started_at)

    def fading_links(self) -> list[dict[str, Any]]:
        """Links whose recent signal is below their baseline by half the drop threshold."""
        out = []
        cfg = self.settings
        for key, tracker in self.link_trackers.items():
            base = tracker.baseline(cfg)
            mean = tracker.recent
            if base is None or mean is None or key not in self.topology.links:
                continue
            if mean < base - cfg.baseline_drop_db / 2:
                out.append({"src": key.src, "dst": key.peer, "iface": key.iface,
                            "kind": key.kind, "baseline_dbm": round(base, 1),
                            "signal_dbm": round(mean, 1), "degraded": tracker.degraded})
        return sorted(out, key=lambda d: d["signal_dbm"] - d["baseline_dbm"])

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """Everything that must survive a restart (baselines rebuild from new samples)."""
        return {
            "version": 1,
            "failed": self.failed,
            "silent": self.silent,
            "ghosts": [[a, b, g.kind, g.since, g.down] for (a, b), g in self.ghosts.items()],
            "incidents": [i.to_dict() for i in self.incidents.values()],
            "weak_points": {k: i.to_dict() for k, i in self.weak_points.items()},
            "weak_baseline_taken": self._weak_baseline_taken,
            "node_changes": {n: list(h) for n, h in self._node_changes.items() if h},
            "flapping": {k: i.id for k, i in self._flapping.items()},
            "flap_last": self._flap_last,
            "grace": self._grace,
        }

    def restore(self, snap: dict[str, Any] | None, now: float) -> None:
        """Resume from a snapshot; without one, nodes offline now are not news."""
        nodes = self.topology.nodes
        if not snap:
            self.known_down = {n for n, s in nodes.items() if not s.online}
            return
        self.failed = {n: float(t) for n, t in snap.get("failed", {}).items()}
        self.silent = {n: float(t) for n, t in snap.get("silent", {}).items()}
        self.ghosts = {(a, b): Ghost(k, since, down)
                       for a, b, k, since, down in snap.get("ghosts", [])}
        self.incidents = {d["id"]: Incident.from_dict(d) for d in snap.get("incidents", [])}
        self.weak_points = {k: Incident.from_dict(d)
                            for k, d in snap.get("weak_points", {}).items()}
        for key, inc in self.weak_points.items():
            if inc.id in self.incidents:
                self.weak_points[key] = self.incidents[inc.id]
        self._weak_baseline_taken = bool(snap.get("weak_baseline_taken"))
        window = self.settings.flap_window_s
        self._node_changes = {
            n: deque(t for t in h if t >= now - window)
            for n, h in snap.get("node_changes", {}).items()
        }
        self._flapping = {k: self.incidents[i] for k, i in snap.get("flapping", {}).items()
                          if i in self.incidents}
        saved_last = snap.get("flap_last", {})
        self._flap_last = {k: float(saved_last.get(k, now)) for k in self._flapping}
        self._grace = {n: float(t) for n, t in snap.get("grace", {}).items()}
        # nodes whose saved state disagrees with the snapshot (saved in slices) follow
        # the topology, which is what the service will keep applying from now on
        for n, s in nodes.items():
            if s.online:
                self.failed.pop(n, None)
            elif n not in self.failed and n not in self.silent:
                self.known_down.add(n)
        self._dirty = True

    # ------------------------------------------------------------------ internals
    def _alive(self, node: str) -> bool:
        return node not in self.failed and node not in self.known_down

    def _is_down(self, link: LinkRef) -> bool:
        ghost = self.ghosts.get((link.a, link.b))
        return ghost is not None and ghost.down

    def _settle_s(self, node: str) -> float:
        """How long around a node's own transition the links to it are not news: a failure
        goes unnoticed up to its offline timeout, a node coming back re-associates."""
        state = self.topology.nodes.get(node)
        wait = self.topology.offline_after(state) if state is not None else 0.0
        return wait + EVIDENCE_MARGIN_S

    def _settled(self, node: str, at: float) -> bool:
        """Up (agent too) at `at`, and neither went down nor came back shortly before."""
        return self._alive(node) and node not in self.silent and (
            self._last_transition.get(node, -math.inf) < at - self._settle_s(node))

    def _forget_link_failures_around(self, node: str, now: float) -> None:
        """`node` failed: links that dropped out of reports shortly before did so because
        of it (neighbours stop hearing a router before its timeout or last will)."""
        since = now - self._settle_s(node)
        table = self._link_changes
        for link in self.topology.node_links(node):
            history = table.get(link.key)
            while history and history[-1] >= since:
                history.pop()

    def _count_change(self, table: dict[Any, deque[float]], key: Any, now: float) -> deque[float]:
        history = table.get(key)
        if history is None:
            history = table[key] = deque()
        history.append(now)
        window = self.settings.flap_window_s
        while history and history[0] < now - window:
            history.popleft()
        if len(table) > 4 * FLAP_TABLE_PRUNE and len(history) == 1:
            # drop histories that aged out, so the table does not grow with the network
            for k in [k for k, h in table.items() if h and h[-1] < now - window]:
                del table[k]
        return history

    @staticmethod
    def _pair(key: LinkKey) -> tuple[str, str, str]:
        a, b = sorted((key.src, key.peer))
        return (a, b, key.kind)

    def _degraded_change(self, pair: tuple[str, str, str], now: float) -> Change | None:
        a, b, kind = pair
        directions = [
            (k, t) for k in self._pair_keys(a, b, kind)
            if (t := self.link_trackers.get(k)) is not None and t.degraded and t.was_good
        ]  # fmt: skip
        open_inc = next(
            (i for i in self.incidents.values() if i.kind == "degraded"
             and i.cause_links and (i.cause_links[0].a, i.cause_links[0].b,
                                    i.cause_links[0].kind) == pair),
            None,
        )  # fmt: skip
        if directions and open_inc is None:
            ref = LinkRef(a, b, kind)
            since = min(t.since for _, t in directions)
            inc = Incident(
                incident_id("degraded", [str(ref), kind], since), "degraded", "warning", since,
                cause_links=[ref], confirmed=True,
                details={f"{k.src}->{k.peer}": t.reasons for k, t in directions},
            )
            self.incidents[inc.id] = inc
            return Change("opened", inc)
        if not directions and open_inc is not None:
            del self.incidents[open_inc.id]
            open_inc.ended_at = now
            return Change("resolved", open_inc)
        return None

    def _pair_keys(self, a: str, b: str, kind: str) -> list[LinkKey]:
        return [ls.key for ls in self.topology.node_links(a)
                if ls.key.kind == kind and {ls.key.src, ls.key.peer} == {a, b}]

    def _close(self, match: Any, now: float) -> list[Change]:
        out = []
        for inc in [i for i in self.incidents.values() if match(i)]:
            del self.incidents[inc.id]
            inc.ended_at = now
            out.append(Change("resolved" if inc.confirmed else "cancelled", inc))
        return out
