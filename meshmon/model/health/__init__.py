"""Health of the mesh: one detector per incident kind on a shared incident book.

Pure: time comes in as `now`. The core hands `Health` each change log entry as it
appends it (`observe`: cheap, on the ingest path) and calls `evaluate(now)` every tick;
each detector opens, updates, resolves or cancels its incidents in the book, and
`evaluate` returns those `Change`s: `opened` (confirmed, to be notified), `updated`,
`resolved`, and `cancelled` (dropped before it was ever opened). The detectors, in
order (the order is also the precedence of the node conditions they name):

- `bridge_silent`: the nodes of a bridge that went offline are `unmonitored`, not failed
  (`unmonitored.py`);
- `flapping`: nodes and links that go up and down too often (`flapping.py`);
- `silent`: an agent is quiet while neighbours still hear its radio (`silent.py`);
- `outage`: failed nodes and down links, grouped by root cause (`outage.py`);
- `degraded`: links below their thresholds or their own baseline (`degraded.py`);
- `weak_point`: single points of failure on the mesh as wired (`weak_points.py`).

A new kind is one module with a `Detector` subclass (`detector.py` says what it gets),
added to `DETECTORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from meshmon.model.changelog import Entry, Presence
from meshmon.model.health.degraded import DegradedDetector
from meshmon.model.health.detector import (
    Detector,
    Facts,
    Ghost,
    HealthSettings,
    NodeCondition,
)
from meshmon.model.health.flapping import FlappingDetector
from meshmon.model.health.incidents import Change, Incident, IncidentBook, incident_id
from meshmon.model.health.outage import OutageDetector
from meshmon.model.health.silent import SilentDetector
from meshmon.model.health.unmonitored import UnmonitoredDetector
from meshmon.model.health.weak_points import WeakPointDetector
from meshmon.model.state import LinkKey, LinkRef
from meshmon.model.topology import Topology

__all__ = [
    "DETECTORS", "Change", "Detector", "Facts", "Ghost", "Health", "HealthSettings",
    "Incident", "IncidentBook", "NodeCondition", "incident_id",
]  # fmt: skip

DETECTORS: tuple[type[Detector], ...] = (
    UnmonitoredDetector, FlappingDetector, SilentDetector, OutageDetector, DegradedDetector,
    WeakPointDetector,
)
"""every incident kind, in evaluation order (and precedence of the conditions they name)"""

SNAPSHOT_VERSION = 1
D = TypeVar("D", bound=Detector)


class Health:
    """The detectors of one topology, their shared facts and incident book."""

    def __init__(self, topology: Topology, settings: HealthSettings | None = None,
                 detectors: Sequence[type[Detector]] = DETECTORS) -> None:
        self.topology = topology
        self.settings = settings or HealthSettings()
        self.facts = Facts(topology, self.settings)
        self.book = self.facts.book
        self.detectors = [cls(self.facts) for cls in detectors]
        self._observers: dict[type, list[Callable[[Entry], None]]] = {}
        """entry type → the `observe` of each detector that takes it, in order"""
        for detector in self.detectors:
            for kind in detector.observes:
                self._observers.setdefault(kind, []).append(detector.observe)
        self._naming = [d for d in self.detectors if type(d).condition is not Detector.condition]
        """the detectors that name node conditions (asked for every node of a document)"""

    def detector(self, cls: type[D]) -> D:
        """The running detector of class `cls`."""
        return next(d for d in self.detectors if isinstance(d, cls))

    @property
    def incidents(self) -> dict[str, Incident]:
        """Open incidents (pending ones included) by id."""
        return self.book.open

    # ------------------------------------------------------------------ inputs
    def observe(self, entry: Entry) -> None:
        """Hand one change log entry to the detectors that observe its kind."""
        for observe in self._observers.get(type(entry), ()):
            observe(entry)
        if type(entry) is Presence:
            facts = self.facts
            for node in entry.nodes:
                facts.node_changed(node, entry.online, entry.at)

    def evaluate(self, now: float) -> list[Change]:
        """Let every detector look at what changed and at the time; what it changed."""
        for detector in self.detectors:
            detector.evaluate(now)
        return self.book.take_changes()

    # ------------------------------------------------------------------ queries
    def node_condition(self, node: str) -> NodeCondition | str:
        """online | offline | silent | unreachable | flapping | unmonitored (or a newer
        kind's word)"""
        for detector in self._naming:
            condition = detector.condition(node)
            if condition is not None:
                return condition
        state = self.topology.nodes.get(node)
        return "online" if state is not None and state.online else "offline"

    def link_condition(self, key: LinkKey) -> str:
        """up | degraded"""
        return self.detector(DegradedDetector).link_condition(key)

    def outages(self) -> list[Incident]:
        """Confirmed open outages, oldest first."""
        return self.detector(OutageDetector).outages()

    def down_links(self) -> list[LinkRef]:
        """Links that went down between live nodes and are still missing."""
        return self.detector(OutageDetector).down_links()

    def fading_links(self) -> list[dict[str, Any]]:
        """Links whose recent signal is below their baseline by half the drop threshold."""
        return self.detector(DegradedDetector).fading_links()

    def next_deadline(self) -> float:
        """When the first pending outage's group wait ends (inf: none pending)."""
        return self.detector(OutageDetector).next_deadline()

    @property
    def last_duration_ms(self) -> float:
        """How long the last root-cause evaluation took."""
        return self.detector(OutageDetector).last_duration_ms

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """Everything that must survive a restart (baselines rebuild from new samples)."""
        facts = self.facts
        snap: dict[str, Any] = {
            "version": SNAPSHOT_VERSION,
            "failed": facts.failed,
            "silent": facts.silent,
            "ghosts": [[a, b, g.kind, g.since, g.down] for (a, b), g in facts.ghosts.items()],
            "incidents": self.book.snapshot(),
        }
        for detector in self.detectors:
            snap.update(detector.snapshot())
        return snap

    def restore(self, snap: dict[str, Any] | None, now: float) -> None:
        """Resume from a snapshot; without one, nodes offline now are not news."""
        facts = self.facts
        if not snap:
            facts.reconcile()
            return
        facts.failed = {n: float(t) for n, t in snap.get("failed", {}).items()}
        facts.silent = {n: float(t) for n, t in snap.get("silent", {}).items()}
        facts.ghosts = {(a, b): Ghost(k, since, down)
                        for a, b, k, since, down in snap.get("ghosts", [])}
        self.book.restore(snap.get("incidents", []))
        for detector in self.detectors:
            detector.restore(snap, now)
        # nodes whose saved state disagrees with the snapshot (saved in slices) follow
        # the topology, which is what the core will keep applying from now on
        facts.reconcile()
