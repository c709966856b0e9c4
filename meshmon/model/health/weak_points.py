"""Weak points: nodes and links whose failure alone would cut nodes off every gateway.

Computed every `weak_point_interval_s` on the mesh as wired (the live graph plus edges
lost while an end was down, without links that went down between live nodes), so an
outage does not make weak points come and go. News is a weakness that arose among nodes
that were already there: the first analysis only takes the baseline, and a weak point
that involves a node new since the previous analysis (a network being built, a new
leaf) is recorded silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshmon.model.analysis import GatewayCuts, gateway_cuts
from meshmon.model.health.detector import Detector
from meshmon.model.health.incidents import Incident, incident_id
from meshmon.model.state import LinkRef


class WeakPointDetector(Detector):
    """Gateway cuts of the known mesh; one `weak_point` incident per new weakness."""

    kind = "weak_point"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.cuts: GatewayCuts | None = None
        """the latest analysis (None before the first)"""
        self.cuts_at = 0.0
        self.known: dict[str, Incident] = {}
        """weak point key (`node:X` / `link:a|b`) → its incident (announced or not)"""
        self.baseline_taken = False
        self._seen_nodes: set[str] = set()
        """nodes in the graph at the previous analysis"""
        self._next_at: float | None = None
        self.computed_outside = False
        """the owner computes the cuts elsewhere (`known_mesh_copy` → a thread →
        `take`; the service, so that ~0.5 s at 35,000 nodes never holds its event
        loop); the tick then does nothing here"""

    def evaluate(self, now: float) -> None:
        if self.computed_outside:
            return
        if self._next_at is None:  # the first analysis comes one interval after the start
            self._next_at = now + self.settings.weak_point_interval_s
        if now < self._next_at:
            return
        self._next_at = now + self.settings.weak_point_interval_s
        self.take(gateway_cuts(*self.known_mesh()), now)

    def compute(self, now: float) -> GatewayCuts:
        """Who loses every gateway if one node or one link fails, now (kept as `cuts`)."""
        adj, gateways = self.known_mesh()
        self.cuts = gateway_cuts(adj, gateways)
        self.cuts_at = now
        return self.cuts

    def take(self, cuts: GatewayCuts, now: float) -> None:
        """The cuts of the mesh as of `now`: keep them, open and resolve incidents."""
        self.cuts, self.cuts_at = cuts, now
        if self.settings.weak_point_alerts:
            self._follow(cuts, now)

    def known_mesh_copy(self) -> tuple[dict[str, list[str]], list[str]]:
        """`known_mesh` as plain lists another thread may read while the graph changes."""
        adj, gateways = self.known_mesh()
        if isinstance(adj, dict):
            return adj, gateways  # (built just now, with the ghost edges)
        return {n: list(nbrs) for n, nbrs in self.topology.graph._adj.items()}, gateways

    def known_mesh(self) -> tuple[Mapping[str, Sequence[str]] | Any, list[str]]:
        """The mesh as it is wired, failed parts included (adjacency, gateways): the live
        graph plus ghost edges, without down links."""
        graph = self.topology.graph
        gateways = [n for n, s in self.topology.nodes.items() if s.is_gateway]
        ghosts = [p for p, g in self.facts.ghosts.items()
                  if not g.down and not graph.has_edge(*p)]
        if not ghosts:
            return graph.adj, gateways
        adj: dict[str, list[str]] = {n: list(nbrs) for n, nbrs in graph.adj.items()}
        for a, b in ghosts:
            adj.setdefault(a, []).append(b)
            adj.setdefault(b, []).append(a)
        return adj, gateways

    def _follow(self, cuts: GatewayCuts, now: float) -> None:
        """Open and resolve incidents as the weak points of `cuts` differ from the last."""
        current: dict[str, tuple[list[str], list[LinkRef], list[str]]] = {}
        for node, cut in cuts.node_cuts.items():
            current[f"node:{node}"] = ([node], [], cut)
        for (a, b), cut in cuts.link_cuts.items():
            if cut in (cuts.node_cuts.get(a), cuts.node_cuts.get(b)):
                continue  # the same weakness as the node at its end: one alert is enough
            current[f"link:{a}|{b}"] = ([], [LinkRef(a, b, self._edge_kind(a, b))], cut)
        before, self._seen_nodes = self._seen_nodes, set(self.topology.graph)
        if not self.baseline_taken:
            self.baseline_taken = True
            for key, (nodes, links, cut) in current.items():
                self.known[key] = self._incident(key, nodes, links, cut, now)
            return
        book = self.book
        for key in [k for k in self.known if k not in current]:
            inc = self.known.pop(key)
            if inc.id in book.open:
                book.close(inc, now)
            else:
                inc.ended_at = now
        for key, (nodes, links, cut) in current.items():
            known = self.known.get(key)
            if known is not None:
                known.affected = cut
                continue
            inc = self._incident(key, nodes, links, cut, now)
            self.known[key] = inc
            named = [*nodes, *(n for ln in links for n in (ln.a, ln.b)), *cut]
            if all(n in before for n in named):
                book.announce(inc)

    @staticmethod
    def _incident(key: str, nodes: list[str], links: list[LinkRef], cut: list[str],
                  now: float) -> Incident:
        return Incident(incident_id("weak_point", [key], now), "weak_point", "info", now,
                        cause_nodes=nodes, cause_links=links, affected=cut, confirmed=True)

    def _edge_kind(self, a: str, b: str) -> str:
        for link in self.topology.node_links(a):
            if link.dst in (a, b) and link.key.src in (a, b):
                return link.key.kind
        return "other"

    def snapshot(self) -> dict[str, Any]:
        return {"weak_points": {k: i.to_dict() for k, i in self.known.items()},
                "weak_baseline_taken": self.baseline_taken}

    def restore(self, snap: dict[str, Any], now: float) -> None:
        open_ = self.book.open
        self.known = {k: open_.get(d["id"]) or Incident.from_dict(d)
                      for k, d in snap.get("weak_points", {}).items()}
        self.baseline_taken = bool(snap.get("weak_baseline_taken"))
