"""The whole-network documents kept up to date from the core's change log equal a fresh
render after any sequence of real changes, and re-encode only what changed."""

from __future__ import annotations

import random
from typing import Any

import pytest

from meshmon.config import Config
from meshmon.model.core import Core, CoreSettings
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Report, Status
from meshmon.web import mapdata, netjson, public
from meshmon.web.documents import Documents
from meshmon.web.mapdata import MapRenderer
from meshmon.web.netjson import NetJsonRenderer
from meshmon.web.public import LinksRenderer, NodesRenderer
from tests.web.conftest import NOW

NODES = [f"n{i:02d}" for i in range(12)]
GHOST = "ghost-1"
"""a peer that links point at but that never speaks (a router without the agent)"""
KINDS = ("wifi", "batman", "ethernet", "vpn")
CONFIG = Config()
GRID = CONFIG.privacy.coarsen_grid_deg


def mac(node: str, n: int = 1) -> str:
    return f"02:00:00:00:{int(node[1:]):02x}:{n:02x}"


def random_info(rnd: random.Random, node: str) -> Info:
    located = rnd.random() < 0.8
    return Info.model_validate({
        "v": 1, "node": node, "hostname": f"{node}-{rnd.choice(['roof', 'home'])}",
        "model": rnd.choice(["NanoStation M5", "CPE510", None]),
        "public": rnd.random() < 0.7, "gateway": node == "n00",
        "location": {"lat": 52.5 + rnd.random() / 10, "lon": 13.4 + rnd.random() / 10}
        if located else None,
        "antennas": [{"azimuth_deg": rnd.randrange(360), "width_deg": 60}]
        if rnd.random() < 0.3 else [],
        "macs": [mac(node)] if rnd.random() < 0.8 else [mac(node), mac(node, 2)],
    })  # fmt: skip


def random_link(rnd: random.Random, src: str) -> dict[str, Any]:
    peer = rnd.choice([n for n in [*NODES, GHOST] if n != src])
    link: dict[str, Any] = {"iface": rnd.choice(["wlan0", "wlan1", "eth0"]),
                            "kind": rnd.choice(KINDS)}
    if peer != GHOST and rnd.random() < 0.3:
        link["peer_mac"] = mac(peer)  # resolved only once the peer announced this MAC
    else:
        link["peer"] = peer
    if link["kind"] == "wifi":
        link.update(signal_dbm=rnd.choice([-55, -68, -79, -88]), snr_db=rnd.randrange(5, 40),
                    expected_tput_mbps=rnd.choice([None, 12.5, 80.0]))
    elif link["kind"] == "batman":
        link["tq"] = rnd.choice([0, 90, 150, 255])
    elif rnd.random() < 0.5:
        link["etx"] = rnd.choice([1.0, 2.5, 7.0])
    return link


class Walk:
    """Random real messages into a core, with the collector's clock."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.core = Core(CoreSettings(offline_after_intervals=3, link_timeout_s=120))
        self.topo = self.core.topology
        self.now = NOW
        self.seq = 0
        self.last_links: dict[str, list[dict[str, Any]]] = {}

    def step(self) -> str:
        rnd, core, topo = self.rnd, self.core, self.topo
        self.now += rnd.choice([0.5, 5.0, 40.0])
        node = rnd.choice(NODES)
        roll = rnd.random()
        if roll < 0.6:
            self.seq += 1
            if node in self.last_links and rnd.random() < 0.3:
                links = self.last_links[node]  # the same numbers again, a new report
            else:
                links = [random_link(rnd, node) for _ in range(rnd.randrange(0, 5))]
            self.last_links[node] = links
            core.apply(Report.model_validate({
                "v": 1, "node": node, "ts": self.now, "seq": self.seq, "interval_s": 30,
                "clients": rnd.randrange(5), "sys": {"uptime_s": self.seq}, "links": links,
            }), self.now)  # fmt: skip
            return f"report {node}"
        if roll < 0.75:
            core.apply(random_info(rnd, node), self.now)
            return f"info {node}"
        if roll < 0.85:
            online = rnd.random() < 0.5
            core.apply(Status(v=1, node=node, online=online), self.now)
            return f"status {node} {online}"
        if roll < 0.97:
            self.now += rnd.choice([60.0, 130.0])
            core.tick(self.now)
            return "expire"
        saved_nodes, saved_links = list(topo.nodes.values()), list(topo.links.values())
        core.restore(saved_nodes, saved_links, core.snapshot(), self.now)
        return "restore"


def documents(core: Core, **options: Any) -> Documents:
    """The documents of `core`, following its change log from now on."""
    return Documents(core.topology, core.log.follow(), **options)


def fresh(topo: Topology, state_of: Any, now: float) -> tuple[bytes, ...]:
    return (
        NodesRenderer().nodes_json(topo, GRID, state_of),
        LinksRenderer().links_json(topo),
        NetJsonRenderer().graph_json(topo, GRID),
        MapRenderer().map_json(topo, CONFIG, state_of, now),
    )


def kept(docs: Documents, state_of: Any, now: float) -> tuple[bytes, ...]:
    return (
        docs.nodes_json(GRID, state_of),
        docs.links_json(),
        docs.graph_json(GRID),
        docs.map_json(CONFIG, state_of, now),
    )


@pytest.mark.parametrize("seed", range(6))
def test_kept_documents_equal_a_fresh_render_after_any_changes(seed: int) -> None:
    walk = Walk(seed)
    docs = documents(walk.core)
    states = {n: "online" for n in NODES}
    state_of = states.__getitem__
    compared = 0
    history: list[str] = []
    unresolved = ghosts = 0
    for _ in range(400):
        history.append(walk.step())
        unresolved += any(link.dst is None for link in walk.topo.links.values())
        ghosts += GHOST in walk.topo.graph
        if walk.rnd.random() < 0.5:
            docs.catch_up()  # a collector tick between messages
        if walk.rnd.random() < 0.1:
            states[walk.rnd.choice(NODES)] = walk.rnd.choice(["online", "silent", "offline"])
        if walk.rnd.random() < 0.4:
            got, want = kept(docs, state_of, walk.now), fresh(walk.topo, state_of, walk.now)
            names = ("nodes", "links", "topology", "map")
            for name, g, w in zip(names, got, want, strict=True):
                assert g == w, f"{name} differs after: {history[-8:]}"
            compared += 1
    assert compared > 100
    # the walk did reach the cases that matter
    assert "restore" in history and "expire" in history
    assert unresolved > 0 and ghosts > 0


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls = [0]
    original = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_report_re_encodes_only_its_own_links_and_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walk = Walk(99)
    for _ in range(300):
        walk.step()
    topo, core = walk.topo, walk.core
    for node in NODES:  # every node known and located, with links to several peers
        core.apply(Info.model_validate({
            "v": 1, "node": node, "public": True, "macs": [mac(node)],
            "location": {"lat": 52.5 + int(node[1:]) / 100, "lon": 13.4}}), walk.now)
        core.apply(Report.model_validate({
            "v": 1, "node": node, "ts": walk.now, "seq": 1000, "interval_s": 30,
            "links": [{"peer": p, "iface": "wlan0", "kind": "wifi", "signal_dbm": -60}
                      for p in NODES if p != node][:4]}), walk.now)  # fmt: skip
    docs = documents(core)
    kept(docs, None, walk.now)
    pair_entries = count_calls(monkeypatch, mapdata, "pair_entry")
    link_objects = count_calls(monkeypatch, netjson, "_link_object")
    public_links = count_calls(monkeypatch, public, "public_link")
    node_reports = count_calls(monkeypatch, public, "report_fields")
    docs.catch_up()
    kept(docs, None, walk.now)
    assert pair_entries == link_objects == public_links == node_reports == [0]
    # one node reports new numbers on its four links
    core.apply(Report.model_validate({
        "v": 1, "node": "n03", "ts": walk.now + 1, "seq": 1001, "interval_s": 30,
        "links": [{"peer": p, "iface": "wlan0", "kind": "wifi", "signal_dbm": -71}
                  for p in ("n00", "n01", "n02", "n04")]}), walk.now + 1)  # fmt: skip
    docs.catch_up()
    assert (pair_entries, link_objects, public_links, node_reports) == ([4], [4], [4], [1])
    assert kept(docs, None, walk.now + 1) == fresh(topo, None, walk.now + 1)


def test_a_document_nobody_asks_for_stops_following_changes() -> None:
    walk = Walk(3)
    for _ in range(100):
        walk.step()
    clock = [0.0]
    docs = documents(walk.core, idle_s=60, monotonic=lambda: clock[0])
    docs.graph_json(GRID)
    assert docs.netjson.built and not docs.map.built
    clock[0] = 59.0
    docs.catch_up()
    assert docs.netjson.built
    clock[0] = 61.0
    docs.catch_up()
    assert not docs.netjson.built  # fragments dropped
    for _ in range(50):
        walk.step()
    assert docs.graph_json(GRID) == NetJsonRenderer().graph_json(walk.topo, GRID)
    assert docs.netjson.built


def test_a_renderer_that_fails_to_follow_is_rebuilt_not_stale(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    walk = Walk(5)
    for _ in range(100):
        walk.step()
    docs = documents(walk.core)
    docs.map_json(CONFIG, None, walk.now)

    def broken(*_args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(docs.map, "apply", broken)
    walk.core.apply(Report.model_validate({
        "v": 1, "node": "n01", "ts": walk.now, "seq": 10_000, "interval_s": 30,
        "links": [{"peer": "n02", "iface": "wlan0", "kind": "wifi", "signal_dbm": -77}]}),
        walk.now)  # fmt: skip
    docs.catch_up()  # what the collector calls after each ingest batch: must not raise
    assert not docs.map.built
    assert "MapRenderer could not follow the changes" in caplog.text
    monkeypatch.undo()
    assert docs.map_json(CONFIG, None, walk.now) == MapRenderer().map_json(
        walk.topo, CONFIG, None, walk.now)
