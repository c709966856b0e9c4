"""The one entry point to the collector's model: messages in, time in, what changed out.

`Core` owns the topology, the health detectors and the change log. A decoded message
enters by `apply(message, now)`, time by `tick(now)`; both return `Effects`, the log
entries that call appended. What must happen with each call's effects at once (the
sample and event sinks: a report is written while it is at hand) takes them from the
return value; every other consumer (state saver, web documents, live views, alerts)
reads the same entries from the log at its own position (`core.log.follow()`). Pure: no
asyncio, no sockets, no clock — `now` is an argument.

What happens where:

- `apply` updates the topology and appends what changed: `Reported` (the node, its
  links and their resolved peers), `Presence` when a report or status turned a node
  online or offline, `InfoChanged`, `LinksRemoved`/`LinksAdded` when an announced
  MAC re-keys links, and `BridgePresence` when a bridge's status went online or
  offline. The health detectors observe each entry as it is appended (they note,
  cheaply; they judge on the tick).
- `tick` expires silent nodes and stale links (`Presence`, `LinksRemoved`), lets the
  detectors evaluate, and appends their incident changes (`IncidentsChanged`).
- `restore` replaces the state with a saved one (`Restored`) at start; the bridges'
  states travel with the health snapshot (`snapshot()`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshmon.model import wire
from meshmon.model.changelog import (
    CAPACITY,
    BridgePresence,
    ChangeLog,
    Entry,
    IncidentsChanged,
    InfoChanged,
    LinksAdded,
    LinksRemoved,
    Presence,
    Reported,
    Restored,
)
from meshmon.model.fastwire import Message, Report
from meshmon.model.health import DETECTORS, Change, Detector, Health, HealthSettings
from meshmon.model.state import LinkKey, LinkState, NodeState
from meshmon.model.topology import Rekeyed, Topology
from meshmon.model.wire import BridgeStatus, Status

RECENT_REPORTS = 8
"""reports per node remembered to tell a redelivered one (QoS 1: the broker sends again
what was not acknowledged when a connection broke)"""
REPORT_TYPES = (Report, wire.Report)
"""a decoded report (Struct) or one built with the model (tests, tools)"""



@dataclass
class CoreSettings:
    """Timeouts of the topology and the health detectors' settings."""

    offline_after_intervals: float = 3.0
    link_timeout_s: float = 300.0
    offline_after_s: float = 0.0
    """when > 0, the fixed silence after which a node is offline (overrides intervals)"""
    health: HealthSettings = field(default_factory=HealthSettings)
    log_capacity: int = CAPACITY


@dataclass(slots=True)
class Effects:
    """What one `apply` or `tick` changed: the change log entries it appended."""

    entries: list[Entry]

    @property
    def presence(self) -> list[tuple[str, bool, str]]:
        """(node, online, why) for each node that came online or went offline."""
        return [(n, e.online, e.why) for e in self.entries if isinstance(e, Presence)
                for n in e.nodes]

    @property
    def incidents(self) -> list[Change]:
        """Incident changes (opened, updated, resolved, cancelled)."""
        return [c for e in self.entries if isinstance(e, IncidentsChanged) for c in e.changes]

    @property
    def links_removed(self) -> list[LinkKey]:
        """Links that left the topology (aged out, or re-keyed to their node)."""
        return [k for e in self.entries if isinstance(e, LinksRemoved) for k in e.keys]

    @property
    def dsts(self) -> tuple[str | None, ...]:
        """The resolved peer of each link of the report applied (empty for other calls)."""
        return next((e.dsts for e in self.entries if isinstance(e, Reported)), ())


class Core:
    """Topology, health and the change log of one collector."""

    def __init__(self, settings: CoreSettings | None = None,
                 detectors: Sequence[type[Detector]] = DETECTORS) -> None:
        self.settings = settings = settings or CoreSettings()
        self.log = ChangeLog(settings.log_capacity)
        self.topology = Topology(
            offline_after_intervals=settings.offline_after_intervals,
            link_timeout_s=settings.link_timeout_s,
            offline_after_s=settings.offline_after_s,
        )
        self.health = Health(self.topology, settings.health, detectors)
        self._recent: dict[str, tuple[int, ...]] = {}
        """per node, the (seq, ts) fingerprints of its latest reports"""
        self.duplicates = 0
        """reports applied already (redelivered), ignored"""
        self._wills: dict[str, float] = {}
        """nodes offline by their last will (or an offline status), and since when"""

    # ------------------------------------------------------------------ entry points
    def apply(self, message: Message | wire.Report, now: float,
              redelivered: bool = False) -> Effects:
        """Apply one decoded message received at `now`; a `redelivered` report (MQTT's
        DUP flag) that was applied already changes nothing."""
        if isinstance(message, REPORT_TYPES):  # the hot path: ~all messages, kept flat
            seen = hash((message.seq, message.ts))
            recent = self._recent.get(message.node, ())
            if redelivered and seen in recent:
                self.duplicates += 1
                return Effects([])
            self._recent[message.node] = (*recent[1 - RECENT_REPORTS:], seen)
            topology = self.topology
            known = topology.nodes.get(message.node)
            was_online = known is not None and known.online
            # a report sent before the node's last will does not bring it back
            stale = not was_online and bool(self._wills) and self._sent_before_will(message)
            links_before = len(topology.links)
            done = topology.apply_report(message, now, not stale)
            entry = Reported(now, message.node, done.dsts, done.keys, done.states,
                             len(topology.links) - links_before)
            self.log.append(entry)
            self.health.observe(entry)
            if was_online or stale:
                return Effects([entry])
            came = Presence(now, (message.node,), True, "report")
            self._append(came)
            return Effects([entry, came])
        start = self.log.end
        if isinstance(message, Status):
            if message.online:
                self._wills.pop(message.node, None)
            else:
                self._wills[message.node] = now
            if self.topology.apply_status(message, now):
                self._append(Presence(now, (message.node,), message.online, "status"))
        elif isinstance(message, BridgeStatus):
            change = self.topology.apply_bridge_status(message, now)
            if change is not None:
                self._append(BridgePresence(now, change.bridge, change.online, change.nodes,
                                            change.known))
        else:
            rekeyed = self.topology.apply_info(message, now)
            self._append(InfoChanged(now, message.node))
            self._log_rekeyed(rekeyed, now)
        return Effects(self.log.since(start))

    def tick(self, now: float, quiet_as_of: float | None = None) -> Effects:
        """Let time pass: expiry, then health; `quiet_as_of` is the moment silence is
        judged by (default `now`; earlier while messages wait unread in a backlog)."""
        log = self.log
        start = log.end
        expired = self.topology.expire(now if quiet_as_of is None else quiet_as_of)
        if expired.nodes_offline:
            self._append(Presence(now, tuple(expired.nodes_offline), False, "timeout"))
        if expired.links_removed:
            self._append(LinksRemoved(now, tuple(expired.links_removed), "expired"))
        changes = self.health.evaluate(now)
        if changes:
            log.append(IncidentsChanged(now, tuple(changes)))
        effects = Effects(log.since(start))
        if not log.followed:
            log.trim()  # nobody reads the log: keep only this call's entries (as effects)
        return effects

    def restore(self, nodes: Iterable[NodeState], links: Iterable[LinkState],
                health: dict[str, Any] | None, now: float) -> Effects:
        """Resume from saved state (collector start): nodes and links get their full
        timeouts from `now`; `health` is a `snapshot()` (None: nodes offline now are not
        news)."""
        start = self.log.end
        bridges = (health or {}).get("bridges", [])
        rekeyed = self.topology.restore(nodes, links, now=now, bridges=bridges)
        self._recent = {n.id: (hash((n.last_report.seq, n.last_report.ts)),)
                        for n in self.topology.nodes.values() if n.last_report is not None}
        self._append(Restored(now))
        self._log_rekeyed(rekeyed, now)
        self.health.restore(health, now)
        return Effects(self.log.since(start))

    def _sent_before_will(self, report: Report | wire.Report) -> bool:
        """Whether `report` was sent (agent clock) before its node's last will arrived: it
        waited behind other nodes' reports while the will went ahead on its own connection;
        its samples are kept, the node stays offline. A report sent later (the node is back)
        brings the node online."""
        will_at = self._wills.get(report.node)
        if will_at is None:
            return False
        if report.ts < will_at:
            return True
        del self._wills[report.node]
        return False

    def snapshot(self) -> dict[str, Any]:
        """The health state and the bridges' states, saved with the alert state (`restore`
        takes them back)."""
        return {**self.health.snapshot(), "bridges": self.topology.bridges.snapshot()}

    def _append(self, entry: Entry) -> None:
        """Log one entry and let the detectors observe it."""
        self.log.append(entry)
        self.health.observe(entry)

    def _log_rekeyed(self, rekeyed: Rekeyed, now: float) -> None:
        if rekeyed.removed:
            self._append(LinksRemoved(now, tuple(rekeyed.removed), "rekeyed"))
        if rekeyed.added:
            self._append(LinksAdded(now, tuple(rekeyed.added)))
