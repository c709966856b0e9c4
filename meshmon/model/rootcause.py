"""Which failures cut which nodes off from every gateway. Pure: plain data in and out.

The known mesh is an adjacency mapping plus extra edges (links that aged out of the live
graph but still say how the mesh was wired). A search from every working gateway,
avoiding failed nodes and down edges, gives the reachable set; the rest falls into parts,
and each part's cause is its failed nodes that touch the reachable mesh (or are
gateways) plus the down edges from the reachable mesh into it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

Edge = tuple[str, str]
"""an undirected edge as (smaller id, larger id)"""


@dataclass(slots=True)
class CutOffPart:
    """One part of the mesh that no gateway reaches."""

    causes: list[str]
    """failed nodes of the part next to the reachable mesh (or gateways), sorted"""
    links: list[Edge]
    """down edges from the reachable mesh into the part, sorted"""
    members: list[str]
    """every node of the part, causes included, sorted"""


@dataclass(slots=True)
class RootCauses:
    parts: list[CutOffPart]
    reach: set[str]
    """nodes a working gateway reaches"""


def find_root_causes(
    adj: Mapping[str, Iterable[str]],
    failed: Collection[str],
    gateways: Collection[str],
    extra_edges: Iterable[Edge] = (),
    down: Collection[Edge] = (),
    reach: set[str] | None = None,
) -> RootCauses:
    """The parts cut off from every gateway and what explains each.

    `down` edges are known but not usable (they should also be among `extra_edges` or in
    `adj`). Without any gateway, every node that has not failed counts as reachable, so
    each failed node next to a live one is a cause. A part with failures but no failure at
    its border (its edges to the rest were forgotten) names all its failed nodes.
    `reach`, when the caller knows it (`reach_without`), saves the search from the
    gateways.
    """
    extra: dict[str, list[str]] = {}
    for a, b in extra_edges:
        extra.setdefault(a, []).append(b)
        extra.setdefault(b, []).append(a)
    down_set = set(down)

    def neighbours(v: str) -> Iterable[str]:
        more = extra.get(v)
        here = adj.get(v, ())
        return here if more is None else [*here, *more]

    def usable(v: str, w: str) -> bool:
        return not down_set or ((v, w) if v < w else (w, v)) not in down_set

    all_nodes = set(adj).union(extra)
    gateway_set = set(gateways)
    if reach is None:
        reach = (_reach({g for g in gateway_set if g not in failed and g in all_nodes},
                        adj, extra, failed, down_set)
                 if gateway_set else {n for n in all_nodes if n not in failed})
    parts: list[CutOffPart] = []
    seen: set[str] = set()
    for start in sorted(all_nodes - reach):
        if start in seen:
            continue
        seen.add(start)
        component = [start]
        stack = [start]
        while stack:
            v = stack.pop()
            for w in neighbours(v):
                if w not in reach and w not in seen and usable(v, w):
                    seen.add(w)
                    component.append(w)
                    stack.append(w)
        members = set(component)
        causes = sorted(
            v for v in component
            if v in failed and (
                v in gateway_set or any(w in reach and usable(v, w) for w in neighbours(v))
            )
        )  # fmt: skip
        links = sorted(
            (a, b) for a, b in down_set
            if (a in members and b in reach) or (b in members and a in reach)
        )  # fmt: skip
        if not causes and not links:
            causes = sorted(v for v in component if v in failed)
        if causes or links:
            parts.append(CutOffPart(causes, links, sorted(component)))
    return RootCauses(parts, reach)


def _reach(
    start: set[str],
    adj: Mapping[str, Iterable[str]],
    extra: Mapping[str, list[str]],
    failed: Collection[str],
    down: set[Edge],
) -> set[str]:
    """Every node reachable from `start` avoiding failed nodes and down edges.

    Layer by layer with set operations (C loops, not one Python step per edge): at
    35,000 nodes this is what an outage waits for, on the event loop."""
    ends_of_down = {v for edge in down for v in edge}
    reach = set(start)
    layer = start
    while layer:
        found: set[str] = set()
        for v in layer:
            if v in ends_of_down:  # rare: check each edge
                found.update(w for w in (*adj.get(v, ()), *extra.get(v, ()))
                             if ((v, w) if v < w else (w, v)) not in down)
                continue
            found.update(adj.get(v, ()))
            more = extra.get(v)
            if more:
                found.update(more)
        # (`difference` walks the smaller side; `-=` would walk all of `reach` each layer)
        found = found.difference(reach)
        if failed:
            found = found.difference(failed)
        reach |= found
        layer = found
    return reach


def reach_without(
    reach: set[str],
    lost: Collection[str],
    adj: Mapping[str, Iterable[str]],
    down: Collection[Edge] = (),
    limit: int = 2000,
) -> set[str] | None:
    """What stays reachable when the nodes `lost` (reachable before) fail, if that can be
    told without a search from the gateways: when each one's reachable neighbours still
    reach each other around the failures (a leaf, or a node on a loop), every path through
    it has a way round, so only the lost nodes leave. None when a search of at most
    `limit` nodes cannot show that, or two lost nodes are neighbours (they may cut
    others off: search from the gateways)."""
    down_set = set(down)
    after = reach.difference(lost)
    for node in lost:
        if any(w in lost for w in adj.get(node, ())):
            return None  # a path may run through several of them: no way round to see
        ends = [w for w in adj.get(node, ()) if w in after
                and ((node, w) if node < w else (w, node)) not in down_set]
        if len(ends) < 2:
            continue
        todo = set(ends[1:])
        seen = {ends[0]}
        queue = deque([ends[0]])
        while queue and todo:
            if len(seen) > limit:
                return None
            v = queue.popleft()
            for w in adj.get(v, ()):
                if w in seen or w not in after or (
                        down_set and ((v, w) if v < w else (w, v)) in down_set):
                    continue
                seen.add(w)
                todo.discard(w)
                queue.append(w)
        if todo:
            return None
    return after
