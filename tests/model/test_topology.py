"""The topology core driven by plain function calls with hand-made messages."""

from __future__ import annotations

import copy
import dataclasses
import gc
from typing import Any

import msgspec
import pytest

from meshmon.model.state import LinkKey, LinkSample
from meshmon.model.topology import Topology
from meshmon.model.wire import LINK_METRICS, Info, Link, Radio, Report, Status

T0 = 1_700_000_000.0
MAC_B = "02:00:00:00:00:0b"
MAC_C = "02:00:00:00:00:0c"


def link(peer: str | None = None, mac: str | None = None, iface: str = "wlan0",
         kind: str = "wifi", **metrics: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"iface": iface, "kind": kind, **metrics}
    if peer is not None:
        out["peer"] = peer
    if mac is not None:
        out["peer_mac"] = mac
    return out


def report(node: str, *links: dict[str, Any], interval_s: float = 30, **extra: Any) -> Report:
    return Report.model_validate({"v": 1, "node": node, "ts": T0, "seq": 1,
                                  "interval_s": interval_s, "links": list(links), **extra})


def info(node: str, *macs: str, **extra: Any) -> Info:
    return Info.model_validate({"v": 1, "node": node, "macs": list(macs), **extra})


def status(node: str, online: bool) -> Status:
    return Status(v=1, node=node, online=online)


def key(src: str, peer: str, iface: str = "wlan0", kind: str = "wifi") -> LinkKey:
    return LinkKey(src, peer, iface, kind)


# ---------------------------------------------------------------- peer resolution
def test_peer_id_wins_over_mac() -> None:
    topo = Topology()
    topo.apply_info(info("c", MAC_C), T0)
    dsts = topo.apply_report(report("a", link(peer="b", mac=MAC_C)), T0).dsts
    assert dsts == ("b",)
    assert set(topo.links) == {key("a", "b")}
    assert topo.graph.has_edge("a", "b") and not topo.graph.has_edge("a", "c")


def test_peer_resolved_by_announced_mac_case_insensitive() -> None:
    topo = Topology()
    topo.apply_info(info("b", MAC_B.upper()), T0)
    dsts = topo.apply_report(report("a", link(mac=MAC_B)), T0 + 1).dsts
    assert dsts == ("b",)
    state = topo.links[key("a", "b")]
    assert state.dst == "b" and state.peer_mac == MAC_B
    assert topo.graph.has_edge("a", "b")


def test_unknown_mac_is_kept_unresolved_and_resolved_when_info_arrives_later() -> None:
    topo = Topology()
    dsts = topo.apply_report(report("a", link(mac=MAC_B, signal_dbm=-60)), T0).dsts
    assert dsts == (None,)
    unresolved = key("a", "mac:" + MAC_B)
    assert topo.links[unresolved].dst is None
    assert topo.graph.number_of_edges() == 0

    rekeyed = topo.apply_info(info("b", MAC_B), T0 + 5)

    assert unresolved not in topo.links
    state = topo.links[key("a", "b")]
    assert state.dst == "b" and state.sample.signal_dbm == -60 and state.last_seen == T0
    assert topo.graph.has_edge("a", "b")
    assert [s.key for s in topo.node_links("b")] == [key("a", "b")]
    # the next report resolves straight to the same key
    assert topo.apply_report(report("a", link(mac=MAC_B, signal_dbm=-58)), T0 + 30).dsts == (
        "b",)
    assert len(topo.links) == 1 and topo.links[key("a", "b")].sample.signal_dbm == -58
    # the vanished mac: key and its new one are handed on (the core logs them for stores)
    assert rekeyed.removed == [unresolved] and rekeyed.added == [key("a", "b")]


def test_info_resolving_a_link_that_already_exists_by_id_keeps_the_fresher() -> None:
    topo = Topology()
    topo.apply_report(report("a", link(mac=MAC_B, signal_dbm=-70)), T0)
    topo.apply_report(report("a", link(peer="b", signal_dbm=-50)), T0 + 10)
    topo.apply_info(info("b", MAC_B), T0 + 20)
    assert list(topo.links) == [key("a", "b")]
    assert topo.links[key("a", "b")].sample.signal_dbm == -50
    assert topo.graph["a"]["b"]["links"] == 1


def test_mac_dropped_from_info_no_longer_resolves() -> None:
    topo = Topology()
    topo.apply_info(info("b", MAC_B), T0)
    topo.apply_info(info("b"), T0 + 1)
    assert topo.apply_report(report("a", link(mac=MAC_B)), T0 + 2).dsts == (None,)


def test_the_same_links_reported_again_follow_a_mac_that_changed_owner() -> None:
    """A node's next report with the same links only replaces samples, unless the MACs'
    owners changed meanwhile: then its links resolve anew."""
    topo = Topology()
    topo.apply_info(info("b", MAC_B), T0)
    assert topo.apply_report(report("a", link(mac=MAC_B, signal_dbm=-60)), T0).dsts == ("b",)
    first = topo.links[key("a", "b")]
    assert topo.apply_report(report("a", link(mac=MAC_B, signal_dbm=-61)), T0 + 1).dsts == ("b",)
    assert topo.links[key("a", "b")] is first
    assert first.sample.signal_dbm == -61 and first.last_seen == T0 + 1
    topo.apply_info(info("b"), T0 + 2)
    topo.apply_info(info("c", MAC_B), T0 + 2)  # the MAC moved to another node
    assert topo.apply_report(report("a", link(mac=MAC_B, signal_dbm=-62)), T0 + 3).dsts == ("c",)
    assert topo.links[key("a", "c")].sample.signal_dbm == -62
    assert first.sample.signal_dbm == -61  # the old link is left to age out
    topo.apply_info(info("c"), T0 + 4)  # nobody owns it: unresolved
    assert topo.apply_report(report("a", link(mac=MAC_B)), T0 + 5).dsts == (None,)
    assert key("a", "mac:" + MAC_B) in topo.links


def test_the_same_links_reported_after_they_aged_out_come_back() -> None:
    topo = Topology(link_timeout_s=60)
    topo.apply_report(report("a", link(peer="b"), interval_s=1000), T0)
    topo.expire(T0 + 61)
    assert key("a", "b") not in topo.links
    topo.apply_report(report("a", link(peer="b"), interval_s=1000), T0 + 62)
    assert topo.links[key("a", "b")].first_seen == T0 + 62
    assert topo.graph.has_edge("a", "b")


def test_the_resolved_peers_leave_the_garbage_collector() -> None:
    """The SQLite store queues each report with its resolved peers until its next write: a
    queued entry holding a list would stay tracked, scanned by every young collection."""
    topo = Topology()
    topo.apply_info(info("b", MAC_B), T0)
    first = topo.apply_report(report("a", link(mac=MAC_B), link(peer="c")), T0).dsts
    again = topo.apply_report(report("a", link(mac=MAC_B), link(peer="c")), T0 + 1).dsts
    queued = [(T0, "report", first), (T0 + 1, "report", again)]
    gc.collect()
    assert [gc.is_tracked(entry) for entry in queued] == [False, False]
    assert first == again == ("b", "c")


def test_self_links_are_ignored_by_id_and_by_own_mac() -> None:
    topo = Topology()
    topo.apply_info(info("a", MAC_B), T0)
    dsts = topo.apply_report(report("a", link(peer="a"), link(mac=MAC_B), link(peer="b")),
                             T0).dsts
    assert dsts == (None, None, "b")
    assert set(topo.links) == {key("a", "b")}
    assert not topo.graph.has_edge("a", "a")


def test_unresolved_link_to_own_mac_is_dropped_when_the_mac_is_announced() -> None:
    topo = Topology()
    topo.apply_report(report("a", link(mac=MAC_B)), T0)
    topo.apply_info(info("a", MAC_B), T0 + 1)
    assert topo.links == {}
    assert topo.graph.number_of_edges() == 0


# ---------------------------------------------------------------- links and graph
def test_both_directions_are_separate_links_and_one_graph_edge() -> None:
    topo = Topology()
    topo.apply_report(report("a", link(peer="b", signal_dbm=-60)), T0)
    topo.apply_report(report("b", link(peer="a", iface="mesh0", signal_dbm=-65)), T0)
    assert set(topo.links) == {key("a", "b"), key("b", "a", "mesh0")}
    assert topo.graph.number_of_edges() == 1 and topo.graph["a"]["b"]["links"] == 2
    assert {s.key for s in topo.node_links("a")} == {key("a", "b"), key("b", "a", "mesh0")}


def test_reverse_finds_the_other_ends_view_even_on_another_iface() -> None:
    topo = Topology()
    topo.apply_report(report("a", link(peer="b"), link(peer="b", iface="eth0", kind="ethernet")),
                      T0)
    topo.apply_report(report("b", link(peer="a", iface="mesh0")), T0)
    back = topo.reverse(key("a", "b"))
    assert back is not None and back.key == key("b", "a", "mesh0")
    assert topo.reverse(key("b", "a", "mesh0")) is topo.links[key("a", "b")]
    assert topo.reverse(key("a", "b", "eth0", "ethernet")) is None  # b reports no ethernet link
    assert topo.reverse(key("a", "mac:" + MAC_B)) is None


def test_reverse_prefers_the_radio_on_the_same_frequency() -> None:
    topo = Topology()
    radios_a = [{"iface": "wlan0", "freq_mhz": 2412}, {"iface": "wlan1", "freq_mhz": 5180}]
    radios_b = [{"iface": "phy0-mesh", "freq_mhz": 5180}, {"iface": "phy1-mesh", "freq_mhz": 2412}]
    topo.apply_report(report("a", link(peer="b"), link(peer="b", iface="wlan1"),
                             radios=radios_a), T0)
    topo.apply_report(report("b", link(peer="a", iface="phy0-mesh"),
                             link(peer="a", iface="phy1-mesh"), radios=radios_b), T0)
    assert Radio.model_validate(radios_a[0]).freq_mhz == 2412
    back = topo.reverse(key("a", "b", "wlan0"))
    assert back is not None and back.key.iface == "phy1-mesh"
    back = topo.reverse(key("a", "b", "wlan1"))
    assert back is not None and back.key.iface == "phy0-mesh"


def test_duplicate_links_in_one_report_last_wins() -> None:
    topo = Topology()
    dsts = topo.apply_report(report("a", link(peer="b", signal_dbm=-80),
                                    link(peer="b", signal_dbm=-40)), T0).dsts
    assert dsts == ("b", "b")
    assert len(topo.links) == 1 and topo.links[key("a", "b")].sample.signal_dbm == -40
    assert topo.graph["a"]["b"]["links"] == 1


def test_apply_report_never_raises_on_odd_input() -> None:
    topo = Topology()
    odd = Report.model_construct(
        v=1, node="a", ts=T0, seq=0, interval_s=30, radios=[],
        links=[Link.model_construct(peer=None, peer_mac=None, iface="x", kind="wifi"),
               Link.model_construct(peer=None, peer_mac="AA:BB:CC:DD:EE:FF", iface="x",
                                    kind="wifi"),
               Link.model_construct(peer="a", peer_mac=None, iface="x", kind="wifi")],
    )
    assert topo.apply_report(odd, T0).dsts == (None, None, None)
    assert list(topo.links) == [key("a", "mac:aa:bb:cc:dd:ee:ff", "x")]
    assert topo.apply_report(report("a"), T0 + 1).dsts == ()  # no links at all
    assert topo.nodes["a"].online


def test_report_marks_node_online_and_records_it() -> None:
    topo = Topology()
    rep = report("a", interval_s=10)
    topo.apply_report(rep, T0)
    node = topo.nodes["a"]
    assert node.online and node.last_seen == T0 and node.first_seen == T0
    assert node.interval_s == 10 and node.last_report is rep
    assert "a" in topo.graph


def test_peer_that_never_spoke_is_a_graph_node_but_not_in_nodes() -> None:
    topo = Topology()
    topo.apply_report(report("a", link(peer="x")), T0)
    assert "x" in topo.graph and "x" not in topo.nodes
    topo.expire(T0 + 301)
    assert "x" not in topo.graph  # left with its last link
    assert "a" in topo.graph  # spoken nodes stay


# ---------------------------------------------------------------- status and expiry
def test_status_last_will_marks_offline_at_once() -> None:
    topo = Topology()
    topo.apply_report(report("a"), T0)
    assert topo.apply_status(status("a", False), T0 + 1) is True
    assert topo.nodes["a"].online is False
    assert topo.apply_status(status("a", False), T0 + 2) is False  # no change
    assert topo.apply_status(status("a", True), T0 + 3) is True
    assert topo.nodes["a"].online


def test_status_offline_for_unknown_node_is_not_a_change() -> None:
    topo = Topology()
    assert topo.apply_status(status("z", False), T0) is False
    assert topo.nodes["z"].online is False


def test_node_goes_offline_after_missing_intervals() -> None:
    topo = Topology(offline_after_intervals=3)
    topo.apply_report(report("a", interval_s=10), T0)
    topo.apply_report(report("b", interval_s=60), T0)
    assert topo.expire(T0 + 30).nodes_offline == []  # exactly 3 intervals: not yet
    assert topo.expire(T0 + 31).nodes_offline == ["a"]
    assert not topo.nodes["a"].online and topo.nodes["b"].online
    assert topo.expire(T0 + 32).nodes_offline == []  # reported once
    assert topo.expire(T0 + 181).nodes_offline == ["b"]


def test_info_interval_protects_the_end_of_fast_mode() -> None:
    topo = Topology(offline_after_intervals=3)
    topo.apply_info(info("a", interval_s=30), T0)
    topo.apply_report(report("a", interval_s=1), T0)  # installer fast mode
    assert topo.expire(T0 + 60).nodes_offline == []
    assert topo.expire(T0 + 91).nodes_offline == ["a"]


def test_link_ages_out_on_its_own_timer_and_edge_lives_while_either_end_reports() -> None:
    topo = Topology(link_timeout_s=300)
    topo.apply_report(report("a", link(peer="b")), T0)
    topo.apply_report(report("b", link(peer="a")), T0)
    # a stops listing b (neighbour came and went): a→b is not deleted at once
    topo.apply_report(report("a"), T0 + 100)
    assert key("a", "b") in topo.links
    # b keeps reporting b→a
    topo.apply_report(report("b", link(peer="a")), T0 + 250)
    gone = topo.expire(T0 + 301)
    assert gone.links_removed == [key("a", "b")]
    assert set(topo.links) == {key("b", "a")}
    assert topo.graph.has_edge("a", "b") and topo.graph["a"]["b"]["links"] == 1
    gone = topo.expire(T0 + 551)
    assert gone.links_removed == [key("b", "a")]
    assert not topo.graph.has_edge("a", "b")
    assert topo.node_links("a") == [] and topo.node_links("b") == []


def test_unresolved_link_expiry_clears_the_mac_index() -> None:
    topo = Topology(link_timeout_s=60)
    topo.apply_report(report("a", link(mac=MAC_B)), T0)
    assert topo.expire(T0 + 61).links_removed == [key("a", "mac:" + MAC_B)]
    topo.apply_info(info("b", MAC_B), T0 + 62)  # nothing left to resolve
    assert topo.links == {}
    assert topo.graph.number_of_edges() == 0


# ---------------------------------------------------------------- restore
def _busy_topology() -> Topology:
    topo = Topology()
    topo.apply_info(info("b", MAC_B, gateway=True), T0)
    topo.apply_report(report("a", link(mac=MAC_B), link(peer="c"), link(mac=MAC_C)), T0)
    topo.apply_report(report("b", link(peer="a", iface="mesh0")), T0)
    topo.apply_report(report("c", link(peer="x", kind="batman")), T0)
    return topo


def _edges(topo: Topology) -> dict[frozenset[str], dict[str, Any]]:
    return {frozenset((u, v)): d for u, v, d in topo.graph.edges(data=True)}


def test_restore_gives_the_same_graph_links_and_analysis() -> None:
    topo = _busy_topology()
    again = Topology()
    again.restore(list(topo.nodes.values()), list(topo.links.values()))
    assert set(again.graph.nodes) == set(topo.graph.nodes)
    assert _edges(again) == _edges(topo)
    assert set(again.links) == set(topo.links)
    assert {n: [s.key for s in again.node_links(n)] for n in again.graph} == {
        n: [s.key for s in topo.node_links(n)] for n in topo.graph}
    a1, a2 = topo.analyse(), again.analyse()
    assert (a1.components, a1.reach_gateway, a1.bridges) == (a2.components, a2.reach_gateway,
                                                             a2.bridges)
    # the MAC index is rebuilt: a late info still resolves the waiting link
    again.apply_info(info("c", MAC_C), T0 + 1)
    assert key("a", "mac:" + MAC_C) not in again.links
    assert again.links[key("a", "c")].dst == "c"


def test_restore_resolves_saved_mac_links_whose_owner_is_now_known() -> None:
    topo = Topology()
    topo.apply_report(report("a", link(mac=MAC_B)), T0)
    saved_links = [dataclasses.replace(s) for s in topo.links.values()]  # as a store keeps them
    topo.apply_info(info("b", MAC_B), T0 + 1)  # the store saved the node but not the re-key
    again = Topology()
    rekeyed = again.restore(list(topo.nodes.values()), saved_links)
    assert list(again.links) == [key("a", "b")] and again.graph.has_edge("a", "b")
    assert rekeyed.removed == [key("a", "mac:" + MAC_B)] and rekeyed.added == [key("a", "b")]


def test_restore_in_place_from_its_own_state() -> None:
    topo = _busy_topology()
    graph = topo.graph
    edges = {frozenset(e) for e in graph.edges}
    topo.restore(topo.nodes.values(), topo.links.values())
    assert topo.graph is graph  # views holding the graph stay valid
    assert {frozenset(e) for e in topo.graph.edges} == edges


@pytest.mark.parametrize("timeout", [10.0, 300.0])
def test_constructor_settings_are_used(timeout: float) -> None:
    topo = Topology(offline_after_intervals=2, link_timeout_s=timeout)
    topo.apply_report(report("a", link(peer="b"), interval_s=5), T0)
    assert topo.expire(T0 + 11).nodes_offline == ["a"]
    assert (key("a", "b") in topo.links) is (timeout > 11)


def test_expire_notices_a_shorter_interval_after_a_quiet_scan() -> None:
    topo = Topology(offline_after_intervals=3, link_timeout_s=300)
    topo.apply_report(report("a", link(peer="b"), interval_s=60), T0)
    assert topo.expire(T0 + 1).nodes_offline == []  # nothing due before T0 + 180
    topo.apply_report(report("a", interval_s=1), T0 + 2)  # fast mode, no info interval
    topo.apply_status(status("c", True), T0 + 2)  # online by status, default 30 s interval
    assert topo.expire(T0 + 6).nodes_offline == ["a"]
    assert topo.expire(T0 + 93).nodes_offline == ["c"]
    assert topo.expire(T0 + 301).links_removed == [key("a", "b")]


def test_restore_with_restart_time_gives_nodes_and_links_their_full_timeout() -> None:
    topo = Topology(offline_after_intervals=3, link_timeout_s=300)
    topo.apply_report(report("a", link("b"), interval_s=30), T0)
    restart = T0 + 3600  # the collector was away for an hour
    again = Topology(offline_after_intervals=3, link_timeout_s=300)
    saved = (list(topo.nodes.values()), list(topo.links.values()))
    again.restore(*copy.deepcopy(saved), now=restart)
    assert again.expire(restart + 1).nodes_offline == []  # no flood of offline events
    assert key("a", "b") in again.links
    gone = again.expire(restart + 91)  # a node that stays silent is offline 3 intervals later
    assert gone.nodes_offline == ["a"]
    assert again.expire(restart + 301).links_removed == [key("a", "b")]
    # without the restart time, the old timestamps count (the previous behaviour)
    old = Topology(offline_after_intervals=3, link_timeout_s=300)
    old.restore(*copy.deepcopy(saved))
    assert old.expire(restart + 1).nodes_offline == ["a"]


def test_link_sample_keeps_every_metric_and_drops_the_wire_model() -> None:
    metrics = {name: i + 1 for i, name in enumerate(LINK_METRICS)}
    metrics.update(lq=0.5, nlq=0.25, tq=200)
    wire = Link.model_validate({**link("b"), **metrics, "chains_dbm": [-61, -62]})
    sample = LinkSample.from_link(wire)
    # positional construction relies on the fields following LINK_METRICS
    fields = msgspec.structs.fields(LinkSample)
    assert tuple(f.name for f in fields) == (*LINK_METRICS, "chains_dbm")
    assert all(getattr(sample, name) == getattr(wire, name) for name in LINK_METRICS)
    assert sample.chains_dbm == (-61.0, -62.0)
    assert LinkSample.from_dict(sample.to_dict()) == sample
    assert LinkSample.from_dict(wire.model_dump()) == sample
    assert LinkSample.from_link(Link.model_validate(link("b"))) == LinkSample()


def test_node_keeps_its_last_report_without_the_links() -> None:
    topo = Topology()
    rep = report("a", link("b", signal_dbm=-60), clients=3, radios=[{"iface": "wlan0"}])
    topo.apply_report(rep, T0)
    kept = topo.nodes["a"].last_report
    assert kept is not None and kept.links == [] and len(rep.links) == 1
    assert kept.clients == 3 and kept.radios == rep.radios and kept.ts == rep.ts
    assert topo.links[key("a", "b")].sample == LinkSample(signal_dbm=-60)


def test_pair_links_lists_both_directions_of_every_mechanism() -> None:
    topo = Topology()
    topo.apply_report(report("a", link(peer="b"), link(peer="b", iface="bat0", kind="batman"),
                             link(peer="c")), T0)
    topo.apply_report(report("b", link(peer="a", iface="wlan1")), T0)
    topo.apply_report(report("c", link(mac=MAC_B)), T0)  # unresolved: not between b and c
    got = [s.key for s in topo.pair_links("b", "a")]
    assert got == sorted([key("a", "b"), key("a", "b", "bat0", "batman"),
                          key("b", "a", "wlan1")])
    assert topo.pair_links("a", "b") == topo.pair_links("b", "a")
    assert topo.pair_links("b", "c") == [] and topo.pair_links("x", "y") == []
