"""Components, gateway reach and weak points on small known graphs, and against networkx."""

from __future__ import annotations

import networkx as nx
import pytest

from meshmon.model.analysis import weak_points
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Report, Status

T0 = 1_700_000_000.0


def build(edges: list[tuple[str, str]], gateways: tuple[str, ...] = (),
          offline: tuple[str, ...] = ()) -> Topology:
    """A topology where every node reports its links to the nodes after it in `edges`."""
    topo = Topology()
    nodes = sorted({n for e in edges for n in e})
    for n in nodes:
        topo.apply_info(Info(v=1, node=n, gateway=n in gateways), T0)
        peers = [{"peer": b, "iface": "wlan0", "kind": "wifi"} for a, b in edges if a == n]
        topo.apply_report(Report.model_validate(
            {"v": 1, "node": n, "ts": T0, "seq": 1, "interval_s": 30, "links": peers}), T0)
    for n in offline:
        topo.apply_status(Status(v=1, node=n, online=False), T0 + 1)
    return topo


CHAIN = [("gw", "a"), ("a", "b"), ("b", "c")]


def test_chain_with_gateway_at_one_end() -> None:
    result = build(CHAIN, gateways=("gw",)).analyse()
    assert result.components == [["a", "b", "c", "gw"]]
    assert result.gateways == ["gw"]
    assert result.reach_gateway == {"gw", "a", "b", "c"}
    assert result.articulation_points == ["a", "b"]
    assert result.bridges == [("a", "b"), ("a", "gw"), ("b", "c")]
    assert result.duration_ms >= 0


def test_ring_has_no_weak_points() -> None:
    result = build([("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")], gateways=("a",)).analyse()
    assert result.articulation_points == [] and result.bridges == []
    assert result.reach_gateway == {"a", "b", "c", "d"}


def test_two_components_only_one_with_a_gateway() -> None:
    result = build([("gw", "a"), ("a", "b"), ("x", "y"), ("y", "z"), ("z", "w")],
                   gateways=("gw",)).analyse()
    assert result.components == [["w", "x", "y", "z"], ["a", "b", "gw"]]
    assert result.reach_gateway == {"gw", "a", "b"}


def test_offline_node_splits_the_network() -> None:
    result = build(CHAIN, gateways=("gw",), offline=("a",)).analyse()
    assert result.components == [["b", "c"], ["gw"]]
    assert result.reach_gateway == {"gw"}
    assert result.articulation_points == []
    assert result.bridges == [("b", "c")]


def test_offline_gateway_is_not_a_gateway() -> None:
    result = build(CHAIN, gateways=("gw",), offline=("gw",)).analyse()
    assert result.gateways == [] and result.reach_gateway == set()
    assert result.components == [["a", "b", "c"]]


def test_peer_that_never_spoke_carries_traffic_but_is_not_reported_as_reaching() -> None:
    topo = build([("gw", "a")], gateways=("gw",))
    topo.apply_report(Report.model_validate({"v": 1, "node": "b", "ts": T0, "seq": 1,
                                             "interval_s": 30, "links": [
                                                 {"peer": "x", "iface": "e", "kind": "other"}]}),
                      T0)
    topo.apply_report(Report.model_validate({"v": 1, "node": "a", "ts": T0, "seq": 1,
                                             "interval_s": 30, "links": [
                                                 {"peer": "x", "iface": "e", "kind": "other"}]}),
                      T0)
    result = topo.analyse()
    assert result.components == [["a", "b", "gw", "x"]]
    assert result.reach_gateway == {"gw", "a", "b"}
    assert result.articulation_points == ["a", "x"]


def test_isolated_spoken_node_is_its_own_component() -> None:
    topo = build(CHAIN, gateways=("gw",))
    topo.apply_report(Report(v=1, node="lonely", ts=T0, seq=1, interval_s=30), T0)
    result = topo.analyse()
    assert result.components[-1] == ["lonely"]
    assert "lonely" not in result.reach_gateway


def test_empty_topology() -> None:
    result = Topology().analyse()
    assert (result.components, result.gateways, result.reach_gateway,
            result.articulation_points, result.bridges) == ([], [], set(), [], [])


@pytest.mark.parametrize("seed", range(6))
def test_weak_points_agree_with_networkx(seed: int) -> None:
    graph = nx.gnm_random_graph(300, 330 + 40 * seed, seed=seed)
    graph = nx.relabel_nodes(graph, {n: f"n{n:03d}" for n in graph})
    found = weak_points(graph.adj)
    assert found.articulation_points == sorted(nx.articulation_points(graph))
    assert found.bridges == sorted(tuple(sorted(e)) for e in nx.bridges(graph))
    assert sorted(found.components) == sorted(sorted(c) for c in nx.connected_components(graph))
    keep = {n for n in graph if int(n[1:]) % 5}  # an induced subgraph, as offline nodes make
    sub = weak_points(graph.adj, keep)
    view = graph.subgraph(keep)
    assert sub.articulation_points == sorted(nx.articulation_points(view))
    assert sub.bridges == sorted(tuple(sorted(e)) for e in nx.bridges(view))


def test_deep_chain_does_not_hit_the_recursion_limit() -> None:
    graph = nx.path_graph([f"n{i:05d}" for i in range(20_000)])
    found = weak_points(graph.adj)
    assert len(found.bridges) == 19_999 and len(found.articulation_points) == 19_998
