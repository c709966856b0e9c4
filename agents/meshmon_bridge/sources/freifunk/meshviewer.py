"""yanic's `meshviewer.json` (the ffrgb/freifunk meshviewer format) → `Snapshot`.

Nodes: `node_id` (a MAC, private), `hostname`, `model`, `firmware.release|base`,
`location.latitude|longitude`, `is_online`, `is_gateway`, `lastseen`, `firstseen`,
`uptime` (the boot time), `loadavg`, `rootfs_usage` (0–1), `clients`, `mac`, `macs`,
`gateway`/`gateway6` (the node id of the batman-adv gateway it selected).
Links: `source`, `target` (node ids), `type` (wifi / vpn / other; the frontend also
draws `wifi24`/`wifi5`, other generators write tunnel kinds), `source_tq` (the
source's view of the target, 0–1) and `target_tq`; `source_addr`/`target_addr` are the
interface MACs (kept only for peer resolution).

Gateways: a node is a gateway (`info.gateway`) when yanic says so (`is_gateway`, from
the node's `nodeinfo.vpn`: a VPN server) or when another node selected it as its
batman-adv gateway. A node with a `vpn` link to such a gateway (Gluon's uplink node) is
no gateway: it gets the `uplink` tag.
"""

from __future__ import annotations

from typing import Any

from meshmon_bridge.sources.freifunk.formats import not_a
from meshmon_bridge.sources.freifunk.snapshot import (
    LinkEnd,
    MapLink,
    MapNode,
    Snapshot,
    as_dict,
    firmware_of,
    location,
    mark_uplinks,
    medium_of,
    normal_mac,
    number,
    parse_time,
    snapshot_time,
    text,
    tq_from_fraction,
    uptime_from_boot,
)


def parse(data: Any, where: str, now: float) -> Snapshot:
    """A meshviewer.json document as a `Snapshot`; SourceError if it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise not_a("meshviewer", where, data, "no `nodes` list")
    raw_links = data.get("links")
    if not isinstance(raw_links, list):
        raise not_a("meshviewer", where, data, "no `links` list")
    booted = [found for found in (_node(raw) for raw in data["nodes"]) if found is not None]
    by_key = {node.key: node for node, _ in booted}
    if data["nodes"] and not by_key:
        raise not_a("meshviewer", where, data, "no node has a `node_id`")
    meta = as_dict(data.get("meta"))
    declared = parse_time(data.get("timestamp")) or parse_time(meta.get("timestamp"))
    time = snapshot_time(declared, by_key.values()) or now
    for node, boot in booted:  # meshviewer's `uptime` is the boot time (yanic: now − uptime)
        node.uptime_s = uptime_from_boot(boot, time)
    links = [lk for lk in (_link(raw, by_key) for raw in raw_links) if lk is not None]
    _mark_gateways(data["nodes"], by_key, links)
    return Snapshot(nodes=list(by_key.values()), links=links, time=time)


def _node(raw: Any) -> tuple[MapNode, float | None] | None:
    """The node and its boot time."""
    if not isinstance(raw, dict):
        return None
    key = text(raw.get("node_id"))
    if key is None:
        return None
    loc = as_dict(raw.get("location"))
    online = raw.get("is_online")
    clients = number(raw.get("clients"))
    rootfs = number(raw.get("rootfs_usage"))
    extra_macs = raw.get("macs")
    macs = [raw.get("mac"), *(extra_macs if isinstance(extra_macs, list) else [])]
    node = MapNode(
        key=key,
        hostname=text(raw.get("hostname")),
        model=text(raw.get("model")),
        firmware=firmware_of(raw.get("firmware")),
        location=location(loc.get("latitude"), loc.get("longitude")),
        online=online if isinstance(online, bool) else None,
        last_seen=parse_time(raw.get("lastseen")),
        first_seen=parse_time(raw.get("firstseen")),
        server=raw.get("is_gateway") is True,
        load=number(raw.get("loadavg")),
        rootfs_used_pct=rootfs * 100 if rootfs is not None else None,
        clients=int(clients) if clients is not None else None,
        macs=[m for m in (normal_mac(v) for v in macs) if m is not None],
    )
    return node, parse_time(raw.get("uptime"))


def _link(raw: Any, by_key: dict[str, MapNode]) -> MapLink | None:
    if not isinstance(raw, dict):
        return None
    source, target = raw.get("source"), raw.get("target")
    if not isinstance(source, str) or not isinstance(target, str) or source == target:
        return None
    medium = medium_of(raw.get("type"))
    for key, addr in ((source, raw.get("source_addr")), (target, raw.get("target_addr"))):
        mac = normal_mac(addr)
        if key in by_key and mac is not None and mac not in by_key[key].macs:
            by_key[key].macs.append(mac)
    return MapLink(
        source=source, target=target,
        kind="vpn" if medium == "vpn" else "batman", medium=medium,
        source_view=LinkEnd(tq=tq_from_fraction(raw.get("source_tq"))),
        target_view=LinkEnd(tq=tq_from_fraction(raw.get("target_tq"))),
    )


def _mark_gateways(raw_nodes: list[Any], by_key: dict[str, MapNode], links: list[MapLink]
                   ) -> None:
    mac_owner = {mac: n.key for n in by_key.values() for mac in n.macs}
    for raw in raw_nodes:
        if not isinstance(raw, dict):
            continue
        for name in ("gateway", "gateway6"):
            ref = raw.get(name)
            if not isinstance(ref, str):
                continue
            owner = ref if ref in by_key else mac_owner.get(normal_mac(ref) or "")
            if owner is not None and owner != raw.get("node_id"):
                by_key[owner].server = True
    mark_uplinks(by_key, links)
