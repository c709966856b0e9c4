"""The health detectors driven through the core's entry point with plain messages: states,
root cause, grouping, flapping, silent agents, degraded links, weak points and restarts.
Time is a number we advance."""

from __future__ import annotations

import random
from typing import Any

from meshmon.model.core import Core, CoreSettings
from meshmon.model.health import Change, Health, HealthSettings
from meshmon.model.health.degraded import DegradedDetector
from meshmon.model.state import LinkRef
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Report, Status

T0 = 1_700_000_000.0
INTERVAL = 10.0


class Mesh:
    """A scripted mesh whose agents' messages go to a core, ticked as the service ticks it."""

    def __init__(self, edges: list[tuple[str, str]], gateways: set[str],
                 settings: HealthSettings | None = None) -> None:
        self.core = Core(CoreSettings(offline_after_intervals=3, link_timeout_s=300,
                                      health=settings or HealthSettings()))
        self.now = T0
        self.adj: dict[str, set[str]] = {}
        for a, b in edges:
            self.adj.setdefault(a, set()).add(b)
            self.adj.setdefault(b, set()).add(a)
        self.alive = set(self.adj)
        self.link_metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.changes: list[Change] = []
        for node in sorted(self.adj):
            self.core.apply(Info.model_validate(
                {"v": 1, "node": node, "gateway": node in gateways}), self.now)
        self.round()
        self.step(0)
        self.changes.clear()

    @property
    def health(self) -> Health:
        return self.core.health

    @property
    def topo(self) -> Topology:
        return self.core.topology

    def send_report(self, node: str) -> None:
        links = [{"peer": p, "iface": "wlan0", "kind": "wifi", "inactive_ms": 100,
                  **self.link_metrics.get((node, p), {"signal_dbm": -60})}
                 for p in sorted(self.adj[node])
                 if p in self.alive or (node, p) in self.link_metrics]
        self.core.apply(Report.model_validate(
            {"v": 1, "node": node, "ts": self.now, "seq": 1, "interval_s": INTERVAL,
             "links": links}), self.now)

    def round(self) -> None:
        for node in sorted(self.alive):
            self.send_report(node)

    def lwt(self, node: str) -> None:
        self.alive.discard(node)
        self.core.apply(Status(v=1, node=node, online=False), self.now)

    def step(self, dt: float) -> list[Change]:
        """Advance the clock by dt in 0.1 s ticks, as the service does."""
        out: list[Change] = []
        end = self.now + dt
        while True:
            out += self.core.tick(self.now).incidents
            if self.now >= end:
                break
            self.now = min(end, self.now + 0.1)
        self.changes += out
        return out

    def run(self, seconds: float) -> list[Change]:
        """Advance with a report round from every live node each INTERVAL."""
        out: list[Change] = []
        left = seconds
        while left > 0:
            dt = min(INTERVAL, left)
            self.round()
            out += self.step(dt)
            left -= dt
        return out


def opened(changes: list[Change], kind: str = "outage") -> list[Change]:
    return [c for c in changes if c.what == "opened" and c.incident.kind == kind]


def resolved(changes: list[Change], kind: str = "outage") -> list[Change]:
    return [c for c in changes if c.what == "resolved" and c.incident.kind == kind]


def backbone() -> list[tuple[str, str]]:
    """gw — r1 — b — (l0 … l9): b is the only path for 10 leaves (l0–l9 form a chain
    plus a star so it is not a pure tree)."""
    edges = [("gw", "r1"), ("gw", "r2"), ("r1", "r2"), ("r1", "b")]
    edges += [("b", f"l{i}") for i in range(10)]
    edges += [(f"l{i}", f"l{i + 1}") for i in range(9)]
    return edges


LEAVES = [f"l{i}" for i in range(10)]


# ---------------------------------------------------------------- outages and root cause
def test_leaf_last_will_opens_one_outage_after_the_group_wait() -> None:
    mesh = Mesh([("gw", "a"), ("a", "leaf")], {"gw"})
    mesh.lwt("leaf")
    assert not opened(mesh.step(0.3))
    changes = opened(mesh.step(0.3))
    assert len(changes) == 1
    inc = changes[0].incident
    assert inc.cause_nodes == ["leaf"] and inc.affected == []
    assert inc.started_at == T0 and inc.severity == "warning"
    assert mesh.health.node_condition("leaf") == "offline"


def test_backbone_failure_is_one_outage_naming_it_with_its_ten_leaves() -> None:
    rng = random.Random(7)
    for _ in range(5):  # the last wills arrive in any order within the group wait
        mesh = Mesh(backbone(), {"gw"})
        order = ["b", *LEAVES]
        rng.shuffle(order)
        for node in order:
            mesh.lwt(node)
            mesh.step(0.02)
        changes = mesh.step(1.0)
        assert len(opened(changes)) == 1, [c.incident.cause_nodes for c in opened(changes)]
        inc = opened(changes)[0].incident
        assert inc.cause_nodes == ["b"]
        assert inc.affected == sorted(LEAVES)
        assert inc.severity == "critical"
        assert {mesh.health.node_condition(n) for n in LEAVES} == {"unreachable"}
        assert mesh.health.node_condition("b") == "offline"
        # the leaves time out later too: nothing new
        assert not opened(mesh.run(120))


def test_backbone_found_by_timeout_lists_leaves_that_still_report() -> None:
    mesh = Mesh(backbone(), {"gw"})
    mesh.alive.discard("b")  # hung agent: no last will, and its radio is gone
    for leaf in LEAVES:  # leaves still reach the broker (another uplink) but lose b
        mesh.adj[leaf].discard("b")
    changes = mesh.run(45)
    out = opened(changes)
    assert len(out) == 1
    assert out[0].incident.cause_nodes == ["b"]
    assert out[0].incident.affected == sorted(LEAVES)


def test_backbone_return_resolves_once_and_leaves_get_time_to_come_back() -> None:
    mesh = Mesh(backbone(), {"gw"})
    for node in ["b", *LEAVES]:
        mesh.lwt(node)
    mesh.step(1)
    mesh.run(600)  # links age out meanwhile: ghost edges keep the structure
    assert len(mesh.health.outages()) == 1
    assert mesh.health.outages()[0].affected == sorted(LEAVES)
    mesh.alive.add("b")
    mesh.send_report("b")
    changes = mesh.step(0.5)
    assert len(resolved(changes)) == 1
    inc = resolved(changes)[0].incident
    assert inc.ended_at is not None and inc.ended_at - inc.started_at > 600
    # leaves reconnect a few seconds later: no outage of their own
    mesh.step(5)
    mesh.alive.update(LEAVES)
    mesh.round()
    assert not opened(mesh.run(60))
    assert mesh.health.outages() == []


def test_leaf_that_stays_down_after_the_backbone_returns_gets_its_own_outage() -> None:
    mesh = Mesh(backbone(), {"gw"})
    for node in ["b", *LEAVES]:
        mesh.lwt(node)
    mesh.step(1)
    mesh.alive.add("b")
    mesh.alive.update(LEAVES[1:])
    mesh.round()
    assert len(resolved(mesh.step(0.5))) == 1
    changes = mesh.run(60)  # grace is l0's offline timeout (30 s)
    out = opened(changes)
    assert [c.incident.cause_nodes for c in out] == [["l0"]]


def test_link_down_between_live_nodes_is_the_cause() -> None:
    mesh = Mesh([("gw", "a"), ("a", "b"), ("b", "c")], {"gw"})
    mesh.adj["a"].discard("b")
    mesh.adj["b"].discard("a")
    changes = mesh.run(330)  # link_timeout_s = 300
    out = opened(changes)
    assert len(out) == 1
    assert out[0].incident.cause_links == [LinkRef("a", "b", "wifi")]
    assert out[0].incident.affected == ["b", "c"]
    mesh.adj["a"].add("b")
    mesh.adj["b"].add("a")
    assert len(resolved(mesh.run(20))) == 1


def test_redundant_link_down_is_not_an_outage() -> None:
    mesh = Mesh([("gw", "a"), ("a", "b"), ("gw", "b")], {"gw"})
    mesh.adj["a"].discard("b")
    mesh.adj["b"].discard("a")
    assert not opened(mesh.run(330))
    assert mesh.health.down_links() == []


def test_without_gateways_each_failed_node_is_its_own_cause() -> None:
    mesh = Mesh([("a", "b"), ("b", "c")], set())
    mesh.lwt("c")
    out = opened(mesh.step(1))
    assert [c.incident.cause_nodes for c in out] == [["c"]]


def test_gateway_failure_is_critical_even_without_affected_nodes() -> None:
    mesh = Mesh([("gw", "a"), ("gw2", "a")], {"gw", "gw2"})
    mesh.lwt("gw")
    out = opened(mesh.step(1))
    assert out[0].incident.cause_nodes == ["gw"] and out[0].incident.severity == "critical"


# ---------------------------------------------------------------- silent agents
def test_silent_agent_with_neighbours_hearing_it_is_not_an_outage() -> None:
    mesh = Mesh([("gw", "a"), ("a", "s")], {"gw"})
    mesh.alive.discard("s")
    mesh.link_metrics[("a", "s")] = {"signal_dbm": -60}  # a still hears s (inactive 100 ms)
    changes = mesh.run(60)
    assert not opened(changes)
    silent = opened(changes, "silent")
    assert len(silent) == 1 and silent[0].incident.cause_nodes == ["s"]
    assert mesh.health.node_condition("s") == "silent"
    # the agent comes back: the silent incident resolves
    mesh.alive.add("s")
    mesh.round()
    assert len(resolved(mesh.step(0.5), "silent")) == 1


def test_silent_node_whose_radio_dies_too_becomes_an_outage() -> None:
    mesh = Mesh([("gw", "a"), ("a", "s")], {"gw"})
    mesh.alive.discard("s")
    mesh.link_metrics[("a", "s")] = {"signal_dbm": -60}
    mesh.run(60)
    del mesh.link_metrics[("a", "s")]
    changes = mesh.run(60)
    assert len(resolved(changes, "silent")) == 1
    assert [c.incident.cause_nodes for c in opened(changes)] == [["s"]]


def test_silent_agent_without_neighbours_is_an_outage_by_timeout() -> None:
    mesh = Mesh([("gw", "a"), ("a", "s")], {"gw"})
    mesh.alive.discard("s")
    changes = mesh.run(45)
    out = opened(changes)
    assert [c.incident.cause_nodes for c in out] == [["s"]]
    # offline_after = 3 × 10 s after its last report at T0 (+ group wait)
    assert not opened(changes, "silent")


# ---------------------------------------------------------------- flapping
def test_flapping_node_gives_one_flapping_incident_and_no_more_outages() -> None:
    mesh = Mesh([("gw", "a"), ("a", "f")], {"gw"})
    changes: list[Change] = []
    for _ in range(6):
        mesh.lwt("f")
        changes += mesh.step(0.2)  # back before the group wait ends
        mesh.alive.add("f")
        mesh.send_report("f")
        changes += mesh.step(2)
    assert len(opened(changes, "flapping")) == 1
    assert not opened(changes)
    assert mesh.health.node_condition("f") == "flapping"
    # quiet for the flap window: it ends
    assert len(resolved(mesh.run(700), "flapping")) == 1


def test_backbone_failing_again_blames_only_the_backbone() -> None:
    """Each failure of b is one outage naming b; its leaves (last wills, or timeouts when
    they just lose their MQTT path) never flap; the third failure is one flapping alert,
    for b, instead of a third outage."""
    mesh = Mesh(backbone(), {"gw"})
    rng = random.Random(5)
    changes: list[Change] = []
    for cycle in range(3):
        if cycle == 1:  # the leaves lose their path and time out after b's last will
            mesh.lwt("b")
            mesh.alive.difference_update(LEAVES)
        else:
            order = ["b", *LEAVES]
            rng.shuffle(order)  # leaves' wills may come before b's
            for node in order:
                mesh.lwt(node)
        step = mesh.run(60)
        changes += step
        if cycle < 2:
            [out] = opened(step)
            assert out.incident.cause_nodes == ["b"]
            assert out.incident.affected == sorted(LEAVES)
        assert {mesh.health.node_condition(n) for n in LEAVES} == {"unreachable"}
        mesh.alive.add("b")
        mesh.send_report("b")
        changes += mesh.step(2)  # the leaves reconnect a little later
        mesh.alive.update(LEAVES)
        changes += mesh.run(30)
        assert mesh.health.outages() == []
    assert len(opened(changes)) == 2
    assert [c.incident.cause_nodes for c in opened(changes, "flapping")] == [["b"]]
    assert [c.incident for c in opened(changes, "flapping")] == [
        i for i in mesh.health.incidents.values() if i.kind == "flapping"]
    assert {mesh.health.node_condition(n) for n in LEAVES} == {"online"}


def test_node_dying_quietly_is_not_blamed_on_its_links() -> None:
    """x dies without a last will: a stops listing it before x times out. That drop was
    x's failure, not the link's: three such failures flap x, never the link a–x."""
    mesh = Mesh([("gw", "a"), ("a", "x")], {"gw"})
    changes: list[Change] = []
    for _ in range(3):
        mesh.alive.discard("x")
        changes += mesh.run(50)
        mesh.alive.add("x")
        changes += mesh.run(30)
    flaps = opened(changes, "flapping")
    assert [(c.incident.cause_nodes, c.incident.cause_links) for c in flaps] == [(["x"], [])]
    assert [c.incident.cause_nodes for c in opened(changes)] == [["x"], ["x"]]


def test_flapping_link_gives_one_flapping_incident() -> None:
    mesh = Mesh([("gw", "a"), ("a", "b"), ("gw", "b")], {"gw"})
    changes: list[Change] = []
    for i in range(6):
        if i % 2 == 0:
            mesh.adj["a"].discard("b")
        else:
            mesh.adj["a"].add("b")
        changes += mesh.run(10)
    flaps = opened(changes, "flapping")
    assert len(flaps) == 1
    assert flaps[0].incident.cause_links == [LinkRef("a", "b", "wifi")]


# ---------------------------------------------------------------- degraded links
def test_degraded_link_needs_three_samples_and_recovers_with_hysteresis() -> None:
    mesh = Mesh([("gw", "a")], {"gw"})
    mesh.link_metrics[("gw", "a")] = {"signal_dbm": -85}
    changes = mesh.run(20)  # two bad samples
    assert not opened(changes, "degraded")
    changes = mesh.run(10)
    assert len(opened(changes, "degraded")) == 1
    assert "signal -85 dBm" in opened(changes, "degraded")[0].incident.details["gw->a"]
    # -78 dBm is above -80 but inside the 3 dB hysteresis: still degraded
    mesh.link_metrics[("gw", "a")] = {"signal_dbm": -78}
    assert not resolved(mesh.run(60), "degraded")
    mesh.link_metrics[("gw", "a")] = {"signal_dbm": -70}
    assert len(resolved(mesh.run(40), "degraded")) == 1


def test_signal_far_below_its_own_baseline_is_degraded() -> None:
    mesh = Mesh([("gw", "a")], {"gw"}, HealthSettings(baseline_min_h=3))
    mesh.link_metrics[("gw", "a")] = {"signal_dbm": -50}
    mesh.run(4 * 3600)  # four hours at -50 dBm: baseline -50
    mesh.link_metrics[("gw", "a")] = {"signal_dbm": -65}  # fine absolutely, 15 dB down
    changes = mesh.run(40)
    out = opened(changes, "degraded")
    assert len(out) == 1
    assert any("below its baseline" in r for r in out[0].incident.details["gw->a"])
    fading = mesh.health.fading_links()
    assert fading and fading[0]["baseline_dbm"] == -50.0


# ---------------------------------------------------------------- weak points
def test_weak_points_alert_only_after_the_baseline() -> None:
    mesh = Mesh([("gw", "a"), ("a", "b"), ("gw", "c"), ("c", "b")], {"gw"})

    def weak(changes: list[Change]) -> list[Change]:
        return [c for c in changes if c.incident.kind == "weak_point"]

    # the first analysis, one interval after the start, takes the baseline
    assert weak(mesh.run(60)) == []  # ring: nothing, baseline
    mesh.adj["c"].discard("b")  # the link c–b goes away (and ages out of the topology)
    mesh.adj["b"].discard("c")
    out = weak(mesh.run(400))
    named = {tuple(c.incident.cause_nodes) or str(c.incident.cause_links[0]) for c in out}
    assert ("a",) in named
    assert all(c.what == "opened" for c in out)
    mesh.adj["c"].add("b")
    mesh.adj["b"].add("c")
    assert {c.what for c in weak(mesh.run(70))} == {"resolved"}


# ---------------------------------------------------------------- restarts
def test_snapshot_keeps_the_outage_and_its_id_across_a_restart() -> None:
    mesh = Mesh(backbone(), {"gw"})
    for node in ["b", *LEAVES]:
        mesh.lwt(node)
    first = opened(mesh.step(1))[0].incident
    snap = mesh.core.snapshot()
    # a new core resumed from the saved state, as after a collector restart
    again = Core(mesh.core.settings)
    again.restore(list(mesh.topo.nodes.values()), list(mesh.topo.links.values()), snap,
                  mesh.now)
    mesh.core = again
    assert not opened(mesh.step(2))
    assert [i.id for i in again.health.outages()] == [first.id]
    mesh.alive.add("b")
    mesh.send_report("b")
    out = resolved(mesh.step(1))
    assert [c.incident.id for c in out] == [first.id]


def test_nodes_offline_before_the_first_start_are_not_news() -> None:
    before = Core()  # what the state saved by the collector's last run holds
    before.apply(Info.model_validate({"v": 1, "node": "gw", "gateway": True}), T0)
    before.apply(Status(v=1, node="gw", online=True), T0)
    before.apply(Status(v=1, node="dead", online=False), T0)
    core = Core()  # started on it without saved health state
    core.restore(list(before.topology.nodes.values()), [], None, T0)
    assert core.tick(T0 + 5).incidents == []
    assert core.health.node_condition("dead") == "offline"


def test_link_poor_from_its_first_sample_is_not_news() -> None:
    mesh = Mesh([("gw", "a"), ("a", "b")], {"gw"})
    mesh.adj["a"].add("c")
    mesh.adj["c"] = {"a"}
    mesh.alive.add("c")
    mesh.link_metrics[("a", "c")] = {"signal_dbm": -90}
    mesh.link_metrics[("c", "a")] = {"signal_dbm": -90}
    changes = mesh.run(60)
    assert not opened(changes, "degraded")
    assert mesh.health.link_condition(next(
        k for k in mesh.topo.links if (k.src, k.peer) == ("a", "c"))) == "degraded"


def test_link_hovering_at_the_threshold_is_not_news() -> None:
    mesh = Mesh([("gw", "a")], {"gw"})
    mesh.link_metrics[("gw", "a")] = {"signal_dbm": -79}
    mesh.health.detector(DegradedDetector).trackers.clear()  # forget the good set-up
    mesh.run(30)
    mesh.link_metrics[("gw", "a")] = {"signal_dbm": -82}
    assert not opened(mesh.run(60), "degraded")


def test_failure_next_to_an_older_outage_has_its_own_start_and_group_wait() -> None:
    mesh = Mesh([("gw", "l1"), ("gw", "l2"), ("l1", "l2")], {"gw"})
    mesh.lwt("l1")
    assert len(opened(mesh.step(1))) == 1
    mesh.run(13)
    mesh.lwt("l2")
    failed_at = mesh.now
    assert not opened(mesh.step(0.3))
    out = opened(mesh.step(0.3))
    assert [c.incident.cause_nodes for c in out] == [["l2"]]
    assert out[0].incident.started_at == failed_at
