"""The pure state → public JSON conversions, without HTTP."""

from __future__ import annotations

import json

import pytest

from meshmon.model.core import Core
from meshmon.model.state import LinkKey, LinkSample, LinkState
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Link, Report, Status
from meshmon.web.documents import Documents
from meshmon.web.netjson import MAX_COST, link_cost, network_graph
from meshmon.web.public import (
    dump,
    link_counts,
    link_metrics,
    links_list,
    nodes_list,
    public_location,
    safe_text,
)
from tests.web.conftest import NOW


def info(public: bool, **loc: float) -> Info:
    return Info.model_validate({"v": 1, "node": "n1", "public": public, "location": loc or None})


def link(src: str, dst: str | None, **metrics: float) -> LinkState:
    peer = dst or "mac:02:00:00:00:00:01"
    wire = Link.model_validate(
        {
            "peer": dst,
            "peer_mac": None if dst else "02:00:00:00:00:01",
            "iface": "wlan0",
            "kind": "wifi",
            **metrics,
        }
    )
    sample = LinkSample.from_link(wire)
    return LinkState(LinkKey(src, peer, "wlan0", "wifi"), dst, wire.peer_mac, sample, 1.0, 2.0)


def test_public_node_location_is_exact() -> None:
    got = public_location(info(True, lat=52.123456, lon=13.654321, alt_m=30), 0.01)
    assert got == {"lat": 52.123456, "lon": 13.654321, "alt_m": 30}


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        (0.01, {"lat": 52.12, "lon": 13.65, "approximate": True}),
        (0.1, {"lat": 52.1, "lon": 13.7, "approximate": True}),
        (0.25, {"lat": 52.0, "lon": 13.75, "approximate": True}),
        (0, None),
    ],
)
def test_private_node_location_is_snapped_without_altitude(grid: float, expected: object) -> None:
    assert public_location(info(False, lat=52.123456, lon=13.654321, alt_m=30), grid) == expected


def test_negative_coordinates_snap_to_the_nearest_grid_point() -> None:
    got = public_location(info(False, lat=-33.868819, lon=-151.209295), 0.01)
    assert got == {"lat": -33.87, "lon": -151.21, "approximate": True}


def test_no_info_or_no_location_gives_none() -> None:
    assert public_location(None, 0.01) is None
    assert public_location(info(True), 0.01) is None


@pytest.mark.parametrize(
    "text",
    ["10.0.0.1", "host-192.168.1.20", "aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF", "c4e98405ab12",
     "fe80::1", "2001:db8:0:1::5", "me@example.org"],
)  # fmt: skip
def test_safe_text_drops_addresses(text: str) -> None:
    assert safe_text(text) is None


@pytest.mark.parametrize(
    "text", ["alpha-roof", "OpenWrt 23.05.2", "gluon-v2023.2.1", "wlan0", "bat0", "TP-Link CPE510"]
)
def test_safe_text_keeps_ordinary_names(text: str) -> None:
    assert safe_text(text) == text


def test_link_metrics_keeps_absent_metrics_absent() -> None:
    got = link_metrics(link("a", "b", signal_dbm=-70, tq=0, chains_dbm=[-71, -72]).sample)
    assert got == {"signal_dbm": -70, "tq": 0, "chains_dbm": [-71, -72]}


def test_link_counts_ignore_unresolved_links() -> None:
    topo = Topology()
    for src, peers in {"a": ["b", "c", None], "b": ["a"]}.items():
        topo.apply_report(Report.model_validate({
            "v": 1, "node": src, "ts": NOW, "seq": 1, "interval_s": 30,
            "links": [{"peer": p, "peer_mac": None if p else "02:00:00:00:00:01",
                       "iface": "wlan0", "kind": "wifi"} for p in peers],
        }), NOW)  # fmt: skip
    assert len(topo.links) == 4
    assert link_counts(topo.graph) == {"a": (3, 2), "b": (2, 1), "c": (1, 1)}


@pytest.mark.parametrize(
    ("metrics", "cost", "text"),
    [
        ({"etx": 1.5, "tq": 10, "signal_dbm": -90}, 1.5, "etx 1.5"),
        ({"cost": 512}, 2.0, "cost 512"),
        ({"tq": 255}, 1.0, "tq 255"),
        ({"tq": 0}, MAX_COST, "tq 0"),
        ({"lq": 0.5, "nlq": 1.0}, 2.0, "lq 0.5 nlq 1"),
        ({"signal_dbm": -50}, 1.0, "signal -50 dBm"),
        ({"signal_dbm": -75}, 5.5, "signal -75 dBm"),
        ({"signal_dbm": -80, "signal_avg_dbm": -95}, 10.0, "signal -95 dBm"),
        ({}, 1.0, "no metric"),
    ],
)
def test_link_cost_prefers_routing_metrics_then_signal(
    metrics: dict[str, float], cost: float, text: str
) -> None:
    assert link_cost(link("a", "b", **metrics).sample) == (pytest.approx(cost), text)


def test_renderers_match_the_plain_conversions_and_follow_changes(core: Core) -> None:
    topology = core.topology
    docs = Documents(topology, core.log.follow())

    def check() -> None:
        assert json.loads(docs.nodes_json(0.01, None)) == {"nodes": nodes_list(topology, 0.01)}
        assert json.loads(docs.links_json()) == {"links": links_list(topology)}
        assert json.loads(docs.graph_json(0.01)) == network_graph(topology, 0.01)

    check()
    before = json.loads(docs.links_json())["links"]
    core.apply(
        Report.model_validate({
            "v": 1, "node": "bravo", "ts": NOW + 30, "seq": 10, "interval_s": 30,
            "links": [{"peer": "alpha", "iface": "wlan1", "kind": "wifi", "signal_dbm": -70}],
        }),
        NOW + 30,
    )  # fmt: skip
    core.apply(Status(v=1, node="charlie", online=False), NOW + 31)
    check()
    after = json.loads(docs.links_json())["links"]
    ba = next(lk for lk in after if (lk["src"], lk["dst"]) == ("bravo", "alpha"))
    assert ba["metrics"] == {"signal_dbm": -70} and ba["last_seen"] == NOW + 30
    assert after != before
    graph = json.loads(docs.graph_json(0.01))
    charlie = next(n for n in graph["nodes"] if n["id"] == "charlie")
    assert charlie["properties"]["online"] is False
    core.tick(NOW + 10_000)  # every link ages out
    check()
    assert json.loads(docs.links_json()) == {"links": []}
    assert json.loads(docs.graph_json(0.01))["links"] == []


@pytest.mark.parametrize(
    "value",
    [
        {"a": "ff-node-1", "signal_dbm": -61.5, "tq": 200, "ok": True, "none": None},
        [1, 2.5, 1e16, 1e-7, -0.0, 'é ü " \\ \n \x01 \u2028', {"nested": [{}, []]}],
        "plain", 3, 0.1 + 0.2, None, False, {"ü": "→ ☂"},
    ],
)
def test_dump_is_compact_json_dumps(value: object) -> None:
    assert dump(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def test_dump_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        dump({"when": object()})
