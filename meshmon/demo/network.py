"""The demo network: a real Freifunk topology shipped as package data (see data/README.md)."""

from __future__ import annotations

import gzip
import heapq
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

DATA_FILE = "freifunk-bremen.json.gz"

LinkType = Literal["wifi", "vpn", "other"]

# Weights for choosing a connected subset: mesh hops are cheap, a VPN hop costs more, so a
# small demo is one or two whole mesh clouds with their uplink rather than a VPN star.
_SUBSET_WEIGHT: dict[str, int] = {"wifi": 1, "other": 1, "vpn": 4}


@dataclass(frozen=True)
class DemoNode:
    """One router (or VPN server) of the snapshot, under a synthetic id."""

    id: str
    hostname: str
    model: str | None
    firmware: str | None
    location: tuple[float, float] | None  # (lat, lon)
    is_gateway: bool  # the snapshot's own flag (Bremen: the VPN servers)
    uplink: bool  # has a VPN link to a gateway (Gluon "uplink node")
    clients: int

    @property
    def gateway(self) -> bool:
        """What the node announces as `gateway` in its info: the snapshot's own flag.

        An uplink node reaches the gateways through its VPN tunnel, a link like any
        other: it is no gateway itself, so losing one is an outage of the nodes behind
        it, not "a gateway is down"."""
        return self.is_gateway


@dataclass(frozen=True)
class DemoLink:
    """One link of the snapshot; tq values are batman-adv's 0–1 from each end."""

    source: str
    target: str
    type: LinkType
    source_tq: float
    target_tq: float


@dataclass
class DemoNetwork:
    """Nodes and links of the demo; `links` only refer to ids in `nodes`."""

    nodes: list[DemoNode]
    links: list[DemoLink]
    source: str = ""
    community: str = ""
    snapshot_time: str | None = None
    _by_id: dict[str, DemoNode] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {n.id: n for n in self.nodes}

    def node(self, node_id: str) -> DemoNode:
        """The node with this id (KeyError if unknown)."""
        return self._by_id[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    def adjacency(self) -> dict[str, list[DemoLink]]:
        """For each node id, the links it is an end of."""
        adj: dict[str, list[DemoLink]] = {n.id: [] for n in self.nodes}
        for link in self.links:
            adj[link.source].append(link)
            adj[link.target].append(link)
        return adj

    def is_connected(self) -> bool:
        """True if every node can reach every other over the links."""
        if not self.nodes:
            return True
        adj = self.adjacency()
        seen = {self.nodes[0].id}
        stack = [self.nodes[0].id]
        while stack:
            here = stack.pop()
            for link in adj[here]:
                other = link.target if link.source == here else link.source
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        return len(seen) == len(self.nodes)

    def subset(self, max_nodes: int) -> DemoNetwork:
        """A connected part of at most `max_nodes` nodes, grown from the best uplink node
        and the gateway its tunnel leads to."""
        if max_nodes >= len(self.nodes):
            return self
        if max_nodes <= 0:
            return DemoNetwork([], [], self.source, self.community, self.snapshot_time)
        adj = self.adjacency()
        starts = _start_nodes(self, adj)
        # Dijkstra order: every node's predecessor on its shortest path comes earlier, so
        # any prefix of the order is connected (the starts are linked to each other).
        dist: dict[str, int] = dict.fromkeys(starts, 0)
        taken: list[str] = []
        done: set[str] = set()
        heap: list[tuple[int, int, str]] = [(0, i, s) for i, s in enumerate(starts)]
        while heap and len(taken) < max_nodes:
            d, _, here = heapq.heappop(heap)
            if here in done:
                continue
            done.add(here)
            taken.append(here)
            for link in adj[here]:
                other = link.target if link.source == here else link.source
                nd = d + _SUBSET_WEIGHT[link.type]
                if other not in done and nd < dist.get(other, 1 << 30):
                    dist[other] = nd
                    heapq.heappush(heap, (nd, len(starts), other))
        keep = set(taken)
        return DemoNetwork(
            nodes=[n for n in self.nodes if n.id in keep],
            links=[lk for lk in self.links if lk.source in keep and lk.target in keep],
            source=self.source,
            community=self.community,
            snapshot_time=self.snapshot_time,
        )


def _start_nodes(net: DemoNetwork, adj: dict[str, list[DemoLink]]) -> list[str]:
    """Where a subset grows from: a gateway, then the uplink node with the largest mesh
    cloud (nodes reachable without VPN; ties: mesh degree) whose tunnel leads to it.
    Without uplink nodes, the gateway with the largest cloud; without gateways, any node."""
    cloud_size: dict[str, int] = {}
    for node in net.nodes:
        if node.id in cloud_size:
            continue
        cloud = {node.id}
        stack = [node.id]
        while stack:
            here = stack.pop()
            for link in adj[here]:
                other = link.target if link.source == here else link.source
                if link.type != "vpn" and other not in cloud:
                    cloud.add(other)
                    stack.append(other)
        for member in cloud:
            cloud_size[member] = len(cloud)

    def best(candidates: list[DemoNode]) -> DemoNode:
        return max(candidates, key=lambda n: (
            cloud_size[n.id], sum(lk.type != "vpn" for lk in adj[n.id]), n.id))

    gateways = {n.id for n in net.nodes if n.gateway}

    def tunnel_end(node: DemoNode) -> str | None:
        ends = sorted(lk.target if lk.source == node.id else lk.source for lk in adj[node.id]
                      if lk.type == "vpn" and {lk.source, lk.target} & gateways)
        return ends[0] if ends else None

    uplinks = [n for n in net.nodes if n.uplink and tunnel_end(n) is not None]
    if uplinks:
        start = best(uplinks)
        gateway = tunnel_end(start)
        assert gateway is not None
        return [gateway, start.id]
    return [best([n for n in net.nodes if n.gateway] or net.nodes).id]


def _node_from_json(d: dict[str, Any]) -> DemoNode:
    loc = d.get("location")
    return DemoNode(
        id=d["id"],
        hostname=d["hostname"],
        model=d.get("model"),
        firmware=d.get("firmware"),
        location=(float(loc["lat"]), float(loc["lon"])) if loc else None,
        is_gateway=bool(d.get("is_gateway")),
        uplink=bool(d.get("uplink")),
        clients=int(d.get("clients") or 0),
    )


def load_network(max_nodes: int | None = None) -> DemoNetwork:
    """The shipped Freifunk Bremen network, or a connected subset of at most `max_nodes`."""
    raw = resources.files("meshmon.demo").joinpath("data", DATA_FILE).read_bytes()
    data = json.loads(gzip.decompress(raw))
    net = DemoNetwork(
        nodes=[_node_from_json(n) for n in data["nodes"]],
        links=[
            DemoLink(lk["source"], lk["target"], lk["type"], float(lk["source_tq"]),
                     float(lk["target_tq"]))
            for lk in data["links"]
        ],
        source=data.get("source", ""),
        community=data.get("community", ""),
        snapshot_time=data.get("snapshot_time"),
    )
    return net if max_nodes is None else net.subset(max_nodes)
