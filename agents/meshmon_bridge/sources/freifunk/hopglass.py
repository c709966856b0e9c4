"""hopglass-server's `nodes.json` + `graph.json` (and ffmap-backend's older ones) → `Snapshot`.

nodes.json (version 2: `nodes` is a list; version 1: an object keyed by node id): each
node has `nodeinfo` (respondd's: `node_id` (a MAC, private), `hostname`, `hardware.model`,
`software.firmware`, `location`, `network.mac` and `network.mesh.*.interfaces.*` MACs),
`flags.online` / `flags.gateway`, `statistics` (`uptime` in seconds, `loadavg`,
`rootfs_usage` 0–1, `clients` as a number or `{total}`, `gateway`), `lastseen`, `firstseen`.

graph.json: `batadv.nodes[i] = {id: interface MAC, node_id}` and `batadv.links` with
`source`/`target` indexes, `tq` as hopglass-server writes it (255 / batman-adv TQ, so 1 is
perfect) and `type` (`wireless`, `tunnel`, `fastd`, `l2tp`, `other`) or `vpn: true`.
hopglass-server emits one entry per direction: the target is the node that measured the TQ
of its neighbour, the source. An entry with `bidirect: true` (ffmap-backend) stands for
both directions with the same TQ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshmon_bridge.sources.freifunk.formats import not_a
from meshmon_bridge.sources.freifunk.snapshot import (
    TQ_MAX,
    LinkEnd,
    MapLink,
    MapNode,
    Snapshot,
    as_dict,
    firmware_of,
    location,
    mark_uplinks,
    medium_of,
    merge_directions,
    normal_mac,
    number,
    parse_time,
    snapshot_time,
    text,
)


def parse(nodes_doc: Any, graph_doc: Any, where: str, now: float) -> Snapshot:
    """nodes.json and graph.json as one `Snapshot`; SourceError if they are not those."""
    raw_nodes = nodes_doc.get("nodes") if isinstance(nodes_doc, dict) else None
    if isinstance(raw_nodes, dict):  # version 1: keyed by node id
        raw_nodes = list(raw_nodes.values())
    if not isinstance(raw_nodes, list):
        raise not_a("hopglass-nodes", where, nodes_doc, "no `nodes`")
    batadv = graph_doc.get("batadv") if isinstance(graph_doc, dict) else None
    if not isinstance(batadv, dict) or not isinstance(batadv.get("links"), list) \
            or not isinstance(batadv.get("nodes"), list):
        raise not_a("hopglass-graph", where, graph_doc, "no `batadv` nodes and links")
    nodes = {n.key: n for n in (_node(raw) for raw in raw_nodes) if n is not None}
    if raw_nodes and not nodes:
        raise not_a("hopglass-nodes", where, nodes_doc, "no node has `nodeinfo.node_id`")
    time = snapshot_time(parse_time(nodes_doc.get("timestamp")), nodes.values()) or now
    mac_owner = {mac: n.key for n in nodes.values() for mac in n.macs}
    ends = [_graph_node(raw, nodes, mac_owner) for raw in batadv["nodes"]]

    def end(ref: Any) -> str | None:
        # an index into the graph's nodes (hopglass), or a node id / MAC (some exports)
        if isinstance(ref, str):
            return _graph_node({"node_id": ref, "id": ref}, nodes, mac_owner)
        if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(ends):
            return None
        return ends[ref]

    links = []
    for raw in batadv["links"]:
        links += _links(raw, end)
    links = merge_directions(links)
    mark_uplinks(nodes, links)
    return Snapshot(nodes=list(nodes.values()), links=links, time=time)


def _node(raw: Any) -> MapNode | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("nodeinfo"), dict):
        return None
    info = raw["nodeinfo"]
    key = text(info.get("node_id"))
    if key is None:
        return None
    flags = as_dict(raw.get("flags"))
    stats = as_dict(raw.get("statistics"))
    loc = as_dict(info.get("location"))
    hardware = as_dict(info.get("hardware"))
    software = as_dict(info.get("software"))
    clients = stats.get("clients")
    if isinstance(clients, dict):
        clients = clients.get("total")
    rootfs = number(stats.get("rootfs_usage"))
    online = flags.get("online")
    return MapNode(
        key=key,
        hostname=text(info.get("hostname")),
        model=text(hardware.get("model")),
        firmware=firmware_of(software.get("firmware")),
        location=location(loc.get("latitude"), loc.get("longitude")),
        online=online if isinstance(online, bool) else None,
        last_seen=parse_time(raw.get("lastseen")),
        first_seen=parse_time(raw.get("firstseen")),
        server=flags.get("gateway") is True or info.get("vpn") is True,
        uptime_s=number(stats.get("uptime")),
        load=number(stats.get("loadavg")),
        rootfs_used_pct=rootfs * 100 if rootfs is not None else None,
        clients=int(c) if (c := number(clients)) is not None else None,
        macs=_macs(info),
    )


def _macs(nodeinfo: dict[str, Any]) -> list[str]:
    network = as_dict(nodeinfo.get("network"))
    found = [network.get("mac")]
    mesh = as_dict(network.get("mesh"))
    for bat in mesh.values():
        for macs in as_dict(as_dict(bat).get("interfaces")).values():
            if isinstance(macs, list):
                found += macs
    return [m for m in dict.fromkeys(normal_mac(v) for v in found) if m is not None]


def _graph_node(raw: Any, nodes: dict[str, MapNode], mac_owner: dict[str, str]) -> str | None:
    """The node key a graph node stands for: its node, the node owning its MAC, else its
    own id (a MAC stays a MAC for the collector; another id, such as an OLSR network's
    IP address, is never published: the neighbour gets an id by the hostname rule)."""
    if not isinstance(raw, dict):
        return None
    node_id, raw_id = text(raw.get("node_id")), text(raw.get("id"))
    if node_id is not None and node_id in nodes:
        return node_id
    mac = normal_mac(raw_id)
    if mac is not None:
        return mac_owner.get(mac, mac)
    return node_id or raw_id


def _links(raw: Any, end: Callable[[Any], str | None]) -> list[MapLink]:
    if not isinstance(raw, dict):
        return []
    source, target = end(raw.get("source")), end(raw.get("target"))
    if source is None or target is None or source == target:
        return []
    medium = "vpn" if raw.get("vpn") is True else medium_of(raw.get("type"))
    vpn = medium == "vpn"
    view = LinkEnd(tq=_tq(raw.get("tq")))
    # the target measured the TQ of its neighbour, the source: it is the target's view
    link = MapLink(source=target, target=source, kind="vpn" if vpn else "batman",
                   medium=medium, source_view=view, target_view=None)
    if raw.get("bidirect") is True:
        link.target_view = LinkEnd(tq=view.tq)
    return [link]


def _tq(value: Any) -> int | None:
    inverse = number(value)
    if inverse is None or inverse <= 0:
        return None
    return max(0, min(TQ_MAX, round(TQ_MAX / max(inverse, 1.0))))
