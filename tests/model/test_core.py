"""The core's entry points and its change log: what each call appends, what each consumer
reads from its own position, how the log stays bounded, and a detector plugged in."""

from __future__ import annotations

import dataclasses
from typing import Any

from meshmon.model.changelog import (
    ChangeLog,
    Changes,
    Entry,
    IncidentsChanged,
    InfoChanged,
    LinksAdded,
    Reported,
)
from meshmon.model.core import Core, CoreSettings
from meshmon.model.health import DETECTORS, Detector, Incident
from meshmon.model.state import LinkKey
from meshmon.model.wire import Info, Report, Status

T0 = 1_700_000_000.0
MAC_C = "02:00:00:00:00:0c"


def link(peer: str | None = None, mac: str | None = None, **metrics: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"iface": "wlan0", "kind": "wifi", **metrics}
    if peer is not None:
        out["peer"] = peer
    if mac is not None:
        out["peer_mac"] = mac
    return out


def report(node: str, *links: dict[str, Any], ts: float = T0) -> Report:
    return Report.model_validate({"v": 1, "node": node, "ts": ts, "seq": 1,
                                  "interval_s": 10, "links": list(links)})


def info(node: str, *macs: str) -> Info:
    return Info.model_validate({"v": 1, "node": node, "macs": list(macs)})


def status(node: str, online: bool) -> Status:
    return Status(v=1, node=node, online=online)


def key(src: str, peer: str) -> LinkKey:
    return LinkKey(src, peer, "wlan0", "wifi")


def kinds(entries: list[Entry]) -> list[str]:
    return [type(e).__name__ for e in entries]


# ---------------------------------------------------------------- effects
def test_apply_returns_what_it_appended() -> None:
    core = Core()
    first = core.apply(report("a", link(peer="b"), link(mac=MAC_C)), T0)
    assert kinds(first.entries) == ["Reported", "Presence"]
    reported = first.entries[0]
    assert isinstance(reported, Reported)
    assert reported.dsts == ("b", None) and reported.new_links == 2
    assert first.presence == [("a", True, "report")] and first.dsts == ("b", None)
    again = core.apply(report("a", link(peer="b"), link(mac=MAC_C)), T0 + 1)
    assert kinds(again.entries) == ["Reported"]  # online already, no new links
    assert isinstance(again.entries[0], Reported) and again.entries[0].new_links == 0
    rekey = core.apply(info("c", MAC_C), T0 + 2)
    assert kinds(rekey.entries) == ["InfoChanged", "LinksRemoved", "LinksAdded"]
    assert rekey.links_removed == [key("a", "mac:" + MAC_C)]
    assert rekey.entries[2] == LinksAdded(T0 + 2, (key("a", "c"),))
    assert core.apply(status("a", True), T0 + 3).entries == []  # nothing changed
    assert core.apply(status("a", False), T0 + 4).presence == [("a", False, "status")]


def test_tick_expires_then_lets_the_detectors_open_incidents() -> None:
    core = Core(CoreSettings(offline_after_intervals=3, link_timeout_s=60))
    core.apply(Info.model_validate({"v": 1, "node": "gw", "gateway": True}), T0)
    core.apply(report("gw", link(peer="a")), T0)
    core.apply(report("a", link(peer="gw")), T0)
    assert core.tick(T0 + 1).entries == []
    core.apply(report("gw", link(peer="a")), T0 + 25)
    timed_out = core.tick(T0 + 31)  # a is silent for 3 × 10 s
    assert timed_out.presence == [("a", False, "timeout")]
    confirmed = core.tick(T0 + 31 + core.settings.health.group_wait_s)
    assert [(c.what, c.incident.kind, c.incident.cause_nodes)
            for c in confirmed.incidents] == [("opened", "outage", ["a"])]
    assert isinstance(confirmed.entries[-1], IncidentsChanged)
    gone = core.tick(T0 + 61)  # a's link to gw aged out
    assert gone.links_removed == [key("a", "gw")]


def test_quiet_as_of_holds_expiry_back_while_messages_wait() -> None:
    core = Core(CoreSettings(offline_after_intervals=3))
    core.apply(report("a"), T0)
    assert core.tick(T0 + 40, quiet_as_of=T0 + 20).presence == []
    assert core.tick(T0 + 41, quiet_as_of=T0 + 31).presence == [("a", False, "timeout")]


def test_restore_logs_the_reset_and_the_links_it_re_keyed() -> None:
    before = Core()
    before.apply(report("a", link(mac=MAC_C)), T0)
    nodes = list(before.topology.nodes.values())
    links = [dataclasses.replace(s) for s in before.topology.links.values()]  # as stored
    before.apply(info("c", MAC_C), T0 + 1)  # saved: the node, not the re-key
    core = Core()
    effects = core.restore([*nodes, before.topology.nodes["c"]], links, None, T0 + 2)
    assert kinds(effects.entries) == ["Restored", "LinksRemoved", "LinksAdded"]
    assert effects.links_removed == [key("a", "mac:" + MAC_C)]
    assert list(core.topology.links) == [key("a", "c")]


# ---------------------------------------------------------------- change log
def test_changes_name_every_link_and_node_that_changed_and_start_anew_when_taken() -> None:
    core = Core(CoreSettings(link_timeout_s=60))
    docs = core.log.follow()  # a consumer, e.g. the web documents
    core.apply(report("a", link(peer="b"), link(mac=MAC_C)), T0)
    first = Changes.of(docs.read())
    unresolved = key("a", "mac:" + MAC_C)
    assert first.links == {key("a", "b"), unresolved} and first.nodes == {"a"}
    assert not first.reset
    assert Changes.of(docs.read()).links == set()
    core.apply(info("c", MAC_C), T0 + 1)  # re-keys a→mac:c to a→c
    changes = Changes.of(docs.read())
    assert changes.links == {unresolved, key("a", "c")} and changes.nodes == {"c"}
    assert changes.link_set
    core.apply(status("b", True), T0 + 2)  # online flags are not noted
    assert Changes.of(docs.read()).nodes == set()
    core.apply(report("a", link(peer="b"), link(mac=MAC_C)), T0 + 3)
    changes = Changes.of(docs.read())
    assert changes.links == {key("a", "b"), key("a", "c")}
    assert not changes.link_set  # new samples, the same links
    core.apply(report("b", link(peer="a")), T0 + 70)
    core.tick(T0 + 70)  # a's links age out
    assert Changes.of(docs.read()).links == {key("a", "b"), key("a", "c"), key("b", "a")}
    topo = core.topology
    core.restore(list(topo.nodes.values()), list(topo.links.values()), None, T0 + 71)
    assert Changes.of(docs.read()).reset


def test_changes_nobody_takes_collapse_into_a_reset() -> None:
    core = Core(CoreSettings(link_timeout_s=1, log_capacity=1000))
    docs = core.log.follow()
    for i in range(1200):  # links come and go: removed keys would pile up
        core.apply(report("a", link(peer=f"p{i}")), T0 + 2 * i)
        core.tick(T0 + 2 * i + 1.5)
    read = docs.read()
    changes = Changes.of(read)
    assert changes.reset and len(changes.links) < 1200
    assert read.lost > 0 and len(core.log) <= 1000


def test_each_consumer_reads_from_its_own_position_and_the_log_keeps_only_the_unread() -> None:
    log = ChangeLog()
    fast, slow = log.follow(), log.follow()
    for i in range(5):
        log.append(InfoChanged(T0 + i, f"n{i}"))
    assert [e.node for e in fast.read().entries] == ["n0", "n1", "n2", "n3", "n4"]  # type: ignore[union-attr]
    assert len(log) == 5  # the slow one has not read them
    log.append(InfoChanged(T0 + 5, "n5"))
    assert len(slow.read().entries) == 6
    assert len(log) == 1 and fast.pending == 1  # n5: the fast one has not read it yet
    late = log.follow()  # a new consumer starts at the end
    assert late.read().entries == []
    fast.skip()
    assert len(log) == 0
    slow.close()
    log.append(InfoChanged(T0 + 6, "n6"))
    assert [e.node for e in fast.read().entries] == ["n6"]  # type: ignore[union-attr]
    assert len(log) == 1  # late still follows


def test_a_bare_core_keeps_only_the_entries_of_the_last_call_after_a_tick() -> None:
    core = Core()
    for i in range(100):
        core.apply(report(f"n{i}"), T0)
    core.tick(T0 + 1)
    assert len(core.log) == 0  # the detectors read everything; nobody else follows


def test_detectors_see_every_entry_however_long_the_log_gets_between_ticks() -> None:
    core = Core(CoreSettings(offline_after_intervals=3, log_capacity=100))
    core.apply(Info.model_validate({"v": 1, "node": "gw", "gateway": True}), T0)
    core.apply(report("gw", link(peer="leaf")), T0)
    core.apply(report("leaf", link(peer="gw")), T0)
    core.tick(T0)
    core.apply(status("leaf", False), T0 + 1)  # its last will ...
    for _ in range(300):  # ... and a flood before the next tick
        core.apply(report("gw", link(peer="leaf"), ts=T0 + 1), T0 + 1)
    core.tick(T0 + 1.1)
    assert len(core.log) <= 100 and core.log.lost == 0  # bounded; nobody fell behind
    opened = core.tick(T0 + 2).incidents
    assert [(c.what, c.incident.cause_nodes) for c in opened] == [("opened", ["leaf"])]


# ---------------------------------------------------------------- a new kind is one module
class ByBridge(Detector):
    """Like the `unmonitored` kind: nodes published by an offline bridge are no outage."""

    kind = "unmonitored"
    observes = (InfoChanged,)

    def observe(self, entry: Entry) -> None:
        if isinstance(entry, InfoChanged) and entry.node.startswith("br-"):
            self.facts.excused.add(entry.node)

    def evaluate(self, now: float) -> None:
        for node in sorted(self.facts.excused):
            state = self.topology.nodes[node]
            inc_id = f"unmonitored-{node}"
            if not state.online and inc_id not in self.book.open:
                self.book.announce(Incident(inc_id, self.kind, "info", now,
                                            cause_nodes=[node]))

    def condition(self, node: str) -> str | None:
        return "unmonitored" if node in self.facts.excused else None


def test_a_detector_plugs_in_without_touching_the_others() -> None:
    core = Core(CoreSettings(offline_after_intervals=3), (*DETECTORS, ByBridge))
    core.apply(Info.model_validate({"v": 1, "node": "gw", "gateway": True}), T0)
    core.apply(info("br-1"), T0)
    core.apply(info("leaf"), T0)
    core.apply(report("gw", link(peer="br-1"), link(peer="leaf")), T0)
    core.apply(report("br-1", link(peer="gw")), T0)
    core.apply(report("leaf", link(peer="gw")), T0)
    core.tick(T0)
    core.apply(status("br-1", False), T0 + 1)
    core.apply(status("leaf", False), T0 + 1)
    changes = core.tick(T0 + 1).incidents + core.tick(T0 + 2).incidents
    assert sorted((c.incident.kind, c.incident.cause_nodes[0]) for c in changes) == [
        ("outage", "leaf"), ("unmonitored", "br-1")]
    assert core.health.node_condition("br-1") == "unmonitored"
    assert core.health.node_condition("leaf") == "offline"
