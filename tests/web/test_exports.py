"""`/data/meshviewer.json` and `/data/nodelist.json`: every field the meshviewer frontend
reads is there with the type it expects, nothing private leaks, and the export imports
back through the bridge's own meshviewer import as the network the collector knows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from meshmon_bridge.sources.freifunk.mapfiles import MeshviewerSource, MeshviewerTable
from meshmon_bridge.sources.freifunk.snapshot import parse_time

from meshmon.model import wire
from meshmon.model.core import Core
from meshmon.model.topology import Topology
from meshmon.web.exports import meshviewer_document, nodelist_document
from meshmon.web.public import dump
from tests.bridge.ff_helpers import ID_KEY, context, published, snapshot_file
from tests.web.conftest import NOW, SECRETS, Served
from tests.web.privacy import leaks

NUMBER = (int, float)
# Every node field the freifunk/meshviewer frontend reads (github.com/freifunk/meshviewer,
# lib/), with the JSON type it needs and where it reads it. Required ones must be there:
# the frontend calls methods on them.
NODE_FIELDS: dict[str, tuple[type | tuple[type, ...], bool, str]] = {
    "node_id": (str, True, "main.ts: nodeDict[node.node_id]; router links"),
    "hostname": (str, True, "infobox/node.ts: hostname.replace(); nodelist.ts: localeCompare"),
    "is_online": (bool, True, "main.ts: online/offline split; utils/node.ts showStatus"),
    "is_gateway": (bool, True, "utils/node.ts showGateway; forcegraph/draw.ts drawNode"),
    "firstseen": (str, True, "main.ts: moment.utc(firstseen); helper.limit (new nodes)"),
    "lastseen": (str, True, "main.ts: moment.utc(lastseen); showStatus; labellayer lost"),
    "clients": (int, True, "utils/node.ts showClients; helper.positionClients"),
    "clients_wifi24": (int, True, "showClients; positionClients"),
    "clients_wifi5": (int, True, "showClients; positionClients"),
    "clients_other": (int, True, "showClients"),
    "loadavg": (NUMBER, True, "utils/node.ts showLoad: loadavg.toFixed(2)"),
    "nproc": (int, True, "showLoad: loadavg / nproc"),
    "rootfs_usage": (NUMBER, True, "yanic writes it always (not drawn by meshviewer)"),
    "firmware": (dict, True, "showFirmware: dictGet(firmware.release/base); proportions"),
    "autoupdater": (dict, True, "proportions.ts: autoDict d.enabled; showAutoupdate"),
    "addresses": (list, True, "utils/node.ts showIPs: addresses.sort()"),
    "mac": (str, True, "config_default.ts nodeAttr `mac` (node.primaryMac)"),
    "memory_usage": (NUMBER, False, "showRAM: memory_usage * 100"),
    "uptime": (str, False, "nodelist.ts: new Date(node.uptime); showUptime"),
    "location": (dict, False, "helper.hasLocation; labellayer.ts markers; main.ts latlngs"),
    "model": (str, False, "proportions.ts hwDict; infobox/node.ts device pictures"),
    "gateway": (str, False, "infobox/node.ts showGateway nodeIdLink; proportions"),
    "gateway_nexthop": (str, False, "infobox/node.ts showGateway"),
    "gateway6": (str, False, "infobox/node.ts showGateway; proportions"),
    "domain": (str, False, "utils/node.ts showDomain; proportions domainDict"),
}
LINK_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "type": (str, "linklist.ts / labellayer.ts: type.indexOf('wifi'|'vpn')"),
    "source": (str, "main.ts: nodeDict[link.source]"),
    "target": (str, "main.ts: nodeDict[link.target]"),
    "source_tq": (NUMBER, "helper.showTq; linkScale((source_tq + target_tq) / 2)"),
    "target_tq": (NUMBER, "helper.showTq; linkScale"),
    "source_addr": (str, "infobox/link.ts {SOURCE_ADDR} / {SOURCE_MAC}"),
    "target_addr": (str, "infobox/link.ts {TARGET_ADDR} / {TARGET_MAC}"),
}


def check_meshviewer_shape(doc: dict[str, Any]) -> None:
    """Fail with the field and where the frontend reads it if the export would break it."""
    assert parse_time(doc["timestamp"]) is not None
    ids = set()
    for node in doc["nodes"]:
        for name, (kind, required, where) in NODE_FIELDS.items():
            if name not in node:
                assert not required, f"node {node.get('node_id')}: no {name} ({where})"
                continue
            assert isinstance(node[name], kind), f"{name}: {node[name]!r} ({where})"
        assert parse_time(node["firstseen"]) and parse_time(node["lastseen"])
        assert isinstance(node["autoupdater"].get("enabled"), bool)
        if "location" in node:
            assert isinstance(node["location"]["latitude"], NUMBER)
            assert isinstance(node["location"]["longitude"], NUMBER)
        if "uptime" in node:
            assert parse_time(node["uptime"]) is not None
        ids.add(node["node_id"])
    assert len(ids) == len(doc["nodes"])
    for link in doc["links"]:
        for name, (kind, where) in LINK_FIELDS.items():
            assert isinstance(link.get(name), kind), f"link {name}: {link.get(name)!r} ({where})"
        assert link["source"] in ids and link["target"] in ids
        assert 0 <= link["source_tq"] <= 1 and 0 <= link["target_tq"] <= 1
        assert link["type"] in ("wifi", "vpn", "other")


def feed_core(messages: list[wire.Message], now: float) -> Core:
    """A core after the published messages (infos first, as retained ones arrive);
    through `Core.apply`, the collector's own entry point."""
    core = Core()
    for m in messages:
        if isinstance(m, wire.Info):
            core.apply(m, now)
    for m in messages:
        if isinstance(m, wire.Status | wire.Report):
            core.apply(m, now)
    return core


def feed(messages: list[wire.Message], now: float) -> Topology:
    """The topology of `feed_core`."""
    return feed_core(messages, now).topology


def link_tqs(topology: Topology) -> dict[tuple[str, str, str], list[int | None]]:
    """(src, dst, kind) → the TQs of those links, sorted."""
    out: dict[tuple[str, str, str], list[int | None]] = {}
    for key, state in topology.links.items():
        out.setdefault((key.src, key.peer, key.kind), []).append(state.sample.tq)
    return {k: sorted(v, key=lambda x: -1 if x is None else x) for k, v in out.items()}


def imported(path: Path) -> tuple[MeshviewerSource, list[wire.Message]]:
    table = MeshviewerTable(url=str(path), id_key=ID_KEY)
    source = MeshviewerSource(table, context(path.parent), [str(path)])
    return source, published("meshviewer", asyncio.run(source.poll()))


def test_export_of_a_community_has_every_field_and_imports_back(tmp_path: Path) -> None:
    _, messages = imported(snapshot_file("cologne-bonn-area"))
    now = time.time()
    topology = feed(messages, now)
    doc = meshviewer_document(topology, 0.01, now)
    check_meshviewer_shape(doc)
    assert len(doc["nodes"]) == 310 and len(doc["links"]) == 777  # as many as the source
    assert leaks(doc) == []

    path = tmp_path / "meshviewer.json"
    path.write_bytes(dump(doc))
    _, again = imported(path)
    again_topology = feed(again, now)
    assert set(again_topology.nodes) == set(topology.nodes)  # our ids are kept as they are
    for nid, node in topology.nodes.items():
        back = again_topology.nodes[nid]
        assert back.online is node.online, nid
        assert node.info is not None and back.info is not None
        assert back.info.gateway is node.info.gateway
        assert back.info.location == node.info.location
        assert back.info.macs == []  # the export has none
    # meshviewer has no interface names: two links of one kind between the same pair come
    # back with the same TQs, maybe under each other's interface label
    assert link_tqs(again_topology) == link_tqs(topology)
    assert dump(meshviewer_document(again_topology, 0.01, now)) == dump(doc)


async def test_served_exports_keep_private_things_private(served: Served) -> None:
    resp = await served.client.get("/data/meshviewer.json")
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
    doc = await resp.json()
    check_meshviewer_shape(doc)
    assert leaks(doc, SECRETS) == []
    by_id = {n["node_id"]: n for n in doc["nodes"]}
    assert by_id["alpha"]["location"] == {"latitude": 52.520008, "longitude": 13.404954}
    assert by_id["bravo"]["location"] == {"latitude": 52.51, "longitude": 13.42}  # private
    assert by_id["delta"]["hostname"] == "delta"  # its hostname is an IP address
    assert by_id["alpha"]["clients"] == 7 and by_id["alpha"]["memory_usage"] == 0.5
    # bravo's batman link to charlie (TQ 200) is a routing link; radio-only ones are not
    assert [(lk["source"], lk["target"], lk["type"]) for lk in doc["links"]] == [
        ("bravo", "charlie", "other")]
    assert doc["links"][0]["source_tq"] == doc["links"][0]["target_tq"] == round(200 / 255, 6)

    nodelist = await served.get_json("/data/nodelist.json")
    assert nodelist["version"] == "1.0.1" and parse_time(nodelist["updated_at"]) == NOW
    assert leaks(nodelist, SECRETS) == []
    entries = {n["id"]: n for n in nodelist["nodes"]}
    assert entries["alpha"]["position"] == {"lat": 52.520008, "long": 13.404954}
    assert entries["bravo"]["position"] == {"lat": 52.51, "long": 13.42}
    assert entries["alpha"]["status"] == {"online": True, "clients": 7,
                                          "lastcontact": "2023-11-14T22:13:20+0000"}
    assert nodelist_document(served.ctx.topology, 0.01, NOW) == nodelist
