"""Community map files → node updates: the six real meshviewer snapshots, hopglass and
OpenWiFiMap samples, compared with their source node by node and link by link."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.freifunk import meshviewer
from meshmon_bridge.sources.freifunk.mapfiles import (
    HopglassSource,
    HopglassTable,
    MeshviewerSource,
    MeshviewerTable,
    OpenWifiMapSource,
    OpenWifiMapTable,
)
from meshmon_bridge.sources.freifunk.node_ids import PublicIds
from meshmon_bridge.sources.freifunk.snapshot import SnapshotOptions, node_updates, parse_time

from meshmon.model import wire
from meshmon.model.addresses import ADDRESS_RE
from tests.bridge.ff_helpers import (
    COMMUNITIES,
    DATA,
    ID_KEY,
    ODD_JSON,
    assert_public_ids,
    by_node,
    context,
    load_snapshot,
    published,
    snapshot_file,
)
from tests.bridge.helpers import run_print, write_config

MEDIUM = {"wifi": "wifi", "wifi24": "wifi", "wifi5": "wifi", "vpn": "vpn"}
"""meshviewer link type → the interface label's medium (the frontend's fixture draws
`wifi24`/`wifi5` links); any other type is `other`"""
FRONTEND_FIXTURE = DATA / "meshviewer-frontend-fixture.json"
"""the freifunk/meshviewer frontend's own fixture (tests/data/README.md)"""


def meshviewer_source(path: Path, **keys: Any) -> MeshviewerSource:
    table = MeshviewerTable(url=str(path), id_key=ID_KEY, **keys)
    return MeshviewerSource(table, context(path.parent), [table.url])


def tq(fraction: float) -> int:
    return min(255, round(fraction * 255))


@pytest.mark.parametrize("path", [*(snapshot_file(c) for c in COMMUNITIES), FRONTEND_FIXTURE],
                         ids=[*COMMUNITIES, "frontend-fixture"])
def test_meshviewer_snapshot_imports_every_node_and_link(path: Path) -> None:
    snap = json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz"
                      else path.read_bytes())
    source = meshviewer_source(path)
    updates = asyncio.run(source.poll())
    nodes = by_node(published("meshviewer", updates))
    raw = {n["node_id"]: n for n in snap["nodes"]}
    ends = {k for lk in snap["links"] for k in (lk["source"], lk["target"])}
    ids = {key: source.ids.get(key) for key in {*raw, *ends}}
    assert len(nodes) == len(raw) == len(updates)
    assert_public_ids(list(nodes))
    assert set(nodes) == {ids[key] for key in raw}

    newest = max(parse_time(n["lastseen"]) for n in snap["nodes"])
    declared = parse_time(snap.get("timestamp") or snap["meta"]["timestamp"])
    # the gateways other nodes selected (a node naming itself adds nothing)
    referenced = {n.get(field) for n in snap["nodes"] for field in ("gateway", "gateway6")
                  if n.get(field) != n["node_id"]}
    for key, n in raw.items():
        got = nodes[ids[key]]
        assert got["status"].online is n["is_online"], key
        assert ("report" in got) is n["is_online"]
        assert got["status"].ts == max(newest, declared)  # judged as of the file's own time
        info: wire.Info = got["info"]
        assert info.hostname == (n["hostname"].strip() or None)
        assert info.source is not None and info.source.kind == "meshviewer"
        loc = n.get("location") or {}
        if abs(loc.get("latitude", 99)) <= 90 and abs(loc.get("longitude", 999)) <= 180:
            assert info.location is not None
            assert (info.location.lat, info.location.lon) == (loc["latitude"],
                                                              loc["longitude"])
        else:  # none, or out of range (Altdorf has a longitude of 12986035): left out
            assert info.location is None
        # only gateway servers are gateways: an uplink node (a tunnel to one) is tagged
        assert info.gateway is (n["is_gateway"] or key in referenced), key
        if "mac" in n:
            assert n["mac"] in info.macs

    # every link of the file: one directed link from each online end, with its TQ (a
    # link to a node the file does not list is published by its listed end)
    expected: Counter[tuple[str, str, str, int]] = Counter()
    for lk in snap["links"]:
        medium = MEDIUM.get(lk["type"], "other")
        for here, there, frac in ((lk["source"], lk["target"], lk["source_tq"]),
                                  (lk["target"], lk["source"], lk["target_tq"])):
            if here in raw and raw[here]["is_online"]:
                expected[(ids[here], ids[there], medium, tq(frac))] += 1
    got_links: Counter[tuple[str, str, str, int]] = Counter()
    for node_id, msgs in nodes.items():
        for link in msgs["report"].links if "report" in msgs else []:
            assert link.peer is not None and link.tq is not None
            assert link.kind == ("vpn" if link.iface.startswith("vpn") else "batman")
            got_links[(node_id, link.peer, re.sub(r"\d+$", "", link.iface), link.tq)] += 1
    assert got_links == expected
    assert sum(expected.values()) >= len(snap["links"])


def test_a_file_without_online_flags_is_judged_as_of_its_own_time(tmp_path: Path) -> None:
    snap = load_snapshot("bremen")
    for n in snap["nodes"]:
        del n["is_online"]
    path = tmp_path / "meshviewer.json"
    path.write_text(json.dumps(snap))
    source = meshviewer_source(path, offline_after_s=900)
    updates = asyncio.run(source.poll())
    newest = max(parse_time(n["lastseen"]) for n in snap["nodes"])
    fresh = {source.ids.get(n["node_id"]) for n in snap["nodes"]
             if newest - parse_time(n["lastseen"]) <= 900}
    assert {u.node for u in updates if u.online} == fresh
    assert 800 <= len(fresh) < len(snap["nodes"])  # a 2020 file, not all offline "now"


def test_uptime_is_the_time_since_boot_as_of_the_snapshot() -> None:
    snap = load_snapshot("bremen")
    source = meshviewer_source(snapshot_file("bremen"))
    updates = {u.node: u for u in asyncio.run(source.poll())}
    first = snap["nodes"][0]  # ROLF11, booted 2020-05-01T06:43:22+0200
    report = updates[source.ids.get(first["node_id"])].report
    assert report is not None
    assert report["sys"]["uptime_s"] == parse_time(snap["timestamp"]) - parse_time(
        first["uptime"])
    assert report["clients"] == first["clients"]
    assert report["sys"]["load"] == [first["loadavg"]]


def hopglass_source() -> HopglassSource:
    folder = DATA / "hopglass"
    table = HopglassTable(nodes_url="nodes.json", graph_url="graph.json", id_key=ID_KEY)
    return HopglassSource(table, context(folder), [table.nodes_url, table.graph_url])


def test_hopglass_sample_imports_every_node_and_directed_link() -> None:
    nodes_doc = json.loads((DATA / "hopglass/nodes.json").read_text())
    graph = json.loads((DATA / "hopglass/graph.json").read_text())["batadv"]
    source = hopglass_source()
    published_nodes = by_node(published("hopglass", asyncio.run(source.poll())))
    ids = {n["nodeinfo"]["node_id"]: source.ids.get(n["nodeinfo"]["node_id"])
           for n in nodes_doc["nodes"]}
    assert_public_ids(list(published_nodes))
    assert len(published_nodes) == len(nodes_doc["nodes"]) == 15
    # the gateway servers are gateways; Gluon's uplink nodes (a tunnel link to a server)
    # are not, they get the `uplink` tag
    uplinks = {graph["nodes"][lk[end]].get("node_id") for lk in graph["links"]
               for end in ("source", "target") if lk["type"] == "tunnel"}
    for n in nodes_doc["nodes"]:
        got = published_nodes[ids[n["nodeinfo"]["node_id"]]]
        assert got["status"].online is n["flags"]["online"]
        assert got["info"].hostname == n["nodeinfo"]["hostname"].strip()
        assert got["info"].gateway is n["flags"]["gateway"]
        if not n["flags"]["gateway"]:
            assert ("uplink" in got["info"].tags) is (n["nodeinfo"]["node_id"] in uplinks)
        if n["flags"]["online"]:
            assert got["report"].sys.uptime_s == n["statistics"]["uptime"]
    # each graph entry: the target measured its neighbour, the source
    expected: Counter[tuple[str, str | None, str | None, int]] = Counter()
    for lk in graph["links"]:
        reporter = ids[graph["nodes"][lk["target"]]["node_id"]]
        neighbour = graph["nodes"][lk["source"]]
        peer = ids[neighbour["node_id"]] if "node_id" in neighbour else None
        mac = None if peer else neighbour["id"]
        expected[(reporter, peer, mac, round(255 / lk["tq"]))] += 1
    got: Counter[tuple[str, str | None, str | None, int]] = Counter()
    for node_id, msgs in published_nodes.items():
        for link in msgs["report"].links if "report" in msgs else []:
            got[(node_id, link.peer, link.peer_mac, link.tq)] += 1
            assert link.kind == ("vpn" if link.iface == "vpn" else "batman")
    assert got == expected
    assert sum(1 for key in got if key[2] is not None) == 1  # the neighbour outside


def openwifimap_source() -> OpenWifiMapSource:
    table = OpenWifiMapTable(url="rows.json", id_key=ID_KEY)
    return OpenWifiMapSource(table, context(DATA / "openwifimap"), [table.url])


def test_openwifimap_sample_imports_olsr_links_without_their_addresses() -> None:
    rows = json.loads((DATA / "openwifimap/rows.json").read_text())["rows"]
    docs = {r["id"]: r.get("doc") or r["value"] for r in rows}
    source = openwifimap_source()
    updates = asyncio.run(source.poll())
    messages = published("openwifimap", updates)
    published_nodes = by_node(messages)
    assert_public_ids(list(published_nodes))
    assert len(published_nodes) == len(docs) == 55
    ids = {key: source.ids.get(key) for key in docs}
    assert ids["romania-1.olsr"] == "romania-1.olsr"  # a document id that is a public id
    offline = [key for key, msgs in ((k, published_nodes[ids[k]]) for k in docs)
               if not msgs["status"].online]
    assert offline == [rows[5]["id"]]  # the one two days older than the newest
    expected: Counter[tuple[str, str, float]] = Counter()
    for key, doc in docs.items():
        if key in offline:
            continue
        for lk in doc["links"]:
            expected[(ids[key], ids[lk["id"]], lk["olsr_ipv4"]["etx"])] += 1
    got: Counter[tuple[str, str, float]] = Counter()
    for node_id, msgs in published_nodes.items():
        for link in msgs["report"].links if "report" in msgs else []:
            assert link.kind == "olsr" and link.peer is not None and link.etx is not None
            got[(node_id, link.peer, link.etx)] += 1
    assert got == expected
    first = published_nodes[ids[rows[0]["id"]]]["report"].links[0]
    assert (first.lq, first.nlq) == (0.8, 0.9)
    # the OLSR addresses of every link never leave the bridge
    text = json.dumps([m.model_dump(mode="json") for m in messages])
    assert "172.16." not in text and not ADDRESS_RE.search(text), ADDRESS_RE.search(text)


def test_broken_files_fail_the_poll_with_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": "no"')
    with pytest.raises(SourceError, match="not JSON"):
        asyncio.run(meshviewer_source(bad).poll())
    bad.write_text('{"nodes": {}, "links": []}')
    with pytest.raises(SourceError, match=r"not a meshviewer\.json"):
        asyncio.run(meshviewer_source(bad).poll())
    with pytest.raises(SourceError, match="cannot read"):
        asyncio.run(meshviewer_source(tmp_path / "missing.json").poll())
    # odd entries are skipped, the rest imported
    bad.write_text(json.dumps({"timestamp": "2020-01-01T00:00:00Z", "nodes": [
        {"node_id": "aa0000000001", "hostname": "ok", "is_online": True, "lastseen": 1},
        {"node_id": 5}, "x", {"hostname": "no id"}],
        "links": [{"source": "aa0000000001", "target": "aa0000000001"}, 7]}))
    updates = asyncio.run(meshviewer_source(bad).poll())
    assert [u.node for u in updates] == ["ok"]


def test_once_print_imports_all_three_kinds(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bridge.toml", "ff-print", 1883, body=f"""
[[meshviewer]]
url = "{snapshot_file('leipzig')}"
node_prefix = "ffl-"
id_key = "{ID_KEY}"
[[hopglass]]
nodes_url = "file://{DATA / 'hopglass/nodes.json'}"
graph_url = "{DATA / 'hopglass/graph.json'}"
id_key = "{ID_KEY}"
[[openwifimap]]
url = "{DATA / 'openwifimap/rows.json'}"
id_key = "{ID_KEY}"
""")
    code, lines, err = run_print(config)
    assert code == 0, err
    infos = [line for line in lines if line["topic"].endswith("/info")]
    kinds = Counter(line["payload"]["source"]["kind"] for line in infos)
    assert kinds == {"meshviewer": 279, "hopglass": 15, "openwifimap": 55}
    node_ids = [line["payload"]["node"] for line in infos]
    assert_public_ids(node_ids)
    for line in lines:
        assert not ADDRESS_RE.search(line["topic"]), line["topic"]
    assert all(n.startswith("ffl-") for n, line in zip(node_ids, infos, strict=True)
               if line["payload"]["source"]["kind"] == "meshviewer")


def test_olsr_style_files_keyed_by_ip_address_publish_no_address(tmp_path: Path) -> None:
    """Map files of OLSR networks name nodes by IP: the keys stay private."""
    doc = {"timestamp": "2020-03-03T14:00:00Z", "nodes": [
        {"node_id": "10.31.5.1", "hostname": "kiezspinne-core", "is_online": True,
         "lastseen": "2020-03-03T14:00:00Z", "location": {"latitude": 52.5, "longitude": 13.4}},
        {"node_id": "10.31.5.2", "hostname": "10.31.5.2", "is_online": True,
         "lastseen": "2020-03-03T14:00:00Z"}],
        "links": [{"source": "10.31.5.1", "target": "10.31.5.2", "type": "other",
                   "source_tq": 0.5, "target_tq": 1}]}
    path = tmp_path / "meshviewer.json"
    path.write_text(json.dumps(doc))
    nodes = by_node(published("meshviewer", asyncio.run(meshviewer_source(path).poll())))
    assert_public_ids(list(nodes))
    unnamed = next(n for n in nodes if n != "kiezspinne-core")
    assert unnamed.startswith("node-")  # its hostname was only its address
    assert [(lk.peer, lk.tq) for lk in nodes["kiezspinne-core"]["report"].links] == [
        (unnamed, 128)]

    graph = json.loads((DATA / "hopglass/graph.json").read_text())
    stranger = next(n for n in graph["batadv"]["nodes"] if "node_id" not in n)
    stranger["id"] = "10.31.5.9"  # a neighbour known only by its IP address
    (tmp_path / "graph.json").write_text(json.dumps(graph))
    (tmp_path / "nodes.json").write_text((DATA / "hopglass/nodes.json").read_text())
    table = HopglassTable(nodes_url="nodes.json", graph_url="graph.json", id_key=ID_KEY)
    source = HopglassSource(table, context(tmp_path), [table.nodes_url, table.graph_url])
    messages = published("hopglass", asyncio.run(source.poll()))
    peers = {lk.peer for m in messages if isinstance(m, wire.Report) for lk in m.links}
    assert source.ids.get("10.31.5.9") in peers
    assert not any(ADDRESS_RE.search(p or "") for p in peers)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_odd_values_anywhere_in_a_map_file_never_break_the_import(data: st.DataObject) -> None:
    snap = load_snapshot("ulm")
    nodes = snap["nodes"][:12]
    keys = {n["node_id"] for n in nodes}
    links = [lk for lk in snap["links"] if lk["source"] in keys and lk["target"] in keys]
    doc = {"timestamp": snap["meta"]["timestamp"], "nodes": nodes, "links": links}
    for _ in range(data.draw(st.integers(1, 6))):
        part = data.draw(st.sampled_from(nodes + links))
        field = data.draw(st.sampled_from(sorted(part)))
        part[field] = data.draw(ODD_JSON)
    parsed = meshviewer.parse(doc, "fuzz", 1.6e9)
    updates = node_updates(parsed, PublicIds(), SnapshotOptions(interval_s=60,
                                                                offline_after_s=900))
    messages = published("meshviewer", updates)  # every one valid for the collector
    assert_public_ids(list(by_node(messages)))
