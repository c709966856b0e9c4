"""The JSON API over a real loopback server, built from real wire models."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshmon.model.wire import BridgeStatus, Info, Report
from tests.web.conftest import ALPHA_LOC, NOW, SECRETS, Served
from tests.web.privacy import assert_no_leaks

PUBLIC_PATHS = (
    "/api/v1/nodes",
    "/api/v1/nodes/alpha",
    "/api/v1/nodes/bravo",
    "/api/v1/nodes/charlie",
    "/api/v1/nodes/delta",
    "/api/v1/links",
    "/api/v1/topology",
)
NODE_FIELDS = {
    "id", "hostname", "model", "firmware", "online", "state", "last_seen", "uptime_s", "load",
    "clients", "gateway", "location", "tags", "source", "link_count", "neighbours",
}  # fmt: skip


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


@pytest.mark.parametrize("path", PUBLIC_PATHS)
async def test_public_endpoints_leak_no_contact_mac_or_ip(served: Served, path: str) -> None:
    doc = await served.get_json(path)
    assert_no_leaks(doc, SECRETS)


@pytest.mark.parametrize("path", PUBLIC_PATHS)
async def test_public_endpoints_send_no_store_and_open_cors(served: Served, path: str) -> None:
    resp = await served.client.get(path)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    body = await resp.read()
    assert b", " not in body and b'": ' not in body  # compact separators


async def test_nodes_lists_every_node_with_allowed_fields_only(served: Served) -> None:
    nodes = by_id((await served.get_json("/api/v1/nodes"))["nodes"])
    assert sorted(nodes) == ["alpha", "bravo", "charlie", "delta"]
    assert all(set(n) == NODE_FIELDS for n in nodes.values())
    alpha = nodes["alpha"]
    assert alpha["hostname"] == "alpha-roof"
    assert alpha["model"] == "Ubiquiti NanoStation M5"
    assert alpha["firmware"] == "OpenWrt 23.05.2"
    assert alpha["online"] is True
    assert alpha["state"] == "online"
    assert alpha["last_seen"] == NOW
    assert alpha["uptime_s"] == 3600
    assert alpha["load"] == [0.5, 0.4, 0.3]
    assert alpha["clients"] == 7
    assert alpha["gateway"] is True
    assert alpha["tags"] == ["backbone", "roof"]
    assert alpha["location"] == ALPHA_LOC  # public node: exact
    # alpha→bravo, bravo→alpha, charlie→alpha (alpha's link to an unknown MAC is not counted)
    assert (alpha["link_count"], alpha["neighbours"]) == (3, 2)
    assert (nodes["bravo"]["link_count"], nodes["bravo"]["neighbours"]) == (3, 2)
    assert nodes["delta"]["online"] is False
    assert (nodes["delta"]["link_count"], nodes["delta"]["neighbours"]) == (0, 0)
    assert nodes["charlie"]["location"] is None


async def test_private_node_location_is_snapped_to_the_grid(served: Served) -> None:
    bravo = by_id((await served.get_json("/api/v1/nodes"))["nodes"])["bravo"]
    assert bravo["location"] == {"lat": 52.51, "lon": 13.42, "approximate": True}


async def test_private_node_has_no_location_when_grid_is_zero(served: Served) -> None:
    served.ctx.config.privacy.coarsen_grid_deg = 0
    served.ctx.cache_ttl_s = 0
    bravo = by_id((await served.get_json("/api/v1/nodes"))["nodes"])["bravo"]
    assert bravo["location"] is None
    topo = await served.get_json("/api/v1/topology")
    assert "location" not in by_id(topo["nodes"])["bravo"]["properties"]


async def test_free_text_that_looks_like_an_address_is_dropped(served: Served) -> None:
    delta = by_id((await served.get_json("/api/v1/nodes"))["nodes"])["delta"]
    assert delta["hostname"] is None  # was an IPv4 address
    assert delta["firmware"] is None  # contained a MAC
    assert delta["model"] == "x86"
    assert delta["tags"] == ["ok-tag"]  # e-mail and IPv6 tags dropped


async def test_node_detail_pairs_both_directions_of_each_link(served: Served) -> None:
    alpha = await served.get_json("/api/v1/nodes/alpha")
    assert set(alpha) >= NODE_FIELDS
    assert alpha["unresolved_links"] == 1
    links = {(e["peer"], e["kind"]): e for e in alpha["links"]}
    assert sorted(links) == [("bravo", "wifi"), ("charlie", "ethernet")]
    wifi = links[("bravo", "wifi")]
    assert wifi["out"]["iface"] == "wlan0"
    assert wifi["out"]["metrics"] == {
        "signal_dbm": -61, "snr_db": 34, "tx_rate_mbps": 130, "expected_tput_mbps": 60,
        "chains_dbm": [-63, -64],
    }  # fmt: skip
    assert wifi["out"]["last_seen"] == NOW
    assert wifi["in"]["iface"] == "wlan1"  # bravo's view of the same radio link
    assert wifi["in"]["metrics"] == {"signal_dbm": -64}
    eth = links[("charlie", "ethernet")]
    assert eth["out"] is None  # alpha does not report charlie
    assert eth["in"] == {"iface": "eth0", "metrics": {}, "last_seen": NOW}


async def test_node_detail_has_sys_radios_and_interface_names(served: Served) -> None:
    alpha = await served.get_json("/api/v1/nodes/alpha")
    assert alpha["sys"] == {
        "uptime_s": 3600, "load": [0.5, 0.4, 0.3], "mem_total_kb": 60000,
        "mem_avail_kb": 30000, "rootfs_used_pct": 40,
    }  # fmt: skip
    assert [r["iface"] for r in alpha["radios"]] == ["wlan0"]
    assert alpha["radios"][0]["channel"] == 36
    assert [i["name"] for i in alpha["ifaces"]] == ["wlan0", "eth0"]
    assert alpha["ifaces"][0]["rx_bytes"] == 1000
    assert alpha["report_ts"] == NOW
    delta = await served.get_json("/api/v1/nodes/delta")
    assert (delta["sys"], delta["radios"], delta["ifaces"], delta["links"]) == (None, [], [], [])


async def test_private_node_detail_shows_only_the_snapped_location(served: Served) -> None:
    bravo = await served.get_json("/api/v1/nodes/bravo")
    assert bravo["location"] == {"lat": 52.51, "lon": 13.42, "approximate": True}
    assert {(e["peer"], e["kind"]) for e in bravo["links"]} == {
        ("alpha", "wifi"), ("charlie", "batman"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/api/v1/nodes/zulu", "unknown node"),
        ("/api/v1/nodes/-bad", "invalid node id"),
        ("/api/v1/nodes/" + "x" * 65, "invalid node id"),
        ("/api/v1/nodes/a%20b", "invalid node id"),
        ("/api/v1/nope", "Not Found"),
    ],
)
async def test_unknown_or_invalid_paths_give_a_json_404(
    served: Served, path: str, error: str
) -> None:
    doc = await served.get_json(path, status=404)
    assert doc == {"error": error, "status": 404}


async def test_links_lists_only_resolved_links_with_metrics(served: Served) -> None:
    links = (await served.get_json("/api/v1/links"))["links"]
    got = {(lk["src"], lk["dst"], lk["iface"], lk["kind"]) for lk in links}
    assert got == {
        ("alpha", "bravo", "wlan0", "wifi"),
        ("bravo", "alpha", "wlan1", "wifi"),
        ("bravo", "charlie", "bat0", "batman"),
        ("charlie", "alpha", "eth0", "ethernet"),
    }
    assert len(links) == 4  # the link to an unknown MAC is left out
    batman = next(lk for lk in links if lk["kind"] == "batman")
    assert batman["metrics"] == {"tq": 200}
    assert batman["last_seen"] == NOW
    assert all(set(lk) == {"src", "dst", "iface", "kind", "metrics", "last_seen"} for lk in links)


async def test_topology_is_a_valid_netjson_network_graph(served: Served) -> None:
    graph = await served.get_json("/api/v1/topology")
    assert graph["type"] == "NetworkGraph"
    for key in ("protocol", "version", "metric"):
        assert isinstance(graph[key], str) and graph[key]
    assert isinstance(graph["label"], str)
    ids = [n["id"] for n in graph["nodes"]]
    assert sorted(ids) == ["alpha", "bravo", "charlie", "delta"]
    assert len(set(ids)) == len(ids)
    assert all(isinstance(n["properties"], dict) and n["label"] for n in graph["nodes"])
    for link in graph["links"]:
        assert link["source"] in ids and link["target"] in ids
        assert isinstance(link["cost"], int | float) and link["cost"] >= 1
        assert isinstance(link["properties"], dict)
    pairs = {(lk["source"], lk["target"]): lk for lk in graph["links"]}
    # both ends' views of alpha↔bravo fold into one link
    assert sorted(pairs) == [("alpha", "bravo"), ("alpha", "charlie"), ("bravo", "charlie")]
    ab = pairs[("alpha", "bravo")]
    assert ab["properties"]["source_view"]["signal_dbm"] == -61
    assert ab["properties"]["target_view"]["signal_dbm"] == -64
    assert ab["cost_text"] == "signal -61 dBm"  # the better of the two directions
    bc = pairs[("bravo", "charlie")]
    assert bc["cost"] == round(255 / 200, 3) and bc["cost_text"] == "tq 200"
    assert pairs[("alpha", "charlie")]["cost"] == 1
    nodes = by_id(graph["nodes"])
    assert nodes["alpha"]["properties"]["location"] == {
        "lat": ALPHA_LOC["lat"], "lng": ALPHA_LOC["lon"],
    }  # fmt: skip
    assert nodes["bravo"]["properties"]["location"] == {"lat": 52.51, "lng": 13.42}
    assert nodes["bravo"]["properties"]["location_approximate"] is True
    assert nodes["delta"]["label"] == "delta"  # hostname was an address: id instead


async def test_topology_parses_with_netdiff_style_reading(served: Served) -> None:
    """Rebuild the graph as netdiff's NetJsonParser would and compare with the source."""
    import networkx as nx

    graph = await served.get_json("/api/v1/topology")
    g = nx.Graph()
    for n in graph["nodes"]:
        g.add_node(n["id"], label=n.get("label"), **n.get("properties", {}))
    for lk in graph["links"]:
        g.add_edge(lk["source"], lk["target"], weight=lk["cost"], **lk.get("properties", {}))
    topo = served.ctx.topology
    assert set(g.nodes) == set(topo.nodes)
    resolved = {frozenset((k.src, lk.dst)) for k, lk in topo.links.items() if lk.dst}
    assert {frozenset(e) for e in g.edges} == resolved


async def test_whole_network_responses_are_cached_for_the_ttl(served: Served) -> None:
    first = await served.get_json("/api/v1/nodes")
    served.ctx.topology.nodes["alpha"].online = False
    assert await served.get_json("/api/v1/nodes") == first  # same clock: cached
    served.ctx.clock = lambda: NOW + 2  # past the 1 s TTL
    again = by_id((await served.get_json("/api/v1/nodes"))["nodes"])
    assert again["alpha"]["online"] is False


async def test_healthz_reports_ok_uptime_and_node_count(served: Served) -> None:
    served.ctx.clock = lambda: NOW + 12.5
    doc = await served.get_json("/healthz")
    assert doc == {"ok": True, "uptime_s": 12.5, "nodes": 4, "nodes_online": 3, "links": 5}


async def test_metrics_serves_prometheus_text_with_registered_names(served: Served) -> None:
    served.ctx.metrics.describe("meshmon_nodes", "gauge", "known nodes")
    served.ctx.metrics.gauge_fn("meshmon_nodes", lambda: float(len(served.ctx.topology.nodes)))
    await served.client.get("/api/v1/nodes")
    await served.client.get("/api/v1/nodes/zulu")
    resp = await served.client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await resp.text()
    assert "# TYPE meshmon_http_requests_total counter" in text
    assert 'meshmon_http_requests_total{code="200",route="/api/v1/nodes"} 1' in text
    assert 'meshmon_http_requests_total{code="404",route="/api/v1/nodes/{node}"} 1' in text
    assert "# TYPE meshmon_nodes gauge\nmeshmon_nodes 4\n" in text


async def test_peer_without_agent_is_a_netjson_node_and_a_link_end(served: Served) -> None:
    served.ctx.core.apply(
        Report.model_validate({
            "v": 1, "node": "charlie", "ts": NOW, "seq": 2, "interval_s": 30,
            "links": [{"peer": "alpha", "iface": "eth0", "kind": "ethernet"},
                      {"peer": "echo", "iface": "eth1", "kind": "ethernet"}],
        }),
        NOW,
    )  # fmt: skip
    graph = await served.get_json("/api/v1/topology")
    nodes = by_id(graph["nodes"])
    assert nodes["echo"] == {"id": "echo", "label": "echo", "properties": {"agent": False}}
    assert nodes["alpha"]["properties"]["agent"] is True
    assert {"source": "charlie", "target": "echo"}.items() <= next(
        lk for lk in graph["links"] if "echo" in (lk["source"], lk["target"])
    ).items()
    links = (await served.get_json("/api/v1/links"))["links"]
    assert {"src": "charlie", "dst": "echo"}.items() <= next(
        lk for lk in links if lk["dst"] == "echo"
    ).items()
    node_ids = [n["id"] for n in (await served.get_json("/api/v1/nodes"))["nodes"]]
    assert "echo" not in node_ids  # only nodes that spoke are listed


async def test_start_page_shows_the_summary_and_leaks_nothing(served: Served) -> None:
    resp = await served.client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    text = await resp.text()
    topo = served.ctx.topology
    online = sum(1 for n in topo.nodes.values() if n.online)
    expected = f"{online} of {len(topo.nodes)} nodes online, {topo.graph.number_of_edges()} links"
    assert expected in text
    assert 'href="/api/v1/topology"' in text
    assert_no_leaks(text, SECRETS)


async def test_bridged_nodes_show_their_source_and_wait_for_their_silent_bridge(
        served: Served) -> None:
    core = served.ctx.core
    core.apply(Info.model_validate({
        "v": 1, "node": "radio-1", "hostname": "radio-1", "location": ALPHA_LOC,
        "macs": ["02:ff:00:00:00:01"], "source": {"kind": "snmp", "via": "bridge-1"}}), NOW)
    core.apply(Report.model_validate({"v": 1, "node": "radio-1", "ts": NOW, "seq": 1,
                                      "interval_s": 30}), NOW)
    # an agent that claims a bridge id that looks like an address shows no such id
    core.apply(Info.model_validate({"v": 1, "node": "odd", "source": {
        "kind": "snmp", "via": "f81a67a5e9c1"}}), NOW)
    core.apply(BridgeStatus(v=1, bridge="bridge-1", online=True, ts=NOW), NOW)
    core.apply(BridgeStatus(v=1, bridge="bridge-1", online=False), NOW + 1)
    core.tick(NOW + 600)
    nodes = by_id((await served.get_json("/api/v1/nodes"))["nodes"])
    assert nodes["radio-1"]["source"] == {"kind": "snmp", "via": "bridge-1"}
    assert nodes["radio-1"]["state"] == "unmonitored" and nodes["alpha"]["source"] is None
    assert nodes["odd"]["source"] == {"kind": "snmp", "via": None}
    detail = await served.get_json("/api/v1/nodes/radio-1")
    assert detail["state"] == "unmonitored" and detail["source"]["via"] == "bridge-1"
    graph = await served.get_json("/api/v1/topology")
    radio = next(n for n in graph["nodes"] if n["id"] == "radio-1")
    assert radio["properties"]["source"] == {"kind": "snmp", "via": "bridge-1"}
    doc = await served.get_json("/api/v1/map")
    drawn = next(n for n in doc["nodes"] if n["id"] == "radio-1")
    assert drawn["state"] == "unmonitored" and drawn["source"] == "snmp via bridge-1"
    # held as last heard (online), but not counted online: its state is unknown
    assert doc["summary"]["unmonitored"] == 1
    assert doc["summary"]["online"] == sum(n["online"] for n in nodes.values()) - 1
    bridges = (await served.get_json("/api/v1/bridges"))["bridges"]
    assert bridges == [{"id": "bridge-1", "online": False, "since": NOW + 1,
                        "last_seen": NOW + 1, "nodes": 1, "kinds": {"snmp": 1},
                        "unmonitored": 1}]  # the address-like id is not listed
    page = await (await served.client.get("/")).text()
    assert " links, 1 unmonitored</p>" in page  # the summary line, before any script
    assert "f81a67a5e9c1" not in json.dumps([nodes, graph, doc])
    assert_no_leaks([nodes, detail, graph, doc, bridges], (*SECRETS, "02:ff:00:00:00:01"))
