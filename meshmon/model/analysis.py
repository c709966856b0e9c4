"""Weak points of the mesh: components, articulation points and bridges in one DFS.

Pure functions over an adjacency mapping (a networkx `Graph.adj` works as is). One
iterative Tarjan pass gives all three; networkx needs three passes for the same answer
(connected components, articulation points, biconnected components for the bridges) and
takes about twice as long at 35,000 nodes / 100,000 edges (see `bench/analysis.py`).
`gateway_cuts` runs the same kind of DFS from a virtual root joined to every gateway, to
find which nodes lose all their gateways when one node or one link fails.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class Analysis:
    """The shape of the online network and its single points of failure."""

    components: list[list[str]] = field(default_factory=list)
    """connected components of the online network, largest first, members sorted"""
    gateways: list[str] = field(default_factory=list)
    """online nodes whose info says they have an uplink"""
    reach_gateway: set[str] = field(default_factory=set)
    """online nodes in a component that has an online gateway"""
    articulation_points: list[str] = field(default_factory=list)
    """nodes whose loss splits their component"""
    bridges: list[tuple[str, str]] = field(default_factory=list)
    """edges whose loss splits their component, each as (smaller id, larger id)"""
    duration_ms: float = 0.0
    """time analyse() took"""


@dataclass(slots=True)
class GatewayCuts:
    """Who loses every gateway when one node or one link fails."""

    node_cuts: dict[str, list[str]]
    """failing node → sorted nodes (not itself) that then reach no gateway; only non-empty"""
    link_cuts: dict[tuple[str, str], list[str]]
    """failing edge (smaller id, larger id) → sorted nodes that then reach no gateway"""
    unreachable: list[str]
    """sorted nodes that reach no gateway even with nothing failed"""


@dataclass(slots=True)
class WeakPoints:
    """What one DFS over a graph finds."""

    components: list[list[str]]
    articulation_points: list[str]
    bridges: list[tuple[str, str]]


def weak_points(
    adj: Mapping[str, Iterable[str]], nodes: Collection[str] | None = None
) -> WeakPoints:
    """Components, articulation points and bridges of the subgraph induced by `nodes`.

    `adj` maps each node to its neighbours (a simple undirected graph: no parallel edges,
    each edge listed at both ends). `nodes=None` means every node of `adj`; otherwise
    nodes outside `nodes` and their edges are ignored. Results are sorted, so equal
    graphs give equal answers.
    """
    keep: Collection[str] = adj.keys() if nodes is None else nodes
    filtered = nodes is not None
    disc: dict[str, int] = {}
    low: dict[str, int] = {}
    cut: set[str] = set()
    bridges: list[tuple[str, str]] = []
    components: list[list[str]] = []
    clock = 0
    for root in keep:
        if root in disc or root not in adj:
            continue
        disc[root] = low[root] = clock
        clock += 1
        component = [root]
        root_children = 0
        # frames of (node, its DFS parent, iterator over its remaining neighbours)
        stack: list[tuple[str, str | None, Iterable[str]]] = [(root, None, iter(adj[root]))]
        while stack:
            v, parent, it = stack[-1]
            for w in it:
                if filtered and w not in keep:
                    continue
                dw = disc.get(w)
                if dw is None:
                    disc[w] = low[w] = clock
                    clock += 1
                    component.append(w)
                    stack.append((w, v, iter(adj[w])))
                    break
                if w != parent and dw < low[v]:
                    low[v] = dw
            else:
                stack.pop()
                if parent is None:
                    continue
                lv = low[v]
                if lv < low[parent]:
                    low[parent] = lv
                if parent == root:
                    root_children += 1
                elif lv >= disc[parent]:
                    cut.add(parent)
                if lv > disc[parent]:
                    bridges.append((parent, v) if parent < v else (v, parent))
        if root_children >= 2:
            cut.add(root)
        component.sort()
        components.append(component)
    components.sort(key=lambda c: (-len(c), c[0]))
    bridges.sort()
    return WeakPoints(components, sorted(cut), bridges)


def gateway_cuts(
    adj: Mapping[str, Iterable[str]],
    gateways: Iterable[str],
    nodes: Collection[str] | None = None,
) -> GatewayCuts:
    """Nodes cut off from every gateway by the failure of each node and each edge.

    The graph is the subgraph of `adj` induced by `nodes`, as in `weak_points`; gateways
    outside it do not count. A failing gateway stops being a gateway. Linear in the graph
    plus the size of the answer (a long chain hanging off one gateway has a quadratic one).
    """
    keep: Collection[str] = adj.keys() if nodes is None else nodes
    filtered = nodes is not None
    roots = [g for g in dict.fromkeys(gateways) if g in adj and (not filtered or g in keep)]
    is_gateway = set(roots)
    # A virtual root S (disc 0) is joined to every gateway, so "reaches a gateway" becomes
    # "is connected to S" and the answers are S's component's articulation points and
    # bridges. Each gateway not entered from S has a back edge to S, i.e. low = 0: two
    # gateways in one component never cut each other off. A gateway X removed with its
    # S–X edge cuts off exactly the child subtrees of X with low ≥ disc[X], as any other X.
    disc: dict[str, int] = {}
    low: dict[str, int] = {}
    order: list[str] = [""]  # preorder, order[disc[v]] == v; index 0 stands for S
    node_ranges: dict[str, list[tuple[int, int]]] = {}
    link_ranges: list[tuple[tuple[str, str], int, int]] = []
    clock = 1
    for root in roots:  # the tree edges S–root
        if root in disc:
            continue
        disc[root] = low[root] = clock
        clock += 1
        order.append(root)
        stack: list[tuple[str, str | None, Iterable[str]]] = [(root, None, iter(adj[root]))]
        while stack:
            v, parent, it = stack[-1]
            for w in it:
                if filtered and w not in keep:
                    continue
                dw = disc.get(w)
                if dw is None:
                    disc[w] = clock
                    low[w] = 0 if w in is_gateway else clock
                    clock += 1
                    order.append(w)
                    stack.append((w, v, iter(adj[w])))
                    break
                if w != parent and dw < low[v]:
                    low[v] = dw
            else:
                stack.pop()
                if parent is None:
                    continue
                lv = low[v]
                if lv < low[parent]:
                    low[parent] = lv
                dp = disc[parent]
                if lv >= dp:
                    # v's subtree is order[disc[v]:clock] and hangs on parent alone
                    span = (disc[v], clock)
                    ranges = node_ranges.get(parent)
                    if ranges is None:
                        node_ranges[parent] = [span]
                    else:
                        ranges.append(span)
                    if lv > dp:
                        edge = (parent, v) if parent < v else (v, parent)
                        link_ranges.append((edge, *span))
    node_cuts: dict[str, list[str]] = {}
    for x in sorted(node_ranges):
        cut = [n for start, end in node_ranges[x] for n in order[start:end]]
        cut.sort()
        node_cuts[x] = cut
    link_ranges.sort()
    link_cuts = {edge: sorted(order[start:end]) for edge, start, end in link_ranges}
    unreachable = sorted({n for n in keep if n not in disc and n in adj})
    return GatewayCuts(node_cuts, link_cuts, unreachable)
