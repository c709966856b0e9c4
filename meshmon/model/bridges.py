"""The bridges that speak for nodes without an agent, and the nodes that wait for theirs.

A `meshmon-bridge` publishes its own retained status (`PREFIX/v1/bridge/ID/status`; its
last will is `online: false`) and the nodes it polls, each with `info.source.via = ID`.
While a bridge is offline nothing is heard of its nodes, and that says nothing about
them: they are *held* — they do not time out and their links do not age (the topology
asks `held`). When the bridge is back, their timeouts count from its return
(`timers_from`): it gets one full round to speak for them before silence means
anything. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from meshmon.model.state import BridgeState
from meshmon.model.wire import BridgeStatus


class BridgeChange(NamedTuple):
    """A bridge came online or went offline."""

    bridge: str
    online: bool
    nodes: tuple[str, ...]
    """the nodes it speaks for (sorted)"""
    known: bool
    """False when this is the first status the collector hears from it"""


class Bridges:
    """Every bridge heard of, which nodes each speaks for, and which nodes are held."""

    def __init__(self) -> None:
        self.states: dict[str, BridgeState] = {}
        self.held: set[str] = set()
        """nodes whose bridge is offline: no timeout, no link ageing"""
        self.timers_from: dict[str, float] = {}
        """node → its timeouts count from here at the earliest (its bridge came back)"""
        self._nodes: dict[str, set[str]] = {}
        """bridge → the nodes whose info names it"""
        self._via: dict[str, str] = {}
        """node → the bridge its info names"""

    # ------------------------------------------------------------------ inputs
    def apply_status(self, status: BridgeStatus, now: float) -> BridgeChange | None:
        """Note a bridge's status (or last will); what changed, if anything (a bridge
        heard of for the first time is a change, `known=False`)."""
        state = self.states.get(status.bridge)
        if state is not None and state.online == status.online:
            state.last_seen, state.ts = now, status.ts
            return None
        nodes = self.nodes_of(status.bridge)
        if state is None:
            self.states[status.bridge] = BridgeState(status.bridge, status.online, now, now,
                                                     status.ts)
        else:
            state.online, state.since, state.last_seen, state.ts = (
                status.online, now, now, status.ts)
            if status.online:  # back: its nodes get a full round from now
                self.held.difference_update(nodes)
                for node in nodes:
                    self.timers_from[node] = now
        if not status.online:
            self.held.update(nodes)
        return BridgeChange(status.bridge, status.online, tuple(nodes), state is not None)

    def node_source(self, node: str, via: str | None, now: float) -> bool:
        """A node's info names bridge `via` (None: no bridge); True when that released it
        (it was held and its new bridge runs, or it has none)."""
        old = self._via.get(node)
        if old != via:
            if old is not None:
                self._discard(node, old)
            if via is not None:
                self._via[node] = via
                self._nodes.setdefault(via, set()).add(node)
        if via is not None and self.offline(via):
            self.held.add(node)
            return False
        if node in self.held:
            self.held.discard(node)
            self.timers_from[node] = now
            return True
        return False

    def forget_timers(self, before: float) -> None:
        """Drop the return times older than `before` (they no longer delay anything)."""
        timers = self.timers_from
        for node in [n for n, t in timers.items() if t < before]:
            del timers[node]

    # ------------------------------------------------------------------ queries
    def offline(self, bridge: str) -> bool:
        """Whether `bridge` is known and offline."""
        state = self.states.get(bridge)
        return state is not None and not state.online

    def via(self, node: str) -> str | None:
        """The bridge that speaks for `node` (None: its own agent, as far as we know)."""
        return self._via.get(node)

    def ids(self) -> list[str]:
        """Every bridge heard of or named by a node's info, sorted."""
        return sorted(self.states.keys() | self._nodes.keys())

    def nodes_of(self, bridge: str) -> list[str]:
        """The nodes whose info names `bridge`, sorted."""
        return sorted(self._nodes.get(bridge, ()))

    def held_since(self, node: str) -> float:
        """When the node's timeouts may start counting (-inf: no bridge delays them)."""
        return self.timers_from.get(node, -math.inf)

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> list[dict[str, Any]]:
        """The bridges' states (the nodes each speaks for come back with the nodes)."""
        return [s.to_dict() for s in self.states.values()]

    def restore(self, saved: Iterable[Mapping[str, Any]], vias: Iterable[tuple[str, str]],
                now: float) -> None:
        """Replace everything: the saved bridge states and (node, bridge) of every node a
        bridge speaks for; held nodes follow from them, and nodes of running bridges get
        their timeouts from `now` like every restored node."""
        self.states = {}
        for d in saved:
            state = BridgeState.from_dict(d)
            self.states[state.id] = state
        self._nodes, self._via, self.held, self.timers_from = {}, {}, set(), {}
        for node, via in vias:
            self.node_source(node, via, now)

    def _discard(self, node: str, bridge: str) -> None:
        del self._via[node]
        nodes = self._nodes.get(bridge)
        if nodes is not None:
            nodes.discard(node)
            if not nodes:
                del self._nodes[bridge]
