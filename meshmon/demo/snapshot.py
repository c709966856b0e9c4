"""`meshmon demo --snapshot FILE`: a community's own map file as the demo network.

FILE is a yanic `meshviewer.json`, or a hopglass `nodes.json` with its `graph.json` next
to it (or a folder holding either; gzipped files work too). It is read with the bridge's
own parsers (`meshmon_bridge.sources.freifunk`), so nodes get public ids by the bridge's
rule (docs/freifunk.md: never a MAC; tags unkeyed), hostnames lose the MAC and IP
addresses in them (a hostname that was only an address becomes the node id), and only the
largest connected part is kept, so the simulated mesh is connected.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import networkx as nx
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.freifunk import hopglass, meshviewer
from meshmon_bridge.sources.freifunk.fetch import load_json_file
from meshmon_bridge.sources.freifunk.node_ids import Candidate, PublicIds, without_addresses
from meshmon_bridge.sources.freifunk.snapshot import TQ_MAX, Snapshot

from meshmon.demo.network import DemoLink, DemoNetwork, DemoNode, LinkType

MEDIUMS: dict[str, LinkType] = {"wifi": "wifi", "vpn": "vpn", "other": "other"}


class SnapshotError(ValueError):
    """A file the demo cannot play; the message says which and why."""


def read_snapshot(path: Path) -> Snapshot:
    """The map file(s) at `path` as a snapshot (meshviewer or hopglass, by content)."""
    if path.is_dir():
        found = [p for p in (path / "meshviewer.json", path / "nodes.json") if p.exists()]
        if not found:
            raise SnapshotError(f"{path}: holds no meshviewer.json or nodes.json")
        path = found[0]
    try:
        doc = load_json_file(path)
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        if isinstance(doc, dict) and isinstance(doc.get("links"), list):
            return meshviewer.parse(doc, str(path), time.time())
        if nodes is not None:
            graph = path.with_name("graph.json")
            if not graph.exists():
                raise SnapshotError(f"{path}: a hopglass nodes.json needs {graph} next to it")
            return hopglass.parse(doc, load_json_file(graph), str(path), time.time())
    except SourceError as exc:
        raise SnapshotError(str(exc)) from None
    raise SnapshotError(f"{path}: neither a meshviewer.json nor a hopglass nodes.json")


def network_from_snapshot(path: Path) -> DemoNetwork:
    """The largest connected part of a community's map file as a demo network."""
    snap = read_snapshot(path)
    nodes = {n.key: n for n in snap.nodes}
    ids = PublicIds().assign(Candidate(n.key, n.hostname, n.first_seen) for n in snap.nodes)
    links = [lk for lk in snap.links if lk.source in nodes and lk.target in nodes]
    graph: nx.Graph[str] = nx.Graph()
    graph.add_edges_from((lk.source, lk.target) for lk in links)
    if graph.number_of_nodes() == 0:
        raise SnapshotError(f"{path}: no links between its nodes: nothing to simulate")
    keep = max(nx.connected_components(graph), key=len)
    order = sorted(keep, key=lambda k: ids[k])
    demo_nodes = [_node(nodes[k], ids[k]) for k in order]
    demo_links = [DemoLink(ids[lk.source], ids[lk.target], MEDIUMS.get(lk.medium, "other"),
                           _fraction(lk.source_view), _fraction(lk.target_view))
                  for lk in links if lk.source in keep]
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snap.time))
    return DemoNetwork(demo_nodes, demo_links, source=str(path), community=path.name.split(".")[0],
                       snapshot_time=when)


def _node(node: Any, node_id: str) -> DemoNode:
    return DemoNode(
        id=node_id,
        hostname=without_addresses(node.hostname or "") or node_id,
        model=node.model,
        firmware=node.firmware,
        location=node.location,
        is_gateway=node.server,
        uplink=node.uplink and not node.server,
        clients=node.clients or 0,
    )


def _fraction(view: Any) -> float:
    tq = view.tq if view is not None else None
    return round(tq / TQ_MAX, 4) if tq is not None else 0.0
