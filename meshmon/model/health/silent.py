"""Silent agents: a node whose agent went quiet while its neighbours' radios still hear it.

Such a node is not an outage (the router is up, its agent or uplink is not): it leaves
the failed nodes for `silent`, with one `silent` incident, until the agent speaks again
(resolved) or the neighbours stop hearing it too (resolved; the node is failed again and
root cause takes it from there). Only links that say how long ago the peer was heard
(`inactive_ms`: Wi-Fi station dumps, batman) count as hearing: a routing table may list
a dead neighbour for minutes.
"""

from __future__ import annotations

import math
from typing import Any

from meshmon.model.changelog import Entry, Presence
from meshmon.model.health.detector import EVIDENCE_MARGIN_S, Detector
from meshmon.model.health.incidents import Incident, incident_id

RECHECK_S = 1.0
"""quiet nodes are re-checked this often for neighbours that (still) hear them"""


class SilentDetector(Detector):
    """Failed nodes that neighbours still hear become `silent`, and back."""

    kind = "silent"
    observes = (Presence,)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.evidence_floor: dict[str, float] = {}
        """node → last time neighbours heard it before they stopped (silent → failed)"""
        self.incidents: dict[str, Incident] = {}
        """silent node → its open incident"""
        self._last_check = -math.inf

    def observe(self, entry: Entry) -> None:
        if isinstance(entry, Presence) and entry.online:
            for node in entry.nodes:
                self.evidence_floor.pop(node, None)

    def evaluate(self, now: float) -> None:
        facts = self.facts
        if not (facts.failed or facts.silent):
            return
        if not facts.changed and now - self._last_check < RECHECK_S:
            return
        self._last_check = now
        nodes = self.topology.nodes
        for node in list(facts.failed):
            state = nodes.get(node)
            if state is None:
                continue
            quiet_since = max(state.last_seen or facts.failed[node],
                              self.evidence_floor.get(node, -math.inf))
            if self._heard_at(node) > quiet_since + EVIDENCE_MARGIN_S:
                del facts.failed[node]
                facts.silent[node] = now
                facts.stale = True
                inc = Incident(
                    incident_id("silent", [node], now), "silent", "warning", quiet_since,
                    cause_nodes=[node], details={"last_heard_from_agent": quiet_since},
                )
                self.incidents[node] = inc
                self.book.announce(inc)
        for node in list(facts.silent):
            state = nodes.get(node)
            if state is None or state.online:
                facts.silent.pop(node)
                self._close(node, now)
                continue
            heard = self._heard_at(node)
            if heard < now - self.topology.offline_after(state):
                # the neighbours stopped hearing it too: the router is down now
                facts.silent.pop(node)
                facts.failed[node] = max(heard, state.last_seen or heard)
                self.evidence_floor[node] = heard  # only newer hearing makes it silent again
                facts.failed_now(node, now)
                facts.stale = True
                self._close(node, now)

    def _close(self, node: str, now: float) -> None:
        inc = self.incidents.pop(node, None)
        if inc is not None and inc.id in self.book.open:
            self.book.close(inc, now)

    def _heard_at(self, node: str) -> float:
        """The latest moment an online neighbour's radio heard `node` (-inf: none)."""
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

    def condition(self, node: str) -> str | None:
        return "silent" if node in self.facts.silent else None

    def restore(self, snap: dict[str, Any], now: float) -> None:
        self.incidents = {i.cause_nodes[0]: i for i in self.book.of_kind("silent")
                          if i.cause_nodes}
