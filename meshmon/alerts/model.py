"""What an alert is: the engine hands these to notifiers, webhooks receive `to_payload()`.

One incident (an outage, a flapping node, a silent agent…) has one stable `id`; its
`firing` notice, reminders and its `resolved` notice all carry that id.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from meshmon.model.state import LinkRef

__all__ = ["Alert", "LinkRef", "Silence", "iso", "parse_iso"]

PAYLOAD_VERSION = 1
KINDS = ("outage", "flapping", "silent", "degraded", "weak_point", "bridge_silent")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

Status = Literal["firing", "resolved"]


@dataclass(slots=True)
class Alert:
    """One notification about one incident."""

    id: str
    """stable for the incident: firing, reminders and resolved share it"""
    status: Status
    kind: str
    """outage | flapping | silent | degraded | weak_point | bridge_silent"""
    severity: str
    """info | warning | critical"""
    summary: str
    """one short human line: what, where, since when, who is affected"""
    started_at: float
    ended_at: float | None = None
    cause_nodes: list[str] = field(default_factory=list)
    cause_links: list[LinkRef] = field(default_factory=list)
    affected: list[str] = field(default_factory=list)
    """nodes cut off from every gateway by the cause (not counting the cause itself)"""
    tags: list[str] = field(default_factory=list)
    """info tags of the nodes named (for routing)"""
    reminder: bool = False
    sent_at: float = 0.0
    """when the engine made this notice"""
    url: str = ""
    """the maintainer page for this incident (empty without http.public_url)"""
    details: dict[str, Any] = field(default_factory=dict)
    """kind-specific facts, e.g. a degraded link's metrics or a flapping node's changes"""

    @property
    def event(self) -> str:
        """The routing name: the kind when firing, `recovery` when resolved."""
        return "recovery" if self.status == "resolved" else self.kind

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)

    @property
    def nodes(self) -> list[str]:
        """Every node the alert names: cause nodes, link ends, affected."""
        seen = dict.fromkeys(self.cause_nodes)
        for link in self.cause_links:
            seen.setdefault(link.a)
            seen.setdefault(link.b)
        seen.update(dict.fromkeys(self.affected))
        return list(seen)

    def to_payload(self) -> dict[str, Any]:
        """The webhook JSON (documented in docs/alerts.md)."""
        return {
            "version": PAYLOAD_VERSION,
            "id": self.id,
            "status": self.status,
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "cause": {
                "nodes": list(self.cause_nodes),
                "links": [asdict(link) for link in self.cause_links],
            },
            "affected": list(self.affected),
            "affected_count": len(self.affected),
            "started_at": iso(self.started_at),
            "ended_at": None if self.ended_at is None else iso(self.ended_at),
            "duration_s": self.duration_s,
            "started_at_ts": self.started_at,
            "ended_at_ts": self.ended_at,
            "reminder": self.reminder,
            "sent_at": iso(self.sent_at),
            "url": self.url,
            "tags": list(self.tags),
            "details": dict(self.details),
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Alert:
        """Back from `to_payload()` (the delivery queue stores payloads)."""
        cause = data.get("cause") or {}
        return cls(
            id=data["id"],
            status=data["status"],
            kind=data["kind"],
            severity=data["severity"],
            summary=data["summary"],
            started_at=float(data["started_at_ts"]),
            ended_at=None if data.get("ended_at_ts") is None else float(data["ended_at_ts"]),
            cause_nodes=list(cause.get("nodes", [])),
            cause_links=[LinkRef(**link) for link in cause.get("links", [])],
            affected=list(data.get("affected", [])),
            tags=list(data.get("tags", [])),
            reminder=bool(data.get("reminder", False)),
            sent_at=parse_iso(data["sent_at"]) if data.get("sent_at") else 0.0,
            url=data.get("url", ""),
            details=dict(data.get("details", {})),
        )


def iso(ts: float) -> str:
    """Unix seconds as ISO 8601 UTC with a `Z`, to the second."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


@dataclass(slots=True)
class Silence:
    """A maintenance window: alerts naming a matching node are held until it ends."""

    node: str = ""
    """glob pattern on node ids (`*` = every node); empty = any node"""
    tag: str = ""
    """an info tag; empty = any tag"""
    starts_at: float = 0.0
    ends_at: float = 0.0
    reason: str = ""
    created_by: str = ""
    created_at: float = 0.0
    id: int | None = None
    ended_early: bool = False

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at and not self.ended_early

    def matches(self, nodes: list[str], tags: list[str]) -> bool:
        """True when the pattern names one of `nodes` and the tag (if any) is in `tags`."""
        if self.tag and self.tag not in tags:
            return False
        if not self.node:
            return True
        return any(fnmatch.fnmatchcase(n, self.node) for n in nodes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["starts_at_iso"] = iso(self.starts_at)
        out["ends_at_iso"] = iso(self.ends_at)
        return out
