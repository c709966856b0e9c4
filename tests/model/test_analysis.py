"""Components, gateway reach and weak points on small known graphs, and against networkx."""

from __future__ import annotations

import random
from collections.abc import Collection

import networkx as nx
import pytest

from meshmon.model.analysis import GatewayCuts, gateway_cuts, weak_points
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Report, Status

T0 = 1_700_000_000.0


def build(
    edges: list[tuple[str, str]], gateways: tuple[str, ...] = (), offline: tuple[str, ...] = ()
) -> Topology:
    """A topology where every node reports its links to the nodes after it in `edges`."""
    topo = Topology()
    nodes = sorted({n for e in edges for n in e})
    for n in nodes:
        topo.apply_info(Info(v=1, node=n, gateway=n in gateways), T0)
        peers = [{"peer": b, "iface": "wlan0", "kind": "wifi"} for a, b in edges if a == n]
        topo.apply_report(
            Report.model_validate(
                {"v": 1, "node": n, "ts": T0, "seq": 1, "interval_s": 30, "links": peers}
            ),
            T0,
        )
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
    result = build(
        [("gw", "a"), ("a", "b"), ("x", "y"), ("y", "z"), ("z", "w")], gateways=("gw",)
    ).analyse()
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
    topo.apply_report(
        Report.model_validate(
            {
                "v": 1,
                "node": "b",
                "ts": T0,
                "seq": 1,
                "interval_s": 30,
                "links": [{"peer": "x", "iface": "e", "kind": "other"}],
            }
        ),
        T0,
    )
    topo.apply_report(
        Report.model_validate(
            {
                "v": 1,
                "node": "a",
                "ts": T0,
                "seq": 1,
                "interval_s": 30,
                "links": [{"peer": "x", "iface": "e", "kind": "other"}],
            }
        ),
        T0,
    )
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
    assert (
        result.components,
        result.gateways,
        result.reach_gateway,
        result.articulation_points,
        result.bridges,
    ) == ([], [], set(), [], [])


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


# ------------------------------------------------------------------ gateway_cuts


def adjacency(edges: list[tuple[str, str]], *isolated: str) -> dict[str, list[str]]:
    """A plain adjacency mapping with each edge listed at both ends."""
    adj: dict[str, list[str]] = {n: [] for n in isolated}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    return adj


def test_gateway_cuts_chain() -> None:
    found = gateway_cuts(adjacency(CHAIN), ["gw"])
    assert found.node_cuts == {"gw": ["a", "b", "c"], "a": ["b", "c"], "b": ["c"]}
    assert found.link_cuts == {
        ("a", "gw"): ["a", "b", "c"],
        ("a", "b"): ["b", "c"],
        ("b", "c"): ["c"],
    }
    assert found.unreachable == []


def test_gateway_cuts_ring_loses_only_its_gateway() -> None:
    found = gateway_cuts(adjacency([("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")]), ["a"])
    assert found == GatewayCuts({"a": ["b", "c", "d"]}, {}, [])


@pytest.mark.parametrize("order", [["gw1", "gw2"], ["gw2", "gw1"]])
def test_gateways_at_both_ends_of_a_chain_cut_nothing(order: list[str]) -> None:
    found = gateway_cuts(adjacency([("gw1", "a"), ("a", "b"), ("b", "gw2")]), order)
    assert found == GatewayCuts({}, {}, [])


@pytest.mark.parametrize("order", [["gw", "gw2"], ["gw2", "gw"]])
def test_gateway_that_is_an_articulation_point(order: list[str]) -> None:
    # a - gw - b - c - gw2: losing gw cuts a off; b and c still have gw2, whichever
    # gateway the DFS starts from (from gw, gw2 is found below gw, not under the root)
    found = gateway_cuts(adjacency([("a", "gw"), ("gw", "b"), ("b", "c"), ("c", "gw2")]), order)
    assert found == GatewayCuts({"gw": ["a"]}, {("a", "gw"): ["a"]}, [])


def test_gateway_with_two_branches_and_no_other_gateway() -> None:
    found = gateway_cuts(adjacency([("a", "gw"), ("gw", "b"), ("b", "c")]), ["gw"])
    assert found.node_cuts == {"gw": ["a", "b", "c"], "b": ["c"]}
    assert found.link_cuts == {("a", "gw"): ["a"], ("b", "gw"): ["b", "c"], ("b", "c"): ["c"]}


def test_gateway_in_a_ring_with_a_second_gateway() -> None:
    edges = [("gw1", "a"), ("a", "gw2"), ("gw2", "b"), ("b", "gw1"), ("gw1", "leaf")]
    found = gateway_cuts(adjacency(edges), ["gw1", "gw2"])
    assert found == GatewayCuts({"gw1": ["leaf"]}, {("gw1", "leaf"): ["leaf"]}, [])


def test_gateway_cuts_bridge_between_two_triangles() -> None:
    edges = [("gw", "a"), ("a", "b"), ("b", "gw"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "c")]
    found = gateway_cuts(adjacency(edges), ["gw"])
    assert found.node_cuts == {
        "gw": ["a", "b", "c", "d", "e"],
        "b": ["c", "d", "e"],
        "c": ["d", "e"],
    }
    assert found.link_cuts == {("b", "c"): ["c", "d", "e"]}


def test_component_without_gateway_is_unreachable_and_never_cut() -> None:
    edges = [("gw", "a"), ("x", "y"), ("y", "z")]
    found = gateway_cuts(adjacency(edges, "lonely"), ["gw"])
    assert found == GatewayCuts({"gw": ["a"]}, {("a", "gw"): ["a"]}, ["lonely", "x", "y", "z"])


def test_no_gateway_at_all() -> None:
    found = gateway_cuts(adjacency(CHAIN), [])
    assert found == GatewayCuts({}, {}, ["a", "b", "c", "gw"])
    assert gateway_cuts({}, ["gw"]) == GatewayCuts({}, {}, [])


def test_gateway_cuts_on_an_induced_subgraph() -> None:
    adj = adjacency([*CHAIN, ("c", "gw2")])
    assert gateway_cuts(adj, ["gw", "gw2"]) == GatewayCuts({}, {}, [])
    # gw2 offline: its gateway role and its edge go with it
    without_gw2 = gateway_cuts(adj, ["gw", "gw2"], {"gw", "a", "b", "c"})
    assert without_gw2 == gateway_cuts(adjacency(CHAIN), ["gw"])
    # b offline: c has no gateway left, gw2 is not one because it is outside `nodes`
    found = gateway_cuts(adj, ["gw", "gw2"], ["gw", "a", "c"])
    assert found == GatewayCuts({"gw": ["a"]}, {("a", "gw"): ["a"]}, ["c"])
    # a gateway unknown to the graph counts for nothing
    assert gateway_cuts(adj, ["nowhere"], ["a", "b"]).unreachable == ["a", "b"]


def test_gateway_cuts_deep_graphs_do_not_hit_the_recursion_limit() -> None:
    names = [f"n{i:05d}" for i in range(20_000)]
    path = nx.path_graph(names)
    assert gateway_cuts(path.adj, [names[0], names[-1]]) == GatewayCuts({}, {}, [])
    short = nx.path_graph(names[:3_000])
    found = gateway_cuts(short.adj, [names[0]])
    assert len(found.node_cuts) == 2_999 and len(found.link_cuts) == 2_999
    assert found.node_cuts[names[1]] == names[2:3_000]


def brute_gateway_cuts(
    graph: nx.Graph, gateways: Collection[str], nodes: Collection[str] | None = None
) -> GatewayCuts:
    """Remove each node and each edge in turn and recompute reachability from scratch."""
    view = graph if nodes is None else graph.subgraph(nodes)

    def reach(g: nx.Graph, gws: Collection[str]) -> set[str]:
        return {n for c in nx.connected_components(g) if not c.isdisjoint(gws) for n in c}

    gws = [g for g in gateways if g in view]
    now = reach(view, gws)
    node_cuts = {}
    for x in sorted(view):
        without = view.copy()
        without.remove_node(x)
        lost = now - {x} - reach(without, [g for g in gws if g != x])
        if lost:
            node_cuts[x] = sorted(lost)
    link_cuts = {}
    for a, b in sorted(tuple(sorted(e)) for e in view.edges):
        without = view.copy()
        without.remove_edge(a, b)
        lost = now - reach(without, gws)
        if lost:
            link_cuts[(a, b)] = sorted(lost)
    return GatewayCuts(node_cuts, link_cuts, sorted(set(view) - now))


def random_mesh(seed: int) -> tuple[nx.Graph, list[str]]:
    """Trees and sparse graphs with a few gateways, some with a gateway-less part."""
    rng = random.Random(seed)
    n = rng.randint(2, 60)
    kind = seed % 3
    if kind == 0:
        graph = nx.random_labeled_tree(n, seed=seed)
    elif kind == 1:
        graph = nx.gnm_random_graph(n, n - 1 + rng.randint(0, 6), seed=seed)
    else:
        graph = nx.random_labeled_tree(n, seed=seed)
        for _ in range(rng.randint(1, 4)):
            graph.add_edge(rng.randrange(n), rng.randrange(n))
        graph.remove_edges_from(nx.selfloop_edges(graph))
        graph.add_edges_from((n + i, n + i + 1) for i in range(rng.randint(0, 4)))
    graph = nx.relabel_nodes(graph, {v: f"n{v:02d}" for v in graph})
    gateways = rng.sample(sorted(graph), min(len(graph), rng.choice([0, 1, 1, 2, 3, 5])))
    return graph, gateways


@pytest.mark.parametrize("seed", range(36))
def test_gateway_cuts_agree_with_brute_force(seed: int) -> None:
    graph, gateways = random_mesh(seed)
    assert gateway_cuts(graph.adj, gateways) == brute_gateway_cuts(graph, gateways)
    rng = random.Random(-seed)
    keep = {n for n in graph if rng.random() < 0.85}  # as offline nodes make
    assert gateway_cuts(graph.adj, gateways, keep) == brute_gateway_cuts(graph, gateways, keep)
