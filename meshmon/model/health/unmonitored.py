"""Silent bridges: the nodes a `meshmon-bridge` speaks for are `unmonitored` while it is away.

When a bridge's status goes offline (its last will, or a clean stop), nothing more is
heard of the nodes whose `info.source.via` names it, and that says nothing about them:
they are `unmonitored`, not offline. Their silence is excused (`Facts.excused`: it makes
no outage, no flapping, no silent agent) and the topology holds them as they were (no
timeout, no link ageing). One `bridge_silent` incident per bridge says so, naming the
bridge as its cause and its nodes as affected; it resolves when the bridge is back.

Then each node waits for what the bridge publishes: it is monitored again as soon as
it comes online or goes offline (the bridge says so, or its timeout — counted from the
bridge's return — runs out: an outage as usual), as soon as anything is heard of a node
that is online, and at the end of its grace (its own offline timeout from the bridge's
return: one full round of the bridge), when a node that is still offline becomes a
failure. A node that was already failed when its bridge went away stays failed: its
outage goes on.

A bridge heard of for the first time while offline (its retained last will, at a start
without saved state) went away before the collector knew it: its nodes are unmonitored,
but there is no incident (as nodes already down at such a start are no news).
"""

from __future__ import annotations

from typing import Any

from meshmon.model.changelog import BridgePresence, Entry, InfoChanged, Presence
from meshmon.model.health.detector import Detector
from meshmon.model.health.incidents import Incident, incident_id

KIND = "bridge_silent"


class UnmonitoredDetector(Detector):
    """Nodes of offline bridges are `unmonitored`; one `bridge_silent` incident per bridge."""

    kind = KIND
    observes = (BridgePresence, Presence, InfoChanged)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.waiting: dict[str, str] = {}
        """unmonitored node → the bridge it waits for"""
        self.grace: dict[str, tuple[float, float]] = {}
        """node whose bridge is back → (when it came back, until when the node may stay
        quiet before its silence counts)"""
        self.incidents: dict[str, Incident] = {}
        """bridge → its open `bridge_silent` incident"""

    # ------------------------------------------------------------------ inputs
    def observe(self, entry: Entry) -> None:
        if isinstance(entry, BridgePresence):
            if entry.online:
                self._bridge_back(entry)
            else:
                self._bridge_gone(entry)
        elif isinstance(entry, Presence):
            # a node heard of since its bridge came back is monitored again; one that
            # goes offline then is a failure like any other (Facts follows right after)
            for node in entry.nodes:
                if node in self.grace:
                    self._monitored(node)
        elif isinstance(entry, InfoChanged):
            self._info_changed(entry.node, entry.at)

    def _bridge_gone(self, entry: BridgePresence) -> None:
        for node in entry.nodes:
            self._wait(node, entry.bridge)
        if not entry.known or entry.bridge in self.incidents:
            return
        inc = Incident(
            incident_id(KIND, [entry.bridge], entry.at), KIND, "warning", entry.at,
            cause_nodes=[entry.bridge], affected=list(entry.nodes),
            details={"bridge": entry.bridge, "unmonitored": len(entry.nodes)},
        )
        self.incidents[entry.bridge] = inc
        self.book.announce(inc)

    def _bridge_back(self, entry: BridgePresence) -> None:
        for node in entry.nodes:
            state = self.topology.nodes.get(node)
            if node in self.waiting and state is not None:
                self.grace[node] = (entry.at, entry.at + self.topology.offline_after(state))
        inc = self.incidents.pop(entry.bridge, None)
        if inc is not None and inc.id in self.book.open:
            self.book.close(inc, entry.at)

    def _info_changed(self, node: str, now: float) -> None:
        """A node's info may name another bridge now (or none)."""
        bridges = self.topology.bridges
        via = bridges.via(node)
        waits_for = self.waiting.get(node)
        if via is not None and bridges.offline(via):
            if waits_for != via:
                if waits_for is not None:
                    self._forget(node, waits_for)
                self._wait(node, via)
                self._note_affected(via, node, add=True)
        elif waits_for is not None and via != waits_for and node not in self.grace:
            # it left its silent bridge: it gets a round of its own to be heard of, as when
            # a bridge comes back (the topology counts its timeouts from now)
            self._note_affected(waits_for, node, add=False)
            state = self.topology.nodes.get(node)
            wait = self.topology.offline_after(state) if state is not None else 0.0
            self.grace[node] = (now, now + wait)

    def _wait(self, node: str, bridge: str) -> None:
        self.waiting[node] = bridge
        self.grace.pop(node, None)
        self.facts.excused.add(node)
        self.facts.stale = True

    def _forget(self, node: str, bridge: str) -> None:
        self.waiting.pop(node, None)
        self.facts.excused.discard(node)
        self._note_affected(bridge, node, add=False)

    def _note_affected(self, bridge: str, node: str, add: bool) -> None:
        inc = self.incidents.get(bridge)
        if inc is None:
            return
        if add and node not in inc.affected:
            inc.affected = sorted([*inc.affected, node])
        elif not add and node in inc.affected:
            inc.affected = [n for n in inc.affected if n != node]
        else:
            return
        inc.details = {**inc.details, "unmonitored": len(inc.affected)}
        self.book.updated(inc)

    def _monitored(self, node: str) -> None:
        """The node is watched as usual again (its bridge speaks for it)."""
        self.grace.pop(node, None)
        self.waiting.pop(node, None)
        self.facts.excused.discard(node)
        self.facts.stale = True

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, now: float) -> None:
        if not self.grace:
            return
        facts, nodes = self.facts, self.topology.nodes
        for node, (back_at, until) in list(self.grace.items()):
            state = nodes.get(node)
            if state is None or (state.online and (state.last_seen or 0.0) >= back_at):
                # the bridge spoke for it: it follows the bridge from here (the topology
                # counts its timeout from the bridge's return)
                self._monitored(node)
            elif now > until:
                self._monitored(node)
                if not state.online and node not in facts.failed and (
                        node not in facts.known_down):
                    # offline after a whole round of its bridge: a failure of its own
                    facts.failed[node] = until
                    facts.failed_now(node, now)

    # ------------------------------------------------------------------ queries
    def condition(self, node: str) -> str | None:
        return "unmonitored" if node in self.waiting else None

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        return {"unmonitored": dict(self.waiting),
                "unmonitored_grace": {n: list(g) for n, g in self.grace.items()}}

    def restore(self, snap: dict[str, Any], now: float) -> None:
        self.waiting = {str(n): str(b) for n, b in snap.get("unmonitored", {}).items()}
        self.grace = {str(n): (float(g[0]), float(g[1]))
                      for n, g in snap.get("unmonitored_grace", {}).items()}
        self.incidents = {str(i.details.get("bridge")): i for i in self.book.of_kind(KIND)}
        self.facts.excused.update(self.waiting)
