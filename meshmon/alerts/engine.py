"""From incidents to notices: hold-down, silences, reminders, routing, owner notices.

`AlertEngine` takes the `Change`s the health core reports and decides who hears what:
an incident fires once (after `hold_down_s`, and not while a silence covers it), is
repeated every `reminder_interval_s`, and resolves once — only if it fired. Every notice
goes to the log and, through `emit`, to the sinks as an `event`. Delivery (retries, rate
limits, digests) is the dispatcher's job; the engine only calls `submit`.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from meshmon.alerts.messages import human_duration
from meshmon.alerts.model import SEVERITY_RANK, Alert, Silence, iso
from meshmon.config import AlertsConfig, NotifierConfig, RouteConfig
from meshmon.model.health import Change, Incident
from meshmon.model.state import NodeState

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_NAMED = 10
"""affected nodes named in a summary line (the payload lists them all)"""
HELD_DOWN = frozenset({"outage", "bridge_silent"})
"""the kinds that wait `hold_down_s` before they fire (a bridge restarted on purpose
goes offline and back within seconds)"""

Submit = Callable[[str, Alert, str | None], None]
LogAlert = Callable[[Alert, list[str], bool], None]


@dataclass(slots=True)
class Tracked:
    """What the engine remembers of one open incident."""

    incident: Incident
    fired: bool = False
    last_notified_at: float = 0.0
    held_by_silence: bool = False


class AlertEngine:
    """Turns incident changes into routed alerts."""

    def __init__(
        self,
        settings: AlertsConfig,
        notifiers: Sequence[NotifierConfig],
        routes: Sequence[RouteConfig],
        nodes: dict[str, NodeState],
        submit: Submit,
        log_alert: LogAlert,
        emit: Callable[[Alert], None] = lambda _a: None,
        public_url: str = "",
    ) -> None:
        self.settings = settings
        self.notifier_names = [n.name for n in notifiers]
        self.routes = list(routes)
        self.nodes = nodes
        self.submit = submit
        self.log_alert = log_alert
        self.emit = emit
        self.public_url = public_url.rstrip("/")
        self.tracked: dict[str, Tracked] = {}
        self.silences: list[Silence] = []
        self.sent = 0
        """notices handed to at least one notifier (routed, or an owner's own notice)"""
        self.unrouted = 0
        """notices made with nowhere to go: no notifier configured, or no route took them"""
        self.suppressed = 0

    # ------------------------------------------------------------------ inputs
    def handle(self, changes: Iterable[Change], now: float) -> None:
        """Apply what the health core reported; fire what may fire now."""
        for change in changes:
            inc = change.incident
            if change.what == "opened":
                self.tracked[inc.id] = Tracked(inc)
                self._maybe_fire(self.tracked[inc.id], now)
            elif change.what == "updated":
                t = self.tracked.get(inc.id)
                if t is not None:
                    t.incident = inc
            elif change.what == "resolved":
                t = self.tracked.pop(inc.id, None)
                if t is not None and t.fired:
                    self._notify(t.incident, "resolved", now)
            else:  # cancelled: never opened, nothing was said
                self.tracked.pop(inc.id, None)

    def tick(self, now: float) -> None:
        """Fire what waited for its hold-down or a silence; send reminders."""
        interval = self.settings.reminder_interval_s
        for t in list(self.tracked.values()):
            if not t.fired:
                self._maybe_fire(t, now)
            elif (
                interval > 0
                and now - t.last_notified_at >= interval
                and not self._silenced(t.incident, now)
            ):
                self._notify(t.incident, "firing", now, reminder=True)
                t.last_notified_at = now

    def set_silences(self, silences: Iterable[Silence]) -> None:
        self.silences = list(silences)

    # ------------------------------------------------------------------ queries
    def firing(self) -> list[Alert]:
        """The alerts currently firing (as their last notice said), oldest first."""
        out = [self.alert(t.incident, "firing", t.last_notified_at)
               for t in self.tracked.values() if t.fired]
        return sorted(out, key=lambda a: a.started_at)

    def alert(self, inc: Incident, status: str, now: float, reminder: bool = False) -> Alert:
        """The notice for `inc` (also used by the API to show open incidents)."""
        alert = Alert(
            id=inc.id, status="resolved" if status == "resolved" else "firing", kind=inc.kind,
            severity=inc.severity, summary="", started_at=inc.started_at,
            ended_at=inc.ended_at if status == "resolved" else None,
            cause_nodes=list(inc.cause_nodes), cause_links=list(inc.cause_links),
            affected=list(inc.affected), reminder=reminder, sent_at=now,
            url=f"{self.public_url}/admin#{inc.id}" if self.public_url else "",
            details=dict(inc.details),
        )  # fmt: skip
        alert.tags = self._tags(alert.nodes)
        alert.summary = summarize(alert)
        return alert

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        return {
            "tracked": {
                i: {"fired": t.fired, "last_notified_at": t.last_notified_at}
                for i, t in self.tracked.items()
            }
        }

    def restore(self, snap: dict[str, Any] | None, incidents: dict[str, Incident]) -> None:
        """Re-attach to the health core's restored incidents (same ids)."""
        self.tracked = {}
        saved = (snap or {}).get("tracked", {})
        for inc_id, inc in incidents.items():
            if not inc.confirmed:
                continue
            s = saved.get(inc_id, {})
            self.tracked[inc_id] = Tracked(
                inc, fired=bool(s.get("fired")), last_notified_at=s.get("last_notified_at", 0.0)
            )

    # ------------------------------------------------------------------ internals
    def _maybe_fire(self, t: Tracked, now: float) -> None:
        if now - t.incident.started_at < self._hold_down(t.incident):
            return
        if self._silenced(t.incident, now):
            if not t.held_by_silence:
                t.held_by_silence = True
                self._record(self.alert(t.incident, "firing", now), [], silenced=True)
            return
        t.fired = True
        t.last_notified_at = now
        self._notify(t.incident, "firing", now)

    def _hold_down(self, inc: Incident) -> float:
        return self.settings.hold_down_s if inc.kind in HELD_DOWN else 0.0

    def _silenced(self, inc: Incident, now: float) -> bool:
        active = [s for s in self.silences if s.active(now)]
        if not active:
            return False
        named = list(dict.fromkeys(
            [*inc.cause_nodes, *(n for ln in inc.cause_links for n in (ln.a, ln.b))]
        ))  # fmt: skip
        tags = self._tags(named)
        return any(s.matches(named, tags) for s in active)

    def _notify(self, inc: Incident, status: str, now: float, reminder: bool = False) -> None:
        alert = self.alert(inc, status, now, reminder)
        if status == "resolved" and self._silenced(inc, now):
            self._record(alert, [], silenced=True)
            return
        targets = self._route(alert)
        for name in targets:
            self.submit(name, alert, None)
        owners = self._notify_owners(alert)
        self._record(alert, targets, silenced=False, handed_over=bool(targets) or owners > 0)

    def _record(self, alert: Alert, targets: list[str], silenced: bool,
                handed_over: bool = False) -> None:
        if silenced:
            self.suppressed += 1
        elif handed_over:
            self.sent += 1
        else:
            self.unrouted += 1
        log.info("alert %s %s %s%s → %s: %s", alert.status, alert.kind, alert.id,
                 " (silenced)" if silenced else "", ",".join(targets) or "-", alert.summary)
        self.log_alert(alert, targets, silenced)
        self.emit(alert)

    def _route(self, alert: Alert) -> list[str]:
        if not self.routes:
            return list(self.notifier_names)
        chosen: dict[str, None] = {}
        for route in self.routes:
            if route_matches(route, alert):
                chosen.update(dict.fromkeys(route.notifiers))
        return list(chosen)

    def _notify_owners(self, alert: Alert) -> int:
        """Hand the alert to the owner notifier for each opted-in owner; how many."""
        name = self.settings.owner_notifier
        if not name or alert.event not in self.settings.owner_events:
            return 0
        sent: set[str] = set()
        for node in alert.nodes:
            state = self.nodes.get(node)
            owner = state.info.owner if state is not None and state.info is not None else None
            if owner is None or not owner.notify or not owner.contact:
                continue
            contact = owner.contact.removeprefix("mailto:").strip()
            if EMAIL_RE.match(contact) and contact not in sent:
                sent.add(contact)
                self.submit(name, alert, contact)
        return len(sent)

    def _tags(self, nodes: Iterable[str]) -> list[str]:
        tags: dict[str, None] = {}
        for node in nodes:
            state = self.nodes.get(node)
            if state is not None and state.info is not None:
                tags.update(dict.fromkeys(state.info.tags))
        return list(tags)


def route_matches(route: RouteConfig, alert: Alert) -> bool:
    """Whether `alert` passes one `[[routes]]` table."""
    if route.events and alert.event not in route.events:
        return False
    if SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK[route.min_severity]:
        return False
    if route.nodes and not any(
        fnmatch.fnmatchcase(n, p) for n in alert.nodes for p in route.nodes
    ):
        return False
    return not route.tags or any(tag in alert.tags for tag in route.tags)


def _names(nodes: Sequence[str]) -> str:
    shown = ", ".join(nodes[:MAX_NAMED])
    return shown + (f" and {len(nodes) - MAX_NAMED} more" if len(nodes) > MAX_NAMED else "")


def summarize(alert: Alert) -> str:
    """One short human line: what, where, since when, who is affected."""
    what = _names(alert.cause_nodes + [f"link {ln} ({ln.kind})" for ln in alert.cause_links])
    since = iso(alert.started_at).replace("T", " ").replace("Z", " UTC")
    n = len(alert.affected)
    cut = f"; {n} node{'s' if n != 1 else ''} cut off: {_names(alert.affected)}" if n else ""
    if alert.kind == "bridge_silent":
        return _bridge_summary(alert, what, since)
    if alert.status == "resolved":
        took = human_duration(alert.duration_s or 0.0)
        if alert.kind == "outage":
            was = f"; {n} node{'s' if n != 1 else ''} had been cut off" if n else ""
            return f"{what} back after {took}{was}"
        return f"{alert.kind.replace('_', ' ')} over: {what} after {took}"
    prefix = "REMINDER: " if alert.reminder else ""
    if alert.kind == "outage":
        verb = "is" if len(alert.cause_nodes) + len(alert.cause_links) == 1 else "are"
        return f"{prefix}{what} {verb} down since {since}{cut}"
    if alert.kind == "flapping":
        changes = alert.details.get("changes", "several")
        window = human_duration(float(alert.details.get("window_s", 0)))
        return f"{prefix}{what} is flapping: failed {changes} times within {window}"
    if alert.kind == "silent":
        return (f"{prefix}{what}: agent silent since {since}, but neighbours still hear the "
                "router (agent or its MQTT path is down, not the node)")
    if alert.kind == "degraded":
        reasons = sorted({r for rs in alert.details.values() if isinstance(rs, list) for r in rs})
        return f"{prefix}{what} degraded since {since}: {', '.join(reasons)}"
    if alert.kind == "weak_point":
        return (f"{prefix}{what} is now a single point of failure: {n} node"
                f"{'s' if n != 1 else ''} would lose every gateway: {_names(alert.affected)}")
    return f"{prefix}{alert.kind}: {what} since {since}{cut}"


def _bridge_summary(alert: Alert, bridge: str, since: str) -> str:
    """`bridge-1 silent: 3 devices unmonitored since …` (and its reminder and recovery)."""
    n = len(alert.affected)
    devices = f"{n} device{'s' if n != 1 else ''}"
    if alert.status == "resolved":
        took = human_duration(alert.duration_s or 0.0)
        return f"{bridge} back after {took}: {devices} monitored again"
    prefix = "REMINDER: " if alert.reminder else ""
    named = f" ({_names(alert.affected)})" if n else ""
    return f"{prefix}{bridge} silent: {devices} unmonitored since {since}{named}"
