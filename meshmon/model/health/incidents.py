"""Incidents, the changes detectors report about them, and the book every detector shares."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from meshmon.model.state import LinkRef

ChangeKind = Literal["opened", "updated", "resolved", "cancelled"]


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
    """What happened to one incident."""

    what: ChangeKind
    incident: Incident


def incident_id(kind: str, cause: Iterable[str], started_at: float) -> str:
    """A stable short id from what the incident is about and when it started."""
    text = f"{kind}|{'|'.join(sorted(cause))}|{started_at:.3f}"
    return f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


class IncidentBook:
    """The open incidents of every kind (pending outages included), by id, and the
    changes made to them since the last `take_changes()`."""

    def __init__(self) -> None:
        self.open: dict[str, Incident] = {}
        self._changes: list[Change] = []

    def add(self, inc: Incident) -> None:
        """Keep a pending incident (nobody hears of it before `confirm`)."""
        self.open[inc.id] = inc

    def announce(self, inc: Incident) -> None:
        """Open a confirmed incident: it is news."""
        inc.confirmed = True
        self.open[inc.id] = inc
        self._changes.append(Change("opened", inc))

    def confirm(self, inc: Incident) -> None:
        """A pending incident is confirmed: it is news now."""
        inc.confirmed = True
        self._changes.append(Change("opened", inc))

    def updated(self, inc: Incident) -> None:
        """`inc` changed (its affected nodes, its severity); news only once confirmed."""
        if inc.confirmed:
            self._changes.append(Change("updated", inc))

    def close(self, inc: Incident, now: float) -> None:
        """It is over: resolved if it was ever news, else cancelled."""
        del self.open[inc.id]
        inc.ended_at = now
        self._changes.append(Change("resolved" if inc.confirmed else "cancelled", inc))

    def cancel(self, inc: Incident) -> None:
        """A pending incident turned out not to be one (never news)."""
        del self.open[inc.id]
        self._changes.append(Change("cancelled", inc))

    def of_kind(self, kind: str) -> list[Incident]:
        """The open incidents of one kind, in the order they were added."""
        return [i for i in self.open.values() if i.kind == kind]

    def take_changes(self) -> list[Change]:
        """The changes since the last call."""
        changes, self._changes = self._changes, []
        return changes

    def snapshot(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.open.values()]

    def restore(self, saved: Iterable[dict[str, Any]]) -> None:
        self.open = {d["id"]: Incident.from_dict(d) for d in saved}
        self._changes = []
