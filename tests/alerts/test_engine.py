"""The alert engine with plain calls: hold-down, silences, reminders, routing, owner notices.
Notices are collected from `submit`; the time is a number."""

from __future__ import annotations

from typing import Any

from meshmon.alerts.engine import AlertEngine, route_matches, summarize
from meshmon.alerts.model import Alert, LinkRef, Silence
from meshmon.config import AlertsConfig, NotifierConfig, RouteConfig
from meshmon.model.health import Change, Incident
from meshmon.model.state import NodeState
from meshmon.model.wire import Info

T0 = 1_700_000_000.0


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Alert, str | None]] = []
        self.log: list[tuple[Alert, list[str], bool]] = []
        self.events: list[Alert] = []

    def submit(self, notifier: str, alert: Alert, recipient: str | None) -> None:
        self.sent.append((notifier, alert, recipient))

    def log_alert(self, alert: Alert, notifiers: list[str], silenced: bool) -> None:
        self.log.append((alert, notifiers, silenced))


def notifier(name: str, kind: str = "webhook") -> NotifierConfig:
    if kind == "email":
        return NotifierConfig(name=name, type="email", smtp_host="127.0.0.1",
                              sender="m@example.net", to=["noc@example.net"])
    return NotifierConfig(name=name, type="webhook", url="http://127.0.0.1:9/hook")


def engine(rec: Recorder, routes: list[RouteConfig] | None = None,
           nodes: dict[str, NodeState] | None = None, **settings: Any) -> AlertEngine:
    return AlertEngine(
        AlertsConfig(**settings), [notifier("ops"), notifier("chat"), notifier("mail", "email")],
        routes or [], nodes or {}, rec.submit, rec.log_alert, rec.events.append,
        public_url="https://map.example.org/",
    )


def outage(node: str = "b", affected: list[str] | None = None, started: float = T0) -> Incident:
    return Incident(f"outage-{node}", "outage", "critical", started, cause_nodes=[node],
                    affected=affected or [], confirmed=True)


def test_fires_once_to_every_notifier_without_routes_and_resolves_with_duration() -> None:
    rec = Recorder()
    eng = engine(rec)
    inc = outage("b", [f"l{i}" for i in range(12)])
    eng.handle([Change("opened", inc)], T0 + 0.5)
    eng.tick(T0 + 60)
    assert [(n, a.status) for n, a, _ in rec.sent] == [
        ("ops", "firing"), ("chat", "firing"), ("mail", "firing")]
    alert = rec.sent[0][1]
    assert alert.summary.startswith("b is down since 2023-11-14 22:13:20 UTC; 12 nodes cut off")
    assert "and 2 more" in alert.summary
    assert alert.url == "https://map.example.org/admin#outage-b"
    inc.ended_at = T0 + 725
    eng.handle([Change("resolved", inc)], T0 + 725)
    done = [a for _, a, _ in rec.sent if a.status == "resolved"]
    assert len(done) == 3 and done[0].duration_s == 725
    assert done[0].summary == "b back after 12m 5s; 12 nodes had been cut off"
    assert [e.status for e in rec.events] == ["firing", "resolved"]


def test_hold_down_waits_and_a_short_outage_says_nothing() -> None:
    rec = Recorder()
    eng = engine(rec, hold_down_s=30)
    short = outage("a")
    eng.handle([Change("opened", short)], T0 + 0.5)
    eng.tick(T0 + 10)
    eng.handle([Change("resolved", short)], T0 + 20)
    assert rec.sent == [] and rec.log == []
    long = outage("b", started=T0 + 100)
    eng.handle([Change("opened", long)], T0 + 100.5)
    eng.tick(T0 + 129)
    assert rec.sent == []
    eng.tick(T0 + 130)
    assert len(rec.sent) == 3


def test_silence_holds_until_it_ends_then_fires() -> None:
    rec = Recorder()
    eng = engine(rec)
    eng.set_silences([Silence(node="b*", starts_at=T0, ends_at=T0 + 100)])
    eng.handle([Change("opened", outage("bb-1"))], T0 + 1)
    eng.tick(T0 + 50)
    assert rec.sent == []
    assert [(a.kind, silenced) for a, _, silenced in rec.log] == [("outage", True)]
    eng.tick(T0 + 100)
    assert len(rec.sent) == 3


def test_incident_that_ends_inside_its_silence_is_never_sent() -> None:
    rec = Recorder()
    eng = engine(rec)
    eng.set_silences([Silence(node="b", starts_at=T0, ends_at=T0 + 100)])
    inc = outage("b")
    eng.handle([Change("opened", inc)], T0 + 1)
    eng.handle([Change("resolved", inc)], T0 + 50)
    eng.tick(T0 + 200)
    assert rec.sent == []


def test_reminders_repeat_at_the_interval() -> None:
    rec = Recorder()
    eng = engine(rec, reminder_interval_s=3600)
    eng.handle([Change("opened", outage("b"))], T0)
    for minute in range(1, 130):
        eng.tick(T0 + 60 * minute)
    reminders = [a for n, a, _ in rec.sent if n == "ops" and a.reminder]
    assert len(reminders) == 2
    assert reminders[0].summary.startswith("REMINDER: b is down")


def test_routes_by_event_severity_node_and_tag() -> None:
    nodes = {"bb-1": NodeState("bb-1", info=Info(v=1, node="bb-1", tags=["north"]))}
    routes = [
        RouteConfig(notifiers=["ops"], events=["outage", "recovery"], min_severity="critical"),
        RouteConfig(notifiers=["chat"], tags=["north"]),
        RouteConfig(notifiers=["mail"], nodes=["leaf-*"]),
    ]
    rec = Recorder()
    eng = engine(rec, routes, nodes)
    eng.handle([Change("opened", outage("bb-1", ["x"]))], T0)
    assert sorted(n for n, _, _ in rec.sent) == ["chat", "ops"]
    rec.sent.clear()
    leaf = Incident("f-1", "flapping", "warning", T0, cause_nodes=["leaf-9"], confirmed=True)
    eng.handle([Change("opened", leaf)], T0)
    assert [n for n, _, _ in rec.sent] == ["mail"]


def test_outcomes_count_what_was_handed_to_a_notifier() -> None:
    nodes = {"own-1": NodeState("own-1", info=Info.model_validate(
        {"v": 1, "node": "own-1", "owner": {"contact": "ana@example.org", "notify": True}}))}
    rec = Recorder()
    # routed: only backbone outages go anywhere; owners hear of their own node
    eng = engine(rec, [RouteConfig(notifiers=["ops"], nodes=["bb-*"])], nodes,
                 owner_notifier="mail")
    eng.set_silences([Silence(node="quiet", starts_at=T0, ends_at=T0 + 10_000)])
    eng.handle([Change("opened", outage("bb-1"))], T0)  # routed to ops
    eng.handle([Change("opened", outage("leaf-1"))], T0)  # no route takes it
    eng.handle([Change("opened", outage("own-1"))], T0)  # no route, but its owner's notice
    eng.handle([Change("opened", outage("quiet"))], T0)  # silenced
    assert (eng.sent, eng.unrouted, eng.suppressed) == (2, 1, 1)
    assert [(n, a.cause_nodes[0]) for n, a, _ in rec.sent] == [("ops", "bb-1"), ("mail", "own-1")]
    # without any notifier every notice is made with nowhere to go, none "sent"
    lonely = AlertEngine(AlertsConfig(), [], [], {}, rec.submit, rec.log_alert)
    lonely.handle([Change("opened", outage("b"))], T0)
    assert (lonely.sent, lonely.unrouted, lonely.suppressed) == (0, 1, 0)


def test_route_matching_reads_the_alert_only() -> None:
    alert = Alert(id="x", status="resolved", kind="degraded", severity="warning", summary="",
                  started_at=T0, cause_links=[LinkRef("a", "b", "wifi")], tags=["t"])
    assert route_matches(RouteConfig(notifiers=["n"], events=["recovery"]), alert)
    assert not route_matches(RouteConfig(notifiers=["n"], events=["degraded"]), alert)
    assert route_matches(RouteConfig(notifiers=["n"], nodes=["b"]), alert)
    assert not route_matches(RouteConfig(notifiers=["n"], min_severity="critical"), alert)
    assert not route_matches(RouteConfig(notifiers=["n"], tags=["other"]), alert)


def test_owner_notices_only_for_owners_who_opted_in() -> None:
    def node(name: str, contact: str, notify: bool) -> NodeState:
        info = Info.model_validate({"v": 1, "node": name,
                                    "owner": {"contact": contact, "notify": notify}})
        return NodeState(name, info=info)

    nodes = {"a": node("a", "mailto:ana@example.org", True),
             "b": node("b", "bob@example.org", False),
             "c": node("c", "matrix handle", True)}
    rec = Recorder()
    eng = engine(rec, [RouteConfig(notifiers=["ops"])], nodes, owner_notifier="mail")
    eng.handle([Change("opened", outage("a", ["b", "c"]))], T0)
    assert [(n, r) for n, _, r in rec.sent] == [("ops", None), ("mail", "ana@example.org")]


def test_summaries_of_every_kind_are_one_human_line() -> None:
    base = {"id": "i", "status": "firing", "severity": "warning", "started_at": T0}
    lines = [
        summarize(Alert(kind="silent", summary="", cause_nodes=["s"], **base)),
        summarize(Alert(kind="flapping", summary="", cause_nodes=["f"],
                        details={"changes": 4, "window_s": 600}, **base)),
        summarize(Alert(kind="degraded", summary="", cause_links=[LinkRef("a", "b", "wifi")],
                        details={"a->b": ["signal -84 dBm"]}, **base)),
        summarize(Alert(kind="weak_point", summary="", cause_nodes=["w"], affected=["x", "y"],
                        **base)),
    ]
    assert lines[0].startswith("s: agent silent since 2023-11-14 22:13:20 UTC")
    assert lines[1] == "f is flapping: failed 4 times within 10m"
    assert lines[2].endswith("degraded since 2023-11-14 22:13:20 UTC: signal -84 dBm")
    assert "would lose every gateway: x, y" in lines[3]
    assert all("\n" not in line for line in lines)


def bridge_silent(bridge: str = "bridge-1", started: float = T0) -> Incident:
    return Incident(f"bridge_silent-{bridge}", "bridge_silent", "warning", started,
                    cause_nodes=[bridge], affected=["ap-1", "ap-2", "ap-3"], confirmed=True,
                    details={"bridge": bridge, "unmonitored": 3})


def test_a_silent_bridge_is_one_line_routed_held_down_and_reminded_like_an_outage(
) -> None:
    rec = Recorder()
    routes = [RouteConfig(notifiers=["chat"], events=["bridge_silent", "recovery"]),
              RouteConfig(notifiers=["mail"], events=["outage"])]
    eng = engine(rec, routes, hold_down_s=30, reminder_interval_s=120)
    # a bridge restarted on purpose: offline and back within the hold-down, no notice
    quick = bridge_silent("bridge-2")
    eng.handle([Change("opened", quick)], T0)
    eng.handle([Change("resolved", quick)], T0 + 5)
    inc = bridge_silent(started=T0 + 10)
    eng.handle([Change("opened", inc)], T0 + 10)
    eng.tick(T0 + 39)
    assert rec.sent == []
    eng.tick(T0 + 41)
    assert [(n, a.kind, a.status) for n, a, _ in rec.sent] == [
        ("chat", "bridge_silent", "firing")]
    alert = rec.sent[0][1]
    assert alert.summary == ("bridge-1 silent: 3 devices unmonitored since 2023-11-14 "
                             "22:13:30 UTC (ap-1, ap-2, ap-3)")
    assert alert.to_payload()["cause"] == {"nodes": ["bridge-1"], "links": []}
    # still silent: reminders, as for any incident
    eng.tick(T0 + 162)
    eng.tick(T0 + 282)
    reminders = [a for _, a, _ in rec.sent if a.reminder]
    assert len(reminders) == 2 and all(a.id == alert.id for a in reminders)
    assert reminders[0].summary.startswith("REMINDER: bridge-1 silent: 3 devices unmonitored")
    inc.ended_at = T0 + 310
    eng.handle([Change("resolved", inc)], T0 + 310)
    assert rec.sent[-1][1].summary == "bridge-1 back after 5m: 3 devices monitored again"
    assert [(a.status, a.reminder) for _, a, _ in rec.sent] == [
        ("firing", False), ("firing", True), ("firing", True), ("resolved", False)]
