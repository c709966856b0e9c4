"""What every detector shares (`Facts`) and the interface one incident kind implements.

A detector is one module: a `Detector` subclass that takes the core's change log entries
of the kinds it names in `observes` as the core appends them (`observe`), opens, updates
and closes its kind of incident in the shared book on each tick (`evaluate`), may name a
node's condition (`condition`), and saves what must survive a restart
(`snapshot`/`restore`). `Health` runs the detectors of `DETECTORS`
in order: that order is also the precedence of the conditions they name.

What more than one detector needs is in `Facts`: which nodes failed (offline, not
silent) and since when, which agents are silent, which nodes were already down at the
first start, edges the live graph lost (ghosts), which elements flap; and two calls one
detector makes to another: a failure that was a node's own (`own_failures`: the outage
detector tells the flapping one) and a node failed just now (`failed_now`: also after
being silent). A detector that explains a node's silence elsewhere (say, its bridge is
offline: the node is `unmonitored`) puts it in `excused`: its silence is then no
failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from meshmon.model.changelog import Entry
from meshmon.model.health.incidents import Incident, IncidentBook
from meshmon.model.linkhealth import LinkThresholds
from meshmon.model.state import LinkKey
from meshmon.model.topology import MAC_PREFIX, Topology

NodeCondition = Literal["online", "offline", "silent", "unreachable", "flapping", "unmonitored"]
EVIDENCE_MARGIN_S = 2.0
"""clock slack between a node's own messages and its neighbours' hearing of it"""
Pair = tuple[str, str]
"""an undirected node pair, the smaller id first"""


@dataclass
class HealthSettings(LinkThresholds):
    """Link thresholds plus noise control (the [health] and [alerts] config sections)."""

    group_wait_s: float = 0.5
    flap_changes: int = 3
    flap_window_s: float = 600.0
    weak_point_alerts: bool = True
    """open `weak_point` incidents (else weak points are only computed)"""
    weak_point_interval_s: float = 60.0
    """how often weak points are recomputed"""


@dataclass(slots=True)
class Ghost:
    """An edge the topology no longer has that still matters for root cause."""

    kind: str
    since: float
    down: bool
    """True: both ends were alive when it vanished (the link itself failed)"""


@dataclass
class Facts:
    """The state the detectors share, next to the topology and the incident book."""

    topology: Topology
    settings: HealthSettings
    book: IncidentBook = field(default_factory=IncidentBook)
    failed: dict[str, float] = field(default_factory=dict)
    """offline nodes (not silent) → since when"""
    silent: dict[str, float] = field(default_factory=dict)
    """nodes whose agent is quiet while neighbours still hear them → since when"""
    known_down: set[str] = field(default_factory=set)
    """nodes already offline when the collector started without saved health state:
    not new failures; they count again once they come back"""
    excused: set[str] = field(default_factory=set)
    """nodes whose silence a detector explains otherwise (not failures while here)"""
    ghosts: dict[Pair, Ghost] = field(default_factory=dict)
    """edges the topology dropped while an end was failed, or that went down between
    live nodes (`down`)"""
    flapping: dict[str, Incident] = field(default_factory=dict)
    """flap key (`node:X` / `link:a|b|kind`) → its open flapping incident"""
    stale: bool = True
    """something changed that root cause must look at (a search of the whole mesh)"""
    new_failures: set[str] = field(default_factory=set)
    """nodes that failed since the last root cause run (and nothing else changed unless
    `stale`): the outage detector may then only take them out of what was reachable"""
    touched: bool = False
    """a failed node's edges left the graph (they are ghosts now): no new search needed,
    but the detectors look again (as for any change)"""
    own_failures: Callable[[Iterable[str], float, float], None] = lambda _n, _at, _now: None
    """(nodes, failed at, now): these failures were the nodes' own (they were an outage's
    cause), not being cut off (set by the flapping detector, which counts them)"""
    failed_now: Callable[[str, float], None] = lambda _node, _now: None
    """(node, now): the node failed just now (set by the flapping detector: links that
    dropped shortly before did so because of it)"""

    def alive(self, node: str) -> bool:
        """Not failed and not down since before the start."""
        return node not in self.failed and node not in self.known_down

    def node_changed(self, node: str, online: bool, now: float) -> None:
        """A node came online or went offline (after every detector observed it)."""
        if online:
            # a silent node stays in `silent` until the silent detector closes its incident
            self.stale = True
            self.failed.pop(node, None)
            self.known_down.discard(node)
        elif node not in self.known_down and node not in self.excused:
            if node not in self.failed:
                self.failed[node] = now
                self.new_failures.add(node)
        else:
            self.stale = True

    @property
    def changed(self) -> bool:
        """Whether root cause has something new to look at."""
        return self.stale or self.touched or bool(self.new_failures)

    def reconcile(self) -> None:
        """Follow the topology's online flags where they disagree (at a restart): online
        nodes are not failed; offline ones not known as failed or silent were down
        before the start (no news until they come back)."""
        for n, s in self.topology.nodes.items():
            if s.online:
                self.failed.pop(n, None)
                self.known_down.discard(n)
            elif n not in self.failed and n not in self.silent and n not in self.excused:
                self.known_down.add(n)
        self.stale = True


class Detector:
    """One incident kind. Subclasses override what they need; the defaults do nothing."""

    kind: ClassVar[str]
    observes: ClassVar[tuple[type, ...]] = ()
    """the change log entry types `observe` gets"""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.settings = facts.settings
        self.topology = facts.topology
        self.book = facts.book

    def observe(self, entry: Entry) -> None:
        """Take one change log entry of an `observes` type as it is appended, in order
        (before `Facts` follows a node change)."""

    def evaluate(self, now: float) -> None:
        """Open, update and close this kind's incidents in the book (every tick)."""

    def condition(self, node: str) -> str | None:
        """The node's condition if this detector names one (None: not its business)."""
        return None

    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart (keys shared with the other detectors' snapshots)."""
        return {}

    def restore(self, snap: dict[str, Any], now: float) -> None:
        """Resume from a snapshot (the book and `Facts` are restored first)."""


def pair_of(key: LinkKey) -> tuple[str, str, str]:
    """The undirected pair of a directed link, with its kind."""
    a, b = sorted((key.src, key.peer))
    return (a, b, key.kind)


def resolved(keys: Iterable[LinkKey]) -> list[LinkKey]:
    """The keys whose peer is a node (not an unresolved `mac:`)."""
    return [k for k in keys if not k.peer.startswith(MAC_PREFIX)]
