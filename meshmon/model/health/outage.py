"""Outages and their root cause.

Gateways are nodes whose info says `gateway: true`. The *known graph* is the topology's
graph plus *ghost edges*: edges the topology dropped while an end was failed (they still
say how the mesh was wired) and *down* edges (both ends alive, the link vanished). A BFS
from every gateway that is not failed, avoiding failed nodes and down edges, gives the
reachable set R. The rest of the known graph falls into components; each component with
a failure is one outage: its cause is the failed nodes of it that touch R (or are
gateways) plus the down edges from R into it; every other node of it is affected
(`unreachable` when offline). Without any gateway, every failed node touching a live
node is a cause. Flapping nodes and links are not causes (the flapping incident says it).

Grouping. A new outage is *pending* for `group_wait_s` before it opens, so nodes that
fail together (a backbone node and the leaves whose MQTT path ran through it) give one
outage: a pending outage whose cause stops being a cause (it turned out to be behind
another failure) is cancelled. After an outage resolves, the nodes it had cut off get
their own offline timeout to come back before they count as failures of their own.

Own failures. A pending outage's causes failed on their own: when it opens, and when it
is cancelled because they are back within the group wait (unless they came back in the
grace after being cut off), the flapping detector counts them (`Facts.own_failures`); a
cause that flaps now gets that incident instead of this outage. Nodes cut off by what is
no outage (a flapping node) get the same grace as after an outage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from meshmon.model.changelog import Entry, LinksRemoved, Presence, Reported
from meshmon.model.health.detector import Detector, Ghost, pair_of, resolved
from meshmon.model.health.incidents import Incident, incident_id
from meshmon.model.rootcause import find_root_causes, reach_without
from meshmon.model.state import LinkRef

GHOST_RETENTION_S = 7 * 86_400.0
"""ghost edges of long-dead nodes are forgotten after this long"""
RECOVERY_GRACE_MAX_S = 600.0
FULL_SEARCH_EVERY_S = 30.0
"""new failures alone are taken out of the last search's reach (`reach_without`); the
graph's new links and nodes count again at the next search from the gateways, at
least this often while failures come in"""
MIN_EVALUATE_GAP_S = 0.05
"""root cause runs at most this often, or 5× its last duration apart on a large mesh"""


def _elements(nodes: list[str], links: list[LinkRef]) -> set[str]:
    """Node ids and link names of a cause, in one namespace (node ids cannot hold '–')."""
    return {*nodes, *(str(ln) for ln in links)}


class OutageDetector(Detector):
    """Root cause of failed nodes and down links; one outage per cut-off part."""

    kind = "outage"
    observes = (Reported, Presence, LinksRemoved)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.unreachable: set[str] = set()
        """offline nodes that are behind another failure (affected, not a cause)"""
        self.grace: dict[str, float] = {}
        """node → until when it may come back after the outage that cut it off resolved"""
        self.back_in_grace: set[str] = set()
        """nodes that came back in their grace since the last root cause run: that was
        the end of being cut off, not of a failure of their own"""
        self.last_duration_ms = 0.0
        self.last_cpu_ms = 0.0
        self._reach: set[str] | None = None
        """what the gateways reached at the last run (to take new failures out of)"""
        self.searches = 0
        self.searches_saved = 0
        """root cause runs with a search from the gateways, and without (`reach_without`)"""
        self._searched_at = -math.inf
        self._searched_nodes = 0
        """when the last search from the gateways ran, over how many nodes of the graph"""
        self._last_run = -math.inf

    # ------------------------------------------------------------------ inputs
    def observe(self, entry: Entry) -> None:
        facts = self.facts
        if isinstance(entry, Reported):
            ghosts = facts.ghosts
            if ghosts and any(pair_of(k)[:2] in ghosts for k in resolved(entry.keys)):
                facts.stale = True  # a vanished link is back: outages may resolve
        elif isinstance(entry, Presence):
            if entry.online:
                for node in entry.nodes:
                    if self.grace.pop(node, None) is not None:
                        self.back_in_grace.add(node)
        elif isinstance(entry, LinksRemoved):
            self._links_removed(entry)

    def _links_removed(self, entry: LinksRemoved) -> None:
        """Remember edges that vanished from the graph as ghosts."""
        facts = self.facts
        graph, ghosts = self.topology.graph, facts.ghosts
        for key in resolved(entry.keys):
            if graph.has_edge(key.src, key.peer):
                continue
            a, b = sorted((key.src, key.peer))
            if (a, b) in ghosts:
                continue
            down = facts.alive(a) and facts.alive(b)
            ghosts[(a, b)] = Ghost(key.kind, entry.at, down=down)
            if down:
                facts.stale = True
            else:  # an end has failed: the known mesh (graph plus ghosts) is as it was,
                facts.touched = True  # and no search from the gateways can use the edge

    # ------------------------------------------------------------------ evaluation
    def next_deadline(self) -> float:
        """When the first pending outage confirms."""
        pending = [i.confirm_at for i in self.book.of_kind("outage") if not i.confirmed]
        return min(pending, default=math.inf)

    def evaluate(self, now: float) -> None:
        facts = self.facts
        if not facts.changed:
            if now >= self.next_deadline():
                # nothing changed since the last search: its outages stand, the due ones
                # confirm now (not after another search of the whole mesh)
                self._confirm_due(now)
            return
        if now - self._last_run < max(MIN_EVALUATE_GAP_S, 5 * self.last_cpu_ms / 1000.0):
            return
        # our own duration, not the model's clock; the gap counts this thread's CPU time,
        # not the time it waited for the GIL or the CPU (under load that was 5-10x more,
        # and a last will then waited seconds for the next search)
        started, cpu = time.perf_counter(), time.thread_time()
        self._last_run = now
        self._update(now)
        self.last_duration_ms = (time.perf_counter() - started) * 1000.0
        self.last_cpu_ms = (time.thread_time() - cpu) * 1000.0

    def _update(self, now: float) -> None:
        facts, book = self.facts, self.book
        was_unreachable = self.unreachable
        full = facts.stale
        new_failures, facts.new_failures = facts.new_failures, set()
        facts.stale = facts.touched = False
        candidates = self._root_causes(now, None if full else new_failures)
        # 1. outages whose cause is all back are resolved; their affected get a grace
        for inc in book.of_kind("outage"):
            if any(n in facts.failed for n in inc.cause_nodes) or any(
                self._is_down(ln) for ln in inc.cause_links
            ):
                continue
            book.close(inc, now)
            if inc.confirmed:
                self._give_grace(inc.affected, now)
            else:  # back within the group wait (not a grace): a failure of its own
                own = [n for n in inc.cause_nodes if n not in self.back_in_grace]
                facts.own_failures(own, inc.started_at, now)
        self.back_in_grace.clear()
        # nodes cut off by what was no outage (a flapping node) get their grace too
        self._give_grace([n for nodes, _, _ in candidates for n in nodes
                          if n in was_unreachable and n not in self.grace], now)
        open_outages = book.of_kind("outage")
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
                target.severity = self._severity(target)
                for element in _elements(new_nodes, new_links):
                    by_element[element] = target
            elif new_nodes or new_links:
                # its start is when *its* elements failed, not older outages it completes
                started = min([facts.failed[n] for n in new_nodes]
                              + [facts.ghosts[(ln.a, ln.b)].since for ln in new_links])
                confirm_at = started + self.settings.group_wait_s
                for n in new_nodes:
                    confirm_at = max(confirm_at, self.grace.get(n, -math.inf))
                inc = Incident(
                    incident_id("outage", [*new_nodes, *(str(ln) for ln in new_links)], started),
                    "outage", "warning", started, cause_nodes=new_nodes, cause_links=new_links,
                    affected=affected, confirm_at=confirm_at,
                    details={"with": [i.id for i in covering]} if covering else {},
                )
                inc.severity = self._severity(inc)
                book.add(inc)
                open_outages.append(inc)
                for element in _elements(new_nodes, new_links):
                    by_element[element] = inc
            elif covering:
                owner = max(covering, key=lambda i: i.started_at)
                if owner.affected != affected:
                    owner.affected = affected
                    owner.severity = self._severity(owner)
                    book.updated(owner)
        # 3. pending outages whose cause is no longer a cause were behind something else
        for inc in open_outages:
            if inc.confirmed:
                continue
            if not _elements(inc.cause_nodes, inc.cause_links) & still_causes:
                book.cancel(inc)
            elif now >= inc.confirm_at:
                self._confirm(inc, now)

    def _confirm_due(self, now: float) -> None:
        for inc in self.book.of_kind("outage"):
            if not inc.confirmed and now >= inc.confirm_at:
                self._confirm(inc, now)

    def _confirm(self, inc: Incident, now: float) -> None:
        """Open a pending outage whose group wait is over."""
        facts = self.facts
        # its causes failed on their own: a cause that is now flapping gets the flapping
        # incident instead of this outage
        facts.own_failures(inc.cause_nodes, inc.started_at, now)
        inc.cause_nodes = [n for n in inc.cause_nodes if f"node:{n}" not in facts.flapping]
        if inc.cause_nodes or inc.cause_links:
            self.book.confirm(inc)
        else:
            self.book.cancel(inc)

    def _give_grace(self, nodes: Iterable[str], now: float) -> None:
        """Nodes no longer cut off get their own offline timeout to come back."""
        failed, topology = self.facts.failed, self.topology
        for n in nodes:
            state = topology.nodes.get(n)
            if n in failed and state is not None:
                grace = min(topology.offline_after(state), RECOVERY_GRACE_MAX_S)
                self.grace[n] = now + grace

    def _severity(self, inc: Incident) -> str:
        nodes = self.topology.nodes
        gateway = any((s := nodes.get(n)) is not None and s.is_gateway for n in inc.cause_nodes)
        return "critical" if inc.affected or gateway or inc.cause_links else "warning"

    def _root_causes(self, now: float, only_failed: set[str] | None
                     ) -> list[tuple[list[str], list[LinkRef], list[str]]]:
        """(cause nodes, cause links, affected) for each cut-off part of the mesh;
        `only_failed`: nothing changed since the last run but these nodes failed."""
        facts = self.facts
        graph, failed, ghosts, flapping = self.topology.graph, facts.failed, facts.ghosts, (
            facts.flapping)
        for pair in [p for p, g in ghosts.items()
                     if graph.has_edge(*p) or g.since < now - GHOST_RETENTION_S]:
            del ghosts[pair]  # back in the topology, or too old to matter
        if not failed and not any(g.down for g in ghosts.values()):
            ghosts.clear()
            self.unreachable = set()
            self._reach = None
            return []
        nodes = self.topology.nodes
        gateways = [n for n, s in nodes.items() if s.is_gateway]
        down = [p for p, g in ghosts.items() if g.down]
        adj = graph._adj  # networkx's own dicts: its views cost a Python call per step
        reach = None
        if (only_failed is not None and self._reach is not None
                and now - self._searched_at < FULL_SEARCH_EVERY_S
                and len(adj) == self._searched_nodes and only_failed.isdisjoint(gateways)):
            # a leaf's (or any node on a loop's) failure cuts nobody else off: no search
            # of the whole mesh from the gateways (~35 ms of CPU at 35,000 nodes, 5-10
            # times that on a loaded machine, while a last will waits)
            reach = reach_without(self._reach, only_failed, adj, down)
        found = find_root_causes(adj, failed, gateways, extra_edges=list(ghosts),
                                 down=down, reach=reach)
        if reach is None:
            self._searched_at, self._searched_nodes = now, len(adj)
            self.searches += 1
        else:
            self.searches_saved += 1
        self._reach = found.reach
        out = []
        unreachable: set[str] = set()
        for part in found.parts:
            causes = [c for c in part.causes if f"node:{c}" not in flapping]
            links = [LinkRef(a, b, ghosts[(a, b)].kind) for a, b in part.links]
            links = [ln for ln in links if f"link:{ln.a}|{ln.b}|{ln.kind}" not in flapping]
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

    def _is_down(self, link: LinkRef) -> bool:
        ghost = self.facts.ghosts.get((link.a, link.b))
        return ghost is not None and ghost.down

    # ------------------------------------------------------------------ queries
    def condition(self, node: str) -> str | None:
        return "unreachable" if node in self.unreachable else None

    def outages(self) -> list[Incident]:
        """Confirmed open outages, oldest first."""
        found = [i for i in self.book.of_kind("outage") if i.confirmed]
        return sorted(found, key=lambda i: i.started_at)

    def down_links(self) -> list[LinkRef]:
        """Links that went down between live nodes and are still missing."""
        return [LinkRef(a, b, g.kind) for (a, b), g in sorted(self.facts.ghosts.items())
                if g.down]

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        return {"grace": self.grace}

    def restore(self, snap: dict[str, Any], now: float) -> None:
        self.grace = {n: float(t) for n, t in snap.get("grace", {}).items()}
