"""Silent bridges through the core's entry point, with plain messages and a clock we advance:
the nodes a bridge speaks for are `unmonitored` while it is away (one `bridge_silent`
incident, never outages), follow what it publishes when it is back, and fail as usual
while it runs."""

from __future__ import annotations

from typing import Any

from meshmon.model.core import Core, CoreSettings
from meshmon.model.health import Change
from meshmon.model.wire import BridgeStatus, Info, Report, Status

T0 = 1_700_000_000.0
INTERVAL = 10.0
BRIDGE = "bridge-1"
EDGES = [("gw", "r1"), ("r1", "d1"), ("d1", "d2"), ("d1", "d3"), ("d3", "leaf")]
"""gw and r1 run agents; d1–d3 are radios the bridge polls; leaf (an agent) hangs off d3"""
DEVICES = ["d1", "d2", "d3"]


class BridgedMesh:
    """Agents report for themselves; the bridge reports for its devices while it runs."""

    def __init__(self, core: Core | None = None, now: float = T0) -> None:
        self.core = core or Core(CoreSettings(offline_after_intervals=3, link_timeout_s=300))
        self.now = now
        self.adj: dict[str, set[str]] = {}
        for a, b in EDGES:
            self.adj.setdefault(a, set()).add(b)
            self.adj.setdefault(b, set()).add(a)
        self.bridge_up = True
        self.dead: set[str] = set()
        """devices that no longer answer the bridge"""
        self.changes: list[Change] = []
        if core is None:
            self.bridge_status(True)
            for node in sorted(self.adj):
                self.info(node)
            self.run(INTERVAL)
            self.changes.clear()

    def info(self, node: str, via: str | None = BRIDGE) -> None:
        data: dict[str, Any] = {"v": 1, "node": node, "gateway": node == "gw"}
        if node in DEVICES and via is not None:
            data["source"] = {"kind": "snmp", "via": via}
        self.core.apply(Info.model_validate(data), self.now)

    def bridge_status(self, online: bool) -> None:
        self.bridge_up = online
        self.core.apply(BridgeStatus(v=1, bridge=BRIDGE, online=online,
                                     ts=self.now if online else None), self.now)

    def report(self, node: str) -> None:
        links = [{"peer": p, "iface": "wlan0", "kind": "wifi", "signal_dbm": -60}
                 for p in sorted(self.adj[node]) if p not in self.dead]
        self.core.apply(Report.model_validate(
            {"v": 1, "node": node, "ts": self.now, "seq": 1, "interval_s": INTERVAL,
             "links": links}), self.now)

    def round(self) -> None:
        for node in sorted(self.adj):
            if node in DEVICES and (not self.bridge_up or node in self.dead):
                continue
            self.report(node)

    def run(self, seconds: float) -> list[Change]:
        """A report round every INTERVAL, ticks every 0.1 s."""
        out: list[Change] = []
        end = self.now + seconds
        next_round = self.now
        while self.now < end:
            if self.now >= next_round:
                self.round()
                next_round += INTERVAL
            out += self.core.tick(self.now).incidents
            self.now = round(self.now + 0.1, 3)
        self.changes += out
        return out

    def condition(self, node: str) -> str:
        return str(self.core.health.node_condition(node))


def of(changes: list[Change], what: str, kind: str) -> list[Change]:
    return [c for c in changes if c.what == what and c.incident.kind == kind]


def kinds_opened(changes: list[Change]) -> list[str]:
    return [c.incident.kind for c in changes if c.what == "opened"]


def test_a_silent_bridge_is_one_incident_and_its_devices_are_unmonitored_not_down() -> None:
    mesh = BridgedMesh()
    links_before = set(mesh.core.topology.links)
    mesh.bridge_status(False)  # its last will
    changes = mesh.run(20 * INTERVAL)  # far beyond every offline timeout
    assert kinds_opened(changes) == ["bridge_silent"]
    inc = changes[0].incident
    assert inc.cause_nodes == [BRIDGE] and inc.affected == DEVICES
    assert inc.details == {"bridge": BRIDGE, "unmonitored": 3}
    assert [mesh.condition(n) for n in DEVICES] == ["unmonitored"] * 3
    assert mesh.condition("leaf") == "online" and mesh.condition("r1") == "online"
    # held as they were: no timeout, no link ageing (root cause still sees the mesh)
    assert all(mesh.core.topology.nodes[n].online for n in DEVICES)
    assert set(mesh.core.topology.links) == links_before
    assert not mesh.core.health.outages()


def test_the_bridge_back_resolves_its_incident_and_its_devices_report_again() -> None:
    mesh = BridgedMesh()
    mesh.bridge_status(False)
    mesh.run(10 * INTERVAL)
    mesh.bridge_status(True)
    changes = mesh.run(6 * INTERVAL)
    assert len(of(changes, "resolved", "bridge_silent")) == 1
    assert kinds_opened(changes) == []
    assert [mesh.condition(n) for n in DEVICES] == ["online"] * 3


def test_a_device_that_stayed_down_while_its_bridge_was_away_is_an_outage_after_a_round(
) -> None:
    mesh = BridgedMesh()
    mesh.bridge_status(False)
    mesh.run(10 * INTERVAL)
    mesh.dead.add("d3")  # it dies while nobody watches; the bridge will not hear it
    back = mesh.now
    mesh.bridge_status(True)
    # within its grace (its own timeout from the bridge's return) it is no outage yet
    early = mesh.run(3 * INTERVAL - 1)
    assert kinds_opened(early) == [] and mesh.condition("d3") == "unmonitored"
    changes = mesh.run(2 * INTERVAL)
    outages = of(changes, "opened", "outage")
    assert len(outages) == 1
    inc = outages[0].incident
    assert inc.cause_nodes == ["d3"] and inc.affected == ["leaf"]
    assert back + 3 * INTERVAL <= inc.started_at <= back + 3 * INTERVAL + 1
    assert mesh.condition("d3") == "offline" and mesh.condition("d2") == "online"


def test_a_device_the_back_bridge_reports_offline_is_an_outage_at_once() -> None:
    mesh = BridgedMesh()
    mesh.bridge_status(False)
    mesh.run(5 * INTERVAL)
    mesh.bridge_status(True)
    mesh.dead.add("d2")
    mesh.core.apply(Status(v=1, node="d2", online=False), mesh.now)  # after N missed polls
    changes = mesh.run(2)
    assert [c.incident.cause_nodes for c in of(changes, "opened", "outage")] == [["d2"]]


def test_a_device_that_stops_answering_while_its_bridge_runs_is_an_outage_with_its_cause(
) -> None:
    mesh = BridgedMesh()
    mesh.dead.add("d1")
    mesh.core.apply(Status(v=1, node="d1", online=False), mesh.now)
    changes = mesh.run(2 * INTERVAL)
    outages = of(changes, "opened", "outage")
    assert len(outages) == 1 and kinds_opened(changes) == ["outage"]
    assert outages[0].incident.cause_nodes == ["d1"]
    # d2 and d3 are still answered by the bridge but cut off; the leaf behind d3 too
    assert outages[0].incident.affected == ["d2", "d3", "leaf"]


def test_an_outage_open_when_its_bridge_goes_away_goes_on_and_ends_when_it_reports() -> None:
    mesh = BridgedMesh()
    mesh.dead.add("d2")
    mesh.core.apply(Status(v=1, node="d2", online=False), mesh.now)
    assert len(of(mesh.run(2), "opened", "outage")) == 1
    mesh.bridge_status(False)
    changes = mesh.run(10 * INTERVAL)
    assert kinds_opened(changes) == ["bridge_silent"] and not of(changes, "resolved", "outage")
    assert mesh.condition("d2") == "unmonitored"
    mesh.dead.discard("d2")
    mesh.bridge_status(True)
    changes = mesh.run(2 * INTERVAL)
    assert len(of(changes, "resolved", "outage")) == 1
    assert len(of(changes, "resolved", "bridge_silent")) == 1
    assert kinds_opened(changes) == []


def test_a_node_announced_while_its_bridge_is_away_joins_the_incident() -> None:
    mesh = BridgedMesh()
    mesh.bridge_status(False)
    mesh.run(1)
    DEVICES.append("d4")
    try:
        mesh.info("d4")
    finally:
        DEVICES.remove("d4")
    changes = mesh.run(1)
    updated = of(changes, "updated", "bridge_silent")
    assert len(updated) == 1 and updated[0].incident.affected == ["d1", "d2", "d3", "d4"]
    assert updated[0].incident.details["unmonitored"] == 4
    assert mesh.condition("d4") == "unmonitored"
    # a node whose info no longer names the bridge leaves it and is watched as usual
    mesh.info("d2", via=None)
    changes = mesh.run(1)
    assert of(changes, "updated", "bridge_silent")[0].incident.affected == ["d1", "d3", "d4"]
    assert mesh.condition("d2") == "online"
    changes = mesh.run(4 * INTERVAL)  # d2 reports nothing (the bridge is still away)
    assert [c.incident.cause_nodes for c in of(changes, "opened", "outage")] == [["d2"]]


def test_a_bridge_offline_before_the_collector_knew_it_is_no_news_but_its_nodes_wait() -> None:
    core = Core(CoreSettings(offline_after_intervals=3, link_timeout_s=300))
    for node in DEVICES:
        core.apply(Info.model_validate(
            {"v": 1, "node": node, "source": {"kind": "snmp", "via": BRIDGE}}), T0)
        core.apply(Status(v=1, node=node, online=True), T0)
    core.apply(BridgeStatus(v=1, bridge=BRIDGE, online=False), T0)  # its retained will
    changes = [c for t in range(600) for c in core.tick(T0 + t).incidents]
    assert changes == []
    assert {core.health.node_condition(n) for n in DEVICES} == {"unmonitored"}


def test_a_restarted_collector_keeps_the_incident_and_resolves_it_once() -> None:
    mesh = BridgedMesh()
    mesh.bridge_status(False)
    first = mesh.run(INTERVAL)
    assert kinds_opened(first) == ["bridge_silent"]
    saved = mesh.core.snapshot()
    nodes = list(mesh.core.topology.nodes.values())
    links = list(mesh.core.topology.links.values())
    core = Core(CoreSettings(offline_after_intervals=3, link_timeout_s=300))
    core.restore(nodes, links, saved, mesh.now)
    again = BridgedMesh(core, mesh.now)
    again.bridge_up = False
    # the broker resends the retained last will: known, nothing new
    again.bridge_status(False)
    changes = again.run(10 * INTERVAL)
    assert kinds_opened(changes) == [] and not core.health.outages()
    assert [again.condition(n) for n in DEVICES] == ["unmonitored"] * 3
    again.bridge_status(True)
    changes = again.run(2 * INTERVAL)
    resolved = of(changes, "resolved", "bridge_silent")
    assert [c.incident.id for c in resolved] == [first[0].incident.id]
    assert [again.condition(n) for n in DEVICES] == ["online"] * 3


def test_a_node_said_offline_while_its_bridge_was_away_is_an_outage_after_the_round(
) -> None:
    mesh = BridgedMesh()
    mesh.bridge_status(False)
    mesh.run(INTERVAL)
    # a retained status the collector gets again while the bridge is away (a reconnect)
    mesh.core.apply(Status(v=1, node="d2", online=False), mesh.now)
    mesh.dead.add("d2")
    assert kinds_opened(mesh.run(5 * INTERVAL)) == []
    assert mesh.condition("d2") == "unmonitored"
    mesh.bridge_status(True)
    # the bridge publishes its info again and still has no answer from it
    mesh.info("d2")
    mesh.core.apply(Status(v=1, node="d2", online=False), mesh.now)
    early = mesh.run(3 * INTERVAL - 1)
    assert kinds_opened(early) == [] and mesh.condition("d2") == "unmonitored"
    changes = mesh.run(2 * INTERVAL)
    assert [c.incident.cause_nodes for c in of(changes, "opened", "outage")] == [["d2"]]
