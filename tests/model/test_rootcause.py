"""find_root_causes on small hand-made meshes."""

from __future__ import annotations

import random

from meshmon.model.rootcause import find_root_causes, reach_without


def adjacency(*edges: tuple[str, str]) -> dict[str, set[str]]:
    adj: dict[str, set[str]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    return adj


def test_failed_border_node_is_the_cause_of_everything_behind_it() -> None:
    adj = adjacency(("gw", "a"), ("a", "b"), ("b", "c"), ("b", "d"), ("c", "d"))
    found = find_root_causes(adj, failed={"b", "c"}, gateways=["gw"])
    assert [(p.causes, p.links, p.members) for p in found.parts] == [
        (["b"], [], ["b", "c", "d"])]
    assert found.reach == {"gw", "a"}


def test_two_gateways_keep_a_ring_reachable() -> None:
    adj = adjacency(("gw1", "a"), ("a", "b"), ("b", "gw2"))
    assert find_root_causes(adj, failed={"a"}, gateways=["gw1", "gw2"]).parts[0].members == ["a"]


def test_down_edge_known_only_as_extra_edge_is_the_cause() -> None:
    adj = adjacency(("gw", "a"), ("b", "c"))
    found = find_root_causes(adj, failed=set(), gateways=["gw"],
                             extra_edges=[("a", "b")], down=[("a", "b")])
    assert [(p.causes, p.links, p.members) for p in found.parts] == [
        ([], [("a", "b")], ["b", "c"])]


def test_failed_gateway_is_a_cause_even_at_the_edge_of_nothing() -> None:
    adj = adjacency(("gw", "a"))
    found = find_root_causes(adj, failed={"gw"}, gateways=["gw"])
    assert [(p.causes, p.members) for p in found.parts] == [(["gw"], ["a", "gw"])]


def test_without_gateways_failed_nodes_next_to_live_ones_are_causes() -> None:
    adj = adjacency(("a", "b"), ("b", "c"), ("c", "d"))
    found = find_root_causes(adj, failed={"c", "d"}, gateways=[])
    assert [(p.causes, p.members) for p in found.parts] == [(["c"], ["c", "d"])]


def test_island_without_failures_is_not_a_part() -> None:
    adj = adjacency(("gw", "a"), ("x", "y"))
    assert find_root_causes(adj, failed=set(), gateways=["gw"]).parts == []


def test_taking_new_failures_out_of_the_last_reach_agrees_with_a_full_search() -> None:
    # random meshes (rings with chords, leaves, chains): failures one or a few at a time;
    # whenever `reach_without` answers, the outcome is the full search's
    rng = random.Random(5)
    answered = 0
    for _ in range(40):
        n = rng.randrange(20, 80)
        adj: dict[str, set[str]] = {f"n{i}": set() for i in range(n)}

        edges = [(i, (i + 1) % n) for i in range(n) if rng.random() < 0.7]
        edges += [(i, rng.randrange(n)) for i in range(n) if rng.random() < 0.3]
        for a, b in edges:
            adj[f"n{a}"].add(f"n{b}")
            adj[f"n{b}"].add(f"n{a}")
        gateways = [f"n{i}" for i in rng.sample(range(n), 2)]
        failed: set[str] = set()
        reach = find_root_causes(adj, failed, gateways).reach
        for _ in range(6):
            lost = {f"n{i}" for i in rng.sample(range(n), rng.randrange(1, 3))} - failed
            lost -= set(gateways)
            failed |= lost
            full = find_root_causes(adj, failed, gateways)
            quick = reach_without(reach, lost, adj)
            if quick is not None:
                answered += 1
                assert quick == full.reach
                assert find_root_causes(adj, failed, gateways, reach=quick) == full
            reach = full.reach
    assert answered > 50  # most failures need no search from the gateways
