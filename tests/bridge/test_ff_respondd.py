"""respondd over real UDP on loopback: Gluon's captured answers, a whole community's nodes
made from its snapshot (asked by unicast), retries, silence, and hostile datagrams."""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshmon_bridge.sources.freifunk import respondd_data
from meshmon_bridge.sources.freifunk.respondd import ResponddSource, ResponddTable

from meshmon.model import wire
from tests.bridge.ff_helpers import (
    DATA,
    ID_KEY,
    ODD_JSON,
    assert_public_ids,
    by_node,
    context,
    load_snapshot,
    published,
)
from tests.bridge.respondd_responder import Responder, deflate, gluon_answers

CAPTURES = DATA / "respondd"


def source(addresses: list[str], **keys: Any) -> ResponddSource:
    table = ResponddTable(addresses=addresses, timeout_s=0.4, id_key=ID_KEY, **keys)
    return ResponddSource(table, context(Path.cwd()))


def v6(address: tuple[Any, ...]) -> str:
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def test_captured_answers_decode_as_yanic_reads_them() -> None:
    flated = respondd_data.decode((CAPTURES / "nodeinfo.flated").read_bytes())
    assert flated.node_id == "f81a67a5e9c1" and flated.statistics is None
    info = respondd_data.info_fields(flated.nodeinfo or {}, None)
    assert info["hostname"] == "Trillian" and info["model"] == "TP-Link TL-WDR4900 v1"
    nodeinfo = json.loads((CAPTURES / "nodeinfo.json").read_text())
    statistics = json.loads((CAPTURES / "statistics.json").read_text())
    # a plain (uncompressed) `nodeinfo` answer is the nodeinfo object itself
    assert respondd_data.decode(json.dumps(nodeinfo).encode()).nodeinfo == nodeinfo
    info = respondd_data.info_fields(nodeinfo, statistics)
    assert info["firmware"] == "2016.1.2+bremen1"  # yanic: gluon-v2016.1.2
    # its mesh VPN has an established peer (vpn06): an uplink node, not a gateway (yanic's
    # is_gateway is `nodeinfo.vpn`, which only the VPN server announces)
    assert info["gateway"] is False and info["tags"] == ["uplink"]
    server = respondd_data.info_fields({**nodeinfo, "vpn": True}, None)
    assert server["gateway"] is True and "tags" not in server
    assert info["location"] == {"lat": 53.079362250000006, "lon": 8.88002693}
    assert "f8:1a:67:a6:01:ea" in info["macs"] and "fa:1e:67:a6:01:ea" in info["macs"]
    assert "owner" not in info and "freifunk@example.com" not in json.dumps(info)
    report = respondd_data.report_fields(statistics, nodeinfo)
    assert report["clients"] == 35
    assert report["ifaces"] == [{"name": "bat0", "rx_bytes": 57861871176,
                                 "rx_packets": 66182267, "tx_bytes": 3669258403,
                                 "tx_packets": 26751682}]
    assert report["sys"] == {"uptime_s": 138355.13, "load": [0.48], "mem_total_kb": 126200,
                             "mem_avail_kb": 86452 + 2308 + 8596,
                             "rootfs_used_pct": 4.18}


@pytest.fixture
def leipzig() -> Iterator[tuple[dict[str, Any], Responder, dict[str, dict[str, Any]]]]:
    """Every online node of Freifunk Leipzig's snapshot but its busiest one (which stays
    silent), each on its own loopback address (127.0.1.N), plus the two captured Gluon
    answers on ::1."""
    snap = load_snapshot("leipzig")
    answers = gluon_answers(snap)
    busiest = max(answers, key=lambda k: sum(
        len(e["neighbours"]) for e in answers[k]["neighbours"]["batadv"].values()))
    del answers[busiest]
    pairs: list[tuple[tuple[Any, ...], bytes]] = [
        ((f"127.0.{1 + i // 250}.{1 + i % 250}", 0), deflate(answer))
        for i, answer in enumerate(answers.values())]
    captured = {
        "nodeinfo": json.loads((CAPTURES / "nodeinfo.json").read_text()),
        "statistics": json.loads((CAPTURES / "statistics.json").read_text())}
    pairs += [(("::1", 0), deflate(captured)),
              (("::1", 0), (CAPTURES / "nodeinfo.flated").read_bytes())]
    responder = Responder(pairs).start()
    yield snap, responder, answers
    responder.stop()


async def test_a_community_answers_by_unicast(leipzig: Any) -> None:
    snap, responder, answers = leipzig
    src = source([v6(a) for a in responder.addresses], node_prefix="ffl-")
    try:
        updates = await src.poll()
    finally:
        await src.close()
    nodes = by_node(published("respondd", updates))
    assert len(nodes) == len(answers) + 2 == 209
    assert_public_ids(list(nodes))
    assert all(n.startswith("ffl-") for n in nodes)
    ids = {key: src.ids.get(key) for key in [*answers, "f81a67a601ea", "f81a67a5e9c1"]}
    raw = {n["node_id"]: n for n in snap["nodes"]}
    mac_owner = {mac: key for key, a in answers.items()
                 for macs in a["nodeinfo"]["network"]["mesh"]["bat0"]["interfaces"].values()
                 for mac in macs}
    expected: Counter[tuple[str, str | None, str | None, int]] = Counter()
    for key, answer in answers.items():
        got = nodes[ids[key]]
        info: wire.Info = got["info"]
        assert got["status"].online is True
        assert info.hostname == raw[key]["hostname"] and info.owner is None
        assert info.gateway is raw[key]["is_gateway"]
        assert got["report"].clients == raw[key]["clients"]
        for entry in answer["neighbours"]["batadv"].values():
            for mac, metrics in entry["neighbours"].items():
                owner = mac_owner.get(mac)  # a node that never answered: left as a MAC
                expected[(ids[key], ids[owner] if owner else None, None if owner else mac,
                          metrics["tq"])] += 1
    got_links: Counter[tuple[str, str | None, str | None, int]] = Counter()
    for node_id, msgs in nodes.items():
        for link in msgs["report"].links if "report" in msgs else []:
            assert link.kind == "batman" and link.inactive_ms == 520
            got_links[(node_id, link.peer, link.peer_mac, link.tq)] += 1
    assert got_links == expected
    assert sum(1 for k in expected if k[1] is None) >= 10  # links to the silent node
    captured = nodes[ids["f81a67a601ea"]]
    assert captured["report"].clients == 35 and captured["info"].gateway is False
    assert captured["info"].tags == ["uplink"]
    assert "report" not in nodes[ids["f81a67a5e9c1"]]  # nodeinfo only
    assert nodes[ids["f81a67a5e9c1"]]["info"].hostname == "Trillian"
    text = json.dumps([m.model_dump(mode="json") for n in nodes.values() for m in n.values()])
    assert "@example" not in text  # owner contacts dropped


async def test_nodes_that_miss_a_request_are_asked_again_then_go_offline() -> None:
    snap = load_snapshot("ulm")
    answers = list(gluon_answers(snap).items())[:3]
    responder = Responder([(("127.0.2.1", 0), deflate(a)) for _, a in answers]).start()
    src = source([v6(a) for a in responder.addresses], unicast_retries=2, offline_after_s=0.3)
    try:
        first = await src.poll()
        assert {u.online for u in first} == {True} and len(first) == 3
        assert len(responder.taken()) == 3
        responder.drop_next[0] = 2  # its next two requests go unanswered
        started = time.monotonic()
        second = await src.poll()
        assert [u.online for u in second] == [True, True, True]  # the 2nd retry answered
        assert [r.index for r in responder.taken()].count(0) == 3
        assert time.monotonic() - started < 3 * 0.4 + 0.5
        responder.silent = {1}
        third = {u.node: u for u in await src.poll()}
        gone = src.ids.get(answers[1][0])
        assert third[gone].online is False and third[gone].info is None
        assert sum(u.online is True for u in third.values()) == 2
    finally:
        await src.close()
        responder.stop()


async def test_hostile_datagrams_are_counted_and_dropped() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb_bytes = bomb.compress(b"{" + b" " * (8 << 20)) + bomb.flush()
    good = gluon_answers(load_snapshot("ulm"))
    key, answer = next(iter(good.items()))
    responder = Responder([
        (("127.0.3.1", 0), b"\x00garbage\xff"),
        (("127.0.3.2", 0), bomb_bytes),
        (("127.0.3.3", 0), deflate([1, 2, 3])),  # type: ignore[arg-type]
        (("127.0.3.4", 0), deflate({"nodeinfo": {"hostname": "no node id"}})),
        (("127.0.3.5", 0), deflate({"nodeinfo": {"node_id": "a"}, "statistics": {
            "node_id": "b"}})),
        (("127.0.3.6", 0), deflate(answer)),
    ]).start()
    src = source([v6(a) for a in responder.addresses])
    try:
        updates = await src.poll()
    finally:
        await src.close()
        responder.stop()
    assert [u.node for u in updates] == [src.ids.get(key)]
    assert src.bad_answers == 5


def test_wifi_and_babel_neighbours_as_gluon_reports_them() -> None:
    """Gluon's `wifi` neighbours (signal, noise, inactive) and its babel mesh (link-local
    neighbours with costs; mesh interfaces listed by link-local address)."""
    alpha = respondd_data.Answer("02aa00000001", nodeinfo={
        "node_id": "02aa00000001", "hostname": "alpha",
        "network": {"mac": "02:aa:00:00:00:01",
                    "mesh": {"bat0": {"interfaces": {"wireless": ["02:aa:00:00:00:02"],
                                                     "tunnel": ["02:aa:00:00:00:03"]}}}}},
        neighbours={"node_id": "02aa00000001", "wifi": {"02:aa:00:00:00:02": {"neighbours": {
            "02:bb:00:00:00:01": {"signal": -61, "noise": -95, "inactive": 40}}}},
            "batadv": {"02:aa:00:00:00:02": {"neighbours": {
                "02:bb:00:00:00:01": {"tq": 201, "lastseen": 1.25, "best": True}}},
                "02:aa:00:00:00:03": {"neighbours": {
                    "02:dd:00:00:00:01": {"tq": 255, "lastseen": 0.1}}}}})
    bravo = respondd_data.Answer("02bb00000001", nodeinfo={
        "node_id": "02bb00000001", "hostname": "bravo", "software": {"babeld": {}},
        "network": {"mac": "02:bb:00:00:00:01",
                    "mesh": {"babel": {"interfaces": {"wireless": ["fe80::bb:1"]}}}}},
        neighbours={"node_id": "02bb00000001", "babel": {"mesh0": {
            "ll-addr": "fe80::bb:1", "protocol": "babel", "neighbours": {
                "fe80::cc:1": {"rxcost": 96, "txcost": 96, "cost": 96, "reachability": 65535},
                "fe80::ee:ff:fe00:7": {"rxcost": 256, "cost": 512},  # EUI-64: 02:ee:00:00:00:07
                "fe80::1234": {"rxcost": 96, "cost": 96}}}}})  # nobody's: dropped
    charlie = respondd_data.Answer("02cc00000001", nodeinfo={
        "node_id": "02cc00000001", "hostname": "charlie", "software": {"babeld": {}},
        "network": {"mac": "02:cc:00:00:00:01",
                    "mesh": {"babel": {"interfaces": {"other": ["fe80::cc:1"]}}}}})
    directory = respondd_data.Directory()
    for answer in (alpha, bravo, charlie):
        directory.learn(answer)
    ids = {"02aa00000001": "alpha", "02bb00000001": "bravo", "02cc00000001": "charlie"}

    def links_of(answer: respondd_data.Answer) -> list[dict[str, Any]]:
        nodeinfo = answer.nodeinfo or {}
        return respondd_data.links(answer, respondd_data.mesh_interfaces(nodeinfo),
                                   directory, ids.get)

    assert links_of(alpha) == [
        {"peer": "bravo", "iface": "wifi", "kind": "batman", "tq": 201, "inactive_ms": 1250},
        {"peer_mac": "02:dd:00:00:00:01", "iface": "vpn", "kind": "vpn", "tq": 255,
         "inactive_ms": 100},
        {"peer": "bravo", "iface": "wifi", "kind": "wifi", "signal_dbm": -61, "noise_dbm": -95,
         "inactive_ms": 40},
    ]
    assert links_of(bravo) == [
        {"peer": "charlie", "iface": "mesh0", "kind": "babel", "cost": 96, "rxcost": 96},
        {"peer_mac": "02:ee:00:00:00:07", "iface": "mesh0", "kind": "babel", "cost": 512,
         "rxcost": 256},
    ]
    report = respondd_data.report_fields({"traffic": {"rx": {"bytes": 5}}}, bravo.nodeinfo or {})
    assert report["ifaces"] == [{"name": "br-client", "rx_bytes": 5}]
    for answer in (alpha, bravo):
        wire.Report.model_validate({"v": 1, "node": ids[answer.node_id], "ts": 1, "seq": 0,
                                    "interval_s": 60, "links": links_of(answer)})


def _paths(doc: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in doc.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _paths(value, (*prefix, key))
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_odd_values_anywhere_in_an_answer_never_break_it(data: st.DataObject) -> None:
    answer = {"nodeinfo": json.loads((CAPTURES / "nodeinfo.json").read_text()),
              "statistics": json.loads((CAPTURES / "statistics.json").read_text()),
              "neighbours": {"node_id": "f81a67a601ea", "batadv": {"fa:1e:67:a6:01:ea": {
                  "neighbours": {"02:bb:00:00:00:01": {"tq": 200, "lastseen": 1.0}}}}}}
    for _ in range(data.draw(st.integers(1, 5))):
        path = data.draw(st.sampled_from(_paths(answer)))
        if path[-1] == "node_id":
            continue
        parent = answer
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = data.draw(ODD_JSON)
    try:
        decoded = respondd_data.decode(deflate(answer))
    except respondd_data.BadAnswer:
        return
    nodeinfo = decoded.nodeinfo if isinstance(decoded.nodeinfo, dict) else {}
    info = respondd_data.info_fields(nodeinfo, decoded.statistics)
    report = respondd_data.report_fields(decoded.statistics, nodeinfo)
    report["links"] = respondd_data.links(decoded, respondd_data.mesh_interfaces(nodeinfo),
                                          respondd_data.Directory(), lambda _: None)
    wire.Info.model_validate({"v": 1, "node": "n", **info})
    wire.Report.model_validate({"v": 1, "node": "n", "ts": 1, "seq": 0, "interval_s": 60,
                                **report})
