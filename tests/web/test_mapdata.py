"""`/api/v1/map` over a real loopback server, built from real wire models."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshmon.config import Config
from meshmon.model.core import Core
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Report, Status
from meshmon.web.documents import Documents
from meshmon.web.mapdata import (
    MapRenderer,
    Thresholds,
    map_document,
    quality,
    quality_thresholds,
)
from tests.web.conftest import ALPHA_LOC, BRAVO_LOC, NOW, SECRETS, Served, infos
from tests.web.privacy import assert_no_leaks

TOP_KEYS = {"generated_at", "summary", "unlocated", "unlocated_nodes", "nodes", "links"}
NODE_KEYS = {"id", "name", "lat", "lon", "state", "approximate", "gateway", "clients", "model",
             "antennas"}
NODE_REQUIRED = {"id", "name", "lat", "lon", "state"}
LINK_KEYS = {"a", "b", "kind", "quality", "signal_dbm", "tq", "etx", "tput_mbps"}
ANTENNA_KEYS = {"azimuth_deg", "width_deg", "range_m"}
THRESHOLDS = Thresholds(good_signal_dbm=-65, fair_signal_dbm=-75)


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def pairs(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(lk["a"], lk["b"]): lk for lk in doc["links"]}


def report(node: str, links: list[dict[str, Any]], **extra: Any) -> Report:
    return Report.model_validate(
        {"v": 1, "node": node, "ts": NOW, "seq": 50, "interval_s": 30, "links": links, **extra}
    )


def add_node(core: Core, node: str, lat: float, lon: float, **info: Any) -> None:
    """A public, located, online node."""
    core.apply(Info.model_validate({"v": 1, "node": node, "hostname": node,
                                    "location": {"lat": lat, "lon": lon}, **info}), NOW)
    core.apply(Status(v=1, node=node, online=True, ts=NOW), NOW)


async def test_map_lists_located_nodes_with_allow_listed_fields_only(served: Served) -> None:
    doc = await served.get_json("/api/v1/map")
    assert set(doc) == TOP_KEYS
    nodes = by_id(doc["nodes"])
    assert sorted(nodes) == ["alpha", "bravo"]  # charlie and delta have no location
    for node in nodes.values():
        assert NODE_REQUIRED <= set(node) <= NODE_KEYS
    assert nodes["alpha"] == {
        "id": "alpha", "name": "alpha-roof", "lat": ALPHA_LOC["lat"], "lon": ALPHA_LOC["lon"],
        "state": "online", "gateway": True, "clients": 7, "model": "Ubiquiti NanoStation M5",
    }  # fmt: skip
    for link in doc["links"]:
        assert {"a", "b", "kind", "quality"} <= set(link) <= LINK_KEYS
    assert_no_leaks(doc, SECRETS)


async def test_map_body_is_compact_public_json(served: Served) -> None:
    resp = await served.client.get("/api/v1/map")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    body = await resp.read()
    assert b", " not in body and b'": ' not in body
    for secret in ("owner", "contact", "macs", "iface", "wlan", "firmware", "tags"):
        assert secret.encode() not in body, secret


async def test_private_node_is_only_at_its_coarsened_position(served: Served) -> None:
    bravo_info = {**infos()[1].model_dump(), "antennas": [{"azimuth_deg": 10, "width_deg": 60}]}
    served.ctx.core.apply(Info.model_validate(bravo_info), NOW)
    body = (await (await served.client.get("/api/v1/map")).read()).decode()
    bravo = by_id((await served.get_json("/api/v1/map"))["nodes"])["bravo"]
    assert (bravo["lat"], bravo["lon"], bravo["approximate"]) == (52.51, 13.42, True)
    assert "antennas" not in bravo  # a sector from a grid point would pretend precision
    assert str(BRAVO_LOC["lat"]) not in body and str(BRAVO_LOC["lon"]) not in body
    assert "alt_m" not in body


async def test_private_node_is_left_out_but_counted_when_the_grid_is_zero(
    served: Served,
) -> None:
    served.ctx.config.privacy.coarsen_grid_deg = 0
    doc = await served.get_json("/api/v1/map")
    assert [n["id"] for n in doc["nodes"]] == ["alpha"]
    assert doc["unlocated"] == 3
    assert doc["summary"]["total"] == 4
    assert doc["links"] == []  # alpha's only located peer is hidden now


async def test_summary_counts_match_nodes_api_and_graph(served: Served) -> None:
    doc = await served.get_json("/api/v1/map")
    listed = (await served.get_json("/api/v1/nodes"))["nodes"]
    topo = served.ctx.topology
    assert doc["summary"] == {
        "online": sum(1 for n in listed if n["online"]),
        "total": len(listed),
        "links": topo.graph.number_of_edges(),
    }
    assert doc["summary"] == {"online": 3, "total": 4, "links": 3}
    assert doc["unlocated"] == sum(1 for n in listed if n["location"] is None) == 2
    # one link count: pairs, once each; the map draws the pairs with both ends located,
    # /api/v1/links lists directed links (several per pair)
    directed = (await served.get_json("/api/v1/links"))["links"]
    assert len({frozenset((lk["src"], lk["dst"])) for lk in directed}) == 3 < len(directed)
    assert len(doc["links"]) == 1  # alpha–bravo: charlie has no position


async def test_unlocated_nodes_are_named_so_the_map_can_find_and_open_them(
    served: Served,
) -> None:
    """Nodes without a public position: not drawn, but searchable and listable by the
    map, with the same name rule as drawn nodes (an address is no name: the id)."""
    served.ctx.cache_ttl_s = 0
    doc = await served.get_json("/api/v1/map")
    assert doc["unlocated_nodes"] == [
        {"id": "charlie", "name": "charlie", "state": "online"},
        {"id": "delta", "name": "delta", "state": "offline"},
    ]
    served.ctx.config.privacy.coarsen_grid_deg = 0  # bravo (private) is hidden too now
    doc = await served.get_json("/api/v1/map")
    hidden = by_id(doc["unlocated_nodes"])
    assert sorted(hidden) == ["bravo", "charlie", "delta"] and doc["unlocated"] == 3
    assert hidden["bravo"] == {"id": "bravo", "name": "bravo-home", "state": "online"}
    served.ctx.core.apply(Info.model_validate(
        {**infos()[2].model_dump(), "gateway": True}), NOW)
    assert by_id((await served.get_json("/api/v1/map"))["unlocated_nodes"])["charlie"][
        "gateway"] is True
    assert_no_leaks(doc, SECRETS)


async def test_links_join_both_directions_between_located_nodes(served: Served) -> None:
    doc = await served.get_json("/api/v1/map")
    # bravo–charlie and alpha–charlie exist, but charlie has no position: not drawn
    assert doc["links"] == [
        {"a": "alpha", "b": "bravo", "kind": "wifi", "quality": "good",
         "signal_dbm": -61, "tput_mbps": 60},
    ]  # fmt: skip


async def test_link_quality_comes_from_signal_then_tq_then_etx(served: Served) -> None:
    served.ctx.cache_ttl_s = 0
    core = served.ctx.core
    for i, node in enumerate(("n1", "n2", "n3", "n4", "n5", "n6", "n7")):
        add_node(core, node, 52.0 + i / 100, 13.0)
    core.apply(report("n1", [
        # fair by signal although TQ alone would say good: signal decides
        {"peer": "n2", "iface": "wlan0", "kind": "wifi", "signal_dbm": -70},
        {"peer": "n2", "iface": "bat0", "kind": "batman", "tq": 250},
        {"peer": "n3", "iface": "bat0", "kind": "batman", "tq": 130},
        {"peer": "n4", "iface": "olsr", "kind": "olsr", "etx": 4.5},
        {"peer": "n5", "iface": "eth0", "kind": "ethernet"},
        {"peer": "n6", "iface": "wlan0", "kind": "wifi", "signal_avg_dbm": -80},
        {"peer": "n7", "iface": "tun0", "kind": "vpn", "etx": 1.2, "expected_tput_mbps": 20},
    ]), NOW)  # fmt: skip
    # the other ends: best direction wins (n3 hears n1 with a better TQ, n4 a worse ETX)
    core.apply(report("n3", [{"peer": "n1", "iface": "bat0", "kind": "batman", "tq": 210}]),
               NOW)
    core.apply(report("n4", [{"peer": "n1", "iface": "olsr", "kind": "olsr", "etx": 9.0}]),
               NOW)
    got = pairs(await served.get_json("/api/v1/map"))
    assert got[("n1", "n2")] == {"a": "n1", "b": "n2", "kind": "wifi", "quality": "fair",
                                 "signal_dbm": -70, "tq": 250}
    assert got[("n1", "n3")] == {"a": "n1", "b": "n3", "kind": "batman", "quality": "good",
                                 "tq": 210}
    assert got[("n1", "n4")] == {"a": "n1", "b": "n4", "kind": "olsr", "quality": "poor",
                                 "etx": 4.5}
    assert got[("n1", "n5")] == {"a": "n1", "b": "n5", "kind": "ethernet", "quality": "unknown"}
    assert got[("n1", "n6")]["quality"] == "poor"
    assert got[("n1", "n6")]["signal_dbm"] == -80
    assert got[("n1", "n7")] == {"a": "n1", "b": "n7", "kind": "vpn", "quality": "good",
                                 "etx": 1.2, "tput_mbps": 20}


@pytest.mark.parametrize(
    ("signal", "tq", "etx", "expected"),
    [
        (-65, None, None, "good"), (-65.1, None, None, "fair"), (-75, None, None, "fair"),
        (-75.5, None, None, "poor"), (-50, 0, 99.0, "good"),
        (None, 200, None, "good"), (None, 199, None, "fair"), (None, 120, None, "fair"),
        (None, 119, None, "poor"), (None, 0, 1.0, "poor"),
        (None, None, 1.5, "good"), (None, None, 1.51, "fair"), (None, None, 3.0, "fair"),
        (None, None, 3.01, "poor"), (None, None, None, "unknown"),
    ],
)  # fmt: skip
def test_quality_thresholds_are_inclusive_at_the_better_side(
    signal: float | None, tq: int | None, etx: float | None, expected: str
) -> None:
    assert quality(THRESHOLDS, signal, tq, etx) == expected


def test_signal_thresholds_are_the_installer_views() -> None:
    config = Config.model_validate(
        {"installer": {"good_signal_dbm": -60, "marginal_signal_dbm": -70}}
    )
    t = quality_thresholds(config)
    assert (t.good_signal_dbm, t.fair_signal_dbm) == (-60, -70)
    assert t.as_json() == {"signal_dbm": [-60, -70], "tq": [200, 120], "etx": [1.5, 3.0]}


async def test_node_fields_antennas_and_unsafe_names(served: Served) -> None:
    served.ctx.cache_ttl_s = 0
    core = served.ctx.core
    add_node(core, "sector-1", 52.53, 13.41, gateway=False, model="LiteBeam 5AC",
             antennas=[{"iface": "wlan0", "azimuth_deg": 90, "width_deg": 60, "range_m": 800},
                       {"azimuth_deg": 270, "width_deg": 120}])
    add_node(core, "addr-name", 52.54, 13.41, hostname="10.0.0.1")
    core.apply(report("sector-1", [], clients=0), NOW)
    nodes = by_id((await served.get_json("/api/v1/map"))["nodes"])
    assert nodes["sector-1"] == {
        "id": "sector-1", "name": "sector-1", "lat": 52.53, "lon": 13.41, "state": "online",
        "clients": 0, "model": "LiteBeam 5AC",
        "antennas": [{"azimuth_deg": 90, "width_deg": 60, "range_m": 800},
                     {"azimuth_deg": 270, "width_deg": 120}],
    }  # fmt: skip
    for antenna in nodes["sector-1"]["antennas"]:
        assert set(antenna) <= ANTENNA_KEYS
    assert nodes["addr-name"]["name"] == "addr-name"  # the hostname was an address


async def test_peer_without_agent_counts_as_a_link_but_is_not_drawn(served: Served) -> None:
    served.ctx.cache_ttl_s = 0
    topo = served.ctx.topology
    served.ctx.core.apply(report("alpha", [{"peer": "echo", "iface": "wlan0", "kind": "wifi",
                                        "signal_dbm": -70}]), NOW)
    doc = await served.get_json("/api/v1/map")
    assert "echo" not in by_id(doc["nodes"])
    assert doc["summary"]["links"] == topo.graph.number_of_edges()
    assert doc["summary"]["total"] == len(topo.nodes) == 4  # echo never spoke


def test_state_comes_from_the_health_engine_when_there_is_one(topology: Topology) -> None:
    states = {"alpha": "flapping", "bravo": "unreachable"}
    doc = map_document(topology, Config(), lambda n: states.get(n, "online"), NOW)
    assert {n["id"]: n["state"] for n in doc["nodes"]} == states
    plain = map_document(topology, Config(), None, NOW)
    assert {n["id"]: n["state"] for n in plain["nodes"]} == {"alpha": "online", "bravo": "online"}
    topology.nodes["alpha"].online = False
    again = map_document(topology, Config(), None, NOW)
    assert by_id(again["nodes"])["alpha"]["state"] == "offline"
    assert again["summary"]["online"] == 2


async def test_map_is_cached_like_the_other_whole_network_responses(served: Served) -> None:
    first = await served.get_json("/api/v1/map")
    served.ctx.topology.nodes["alpha"].online = False
    assert await served.get_json("/api/v1/map") == first  # same clock: cached
    served.ctx.clock = lambda: NOW + 2  # past the 1 s TTL
    again = await served.get_json("/api/v1/map")
    assert by_id(again["nodes"])["alpha"]["state"] == "offline"
    assert again["summary"]["online"] == 2


def grown(core: Core, extra: int) -> None:
    """`extra` more located nodes in a chain with wifi links, so the document is large."""
    for i in range(extra):
        add_node(core, f"g{i:03d}", 52.4 + i / 1000, 13.3, model="NanoStation")
    for i in range(extra - 1):
        core.apply(report(f"g{i:03d}", [{"peer": f"g{i + 1:03d}", "iface": "wlan0",
                                                 "kind": "wifi", "signal_dbm": -60 - i % 30}],
                                 clients=i % 5), NOW)


async def test_large_map_is_gzipped_for_clients_that_take_it(served: Served) -> None:
    grown(served.ctx.core, 40)
    resp = await served.client.get("/api/v1/map", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Vary"] == "Accept-Encoding"
    zipped = (await resp.json())["nodes"]
    plain = await served.client.get("/api/v1/map", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert (await plain.json())["nodes"] == zipped
    assert len(zipped) == 42


def test_renderer_reuses_fragments_and_matches_a_fresh_render(core: Core) -> None:
    topology = core.topology
    grown(core, 30)
    docs = Documents(topology, core.log.follow())
    config = Config()
    first = docs.map_json(config, None, NOW)
    assert first == MapRenderer().map_json(topology, config, None, NOW)
    # changes of every kind: a new link sample, a state, an info, a vanished node
    core.apply(report("g005", [{"peer": "g006", "iface": "wlan0", "kind": "wifi",
                                "signal_dbm": -88}], clients=9), NOW + 1)
    topology.nodes["g010"].online = False  # (changed without a change note)
    add_node(core, "g020", 52.0, 13.0, hostname="moved")
    del topology.nodes["g029"]
    states = {"g011": "silent"}
    second = docs.map_json(config, lambda n: states.get(n, "online"), NOW + 1)
    assert second == MapRenderer().map_json(topology, config,
                                            lambda n: states.get(n, "online"), NOW + 1)
    doc = json.loads(second)
    nodes = by_id(doc["nodes"])
    assert nodes["g020"]["name"] == "moved" and nodes["g020"]["lat"] == 52.0
    assert nodes["g011"]["state"] == "silent" and "g029" not in nodes
    assert pairs(doc)[("g005", "g006")]["quality"] == "poor"
    assert nodes["g005"]["clients"] == 9
    # new thresholds re-grade every pair, even unchanged ones
    strict = Config.model_validate({"installer": {"good_signal_dbm": -50,
                                                  "marginal_signal_dbm": -55}})
    third = json.loads(docs.map_json(strict, None, NOW + 1))
    assert {lk["quality"] for lk in third["links"] if lk["a"].startswith("g")} == {"poor"}


def test_renderer_notices_a_new_mechanism_with_equal_numbers(core: Core) -> None:
    topology = core.topology
    add_node(core, "h1", 52.1, 13.1)
    add_node(core, "h2", 52.2, 13.2)
    core.apply(report("h1", [{"peer": "h2", "iface": "eth0", "kind": "ethernet"}]), NOW)
    docs = Documents(topology, core.log.follow())
    first = json.loads(docs.map_json(Config(), None, NOW))
    assert pairs(first)[("h1", "h2")]["kind"] == "ethernet"
    # the cable goes, a tunnel comes: no metrics either way, so the samples compare equal
    later = NOW + 400
    core.apply(report("h1", [{"peer": "h2", "iface": "tun0", "kind": "vpn"}]), later)
    core.tick(later)
    assert [k.kind for k in topology.links if k.src == "h1"] == ["vpn"]
    second = json.loads(docs.map_json(Config(), None, later))
    assert pairs(second)[("h1", "h2")] == {"a": "h1", "b": "h2", "kind": "vpn",
                                           "quality": "unknown"}
