"""A community's public map alone is enough to find an outage and its cause: a sequence of
meshviewer snapshots is imported by a real `meshmon-bridge` process, published through a
real Mosquitto to a collector, and when a backbone node goes offline in the map (with the
nodes behind it), maintainers get exactly one outage alert naming it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import networkx as nx
from meshmon_bridge.sources.freifunk import meshviewer

from tests import servers
from tests.bridge.ff_helpers import (
    load_snapshot,
    meshviewer_bridge_config,
    next_snapshot,
    write_atomically,
)
from tests.bridge.helpers import start_bridge
from tests.integration.harness import collector_with_webhook, eventually, get_json
from tests.integration.scripted_mesh import WebhookReceiver

INTERVAL_S = 2


def leipzig_online_part() -> tuple[dict[str, Any], str, set[str]]:
    """Leipzig's snapshot cut to its largest part of online nodes; the node whose loss cuts
    most nodes off every gateway, and those nodes (by snapshot node id)."""
    snap = load_snapshot("leipzig")
    parsed = meshviewer.parse(snap, "leipzig", time.time())
    online = {n.key for n in parsed.nodes if n.online}
    graph: nx.Graph[str] = nx.Graph()
    graph.add_edges_from((lk.source, lk.target) for lk in parsed.links
                         if lk.source in online and lk.target in online)
    part = max(nx.connected_components(graph), key=len)
    gateways = {n.key for n in parsed.nodes if n.gateway} & part
    best: tuple[str, set[str]] = ("", set())
    for node in sorted(nx.articulation_points(graph.subgraph(part))):
        rest = graph.subgraph(part - {node})
        reached = set().union(*(c for c in nx.connected_components(rest) if c & gateways))
        behind = part - {node} - reached
        if len(behind) > len(best[1]):
            best = (node, behind)
    snap["nodes"] = [n for n in snap["nodes"] if n["node_id"] in part]
    snap["links"] = [lk for lk in snap["links"] if lk["source"] in part and lk["target"] in part]
    return snap, best[0], best[1]


async def test_backbone_node_offline_in_the_map_is_one_outage_naming_it(
        tmp_path: Path, mosquitto: servers.Server) -> None:
    snap, backbone, behind = leipzig_online_part()
    assert len(snap["nodes"]) == 144 and len(behind) == 28
    names = {n["node_id"]: n["hostname"] for n in snap["nodes"]}
    map_file = tmp_path / "meshviewer.json"
    write_atomically(map_file, snap)

    hook = WebhookReceiver()
    await hook.start()
    service = await collector_with_webhook(tmp_path, mosquitto.port, hook.url)
    config = meshviewer_bridge_config(tmp_path / "bridge.toml", "ff-map", mosquitto.port,
                                      map_file, INTERVAL_S)
    bridge = start_bridge(config, tmp_path / "bridge.log")
    try:
        async def all_online() -> bool:
            nodes = service.topology.nodes
            return sum(n.online for n in nodes.values()) == len(snap["nodes"])

        await eventually(all_online, 30, "every node of the map online in the collector")
        ids = {n.info.hostname: n.id for n in service.topology.nodes.values() if n.info}
        backbone_id = ids[names[backbone]]
        assert backbone_id == "143-123-alix"

        # the next map: the backbone node and everything behind it are gone
        write_atomically(map_file, next_snapshot(snap, {backbone, *behind}))

        async def fired() -> bool:
            return len(hook.of("outage", "firing")) >= 1

        await eventually(fired, 20, "an outage alert")
        await asyncio.sleep(2 * INTERVAL_S + 1)  # nothing else may follow
        alerts = hook.of("outage")
        assert len(alerts) == 1, alerts
        assert alerts[0]["cause"] == {"nodes": [backbone_id], "links": []}
        assert set(alerts[0]["affected"]) == {ids[names[k]] for k in behind}
        outages = (await get_json(f"{service.http_url}/api/v1/outages"))["body"]["outages"]
        assert [o["cause"]["nodes"] for o in outages] == [[backbone_id]]
    finally:
        bridge.terminate()
        bridge.wait(10)
        await service.stop()
        await hook.stop()
