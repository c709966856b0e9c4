"""A silent bridge end to end: a real `meshmon-bridge` process publishes through a real
Mosquitto into a collector with a real webhook receiver, once importing a community's map
(part of Leipzig's real meshviewer.json), once polling radios that snmpsim serves from
LibreNMS' recordings.

SIGKILLed, its last will makes its nodes `unmonitored` — API, map (legend, marker,
details) and /admin in Chromium — with exactly one `bridge_silent` alert and no outage,
also after every node's own timeout; restarted, the alert resolves, the nodes follow what
it publishes and no outage is sent; then a node the map shows offline, or a radio whose
snmpsim is stopped while the bridge runs, is one outage naming it."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import networkx as nx
from meshmon_bridge.sources.freifunk import meshviewer

from meshmon.service import Service
from tests import servers, snmpsim
from tests.agent_process import stop
from tests.bridge.ff_helpers import (
    load_snapshot,
    meshviewer_bridge_config,
    next_snapshot,
    write_atomically,
)
from tests.bridge.helpers import start_bridge, write_config
from tests.browser import DESKTOP, chromium, console_errors, wait_for_js
from tests.integration.harness import collector_with_webhook, eventually, get_json
from tests.integration.scripted_mesh import WebhookReceiver

BRIDGE = "ff-map"
INTERVAL_S = 1
"""the bridge reads the map every second: its nodes' own timeout is 3 s"""
TOKEN = "bridge-e2e-token"
SIZE = 20


def leipzig_part() -> tuple[dict[str, Any], str]:
    """Leipzig's map cut to SIZE online nodes around a gateway server (breadth first, so
    connected), and a leaf of it that is no gateway (by snapshot node id)."""
    snap = load_snapshot("leipzig")
    parsed = meshviewer.parse(snap, "leipzig", time.time())
    online = {n.key for n in parsed.nodes if n.online}
    servers_ = sorted(n.key for n in parsed.nodes if n.gateway and n.online)
    graph: nx.Graph[str] = nx.Graph()
    graph.add_edges_from((lk.source, lk.target) for lk in parsed.links
                         if lk.source in online and lk.target in online)
    part = set(list(nx.bfs_tree(graph, servers_[0], sort_neighbors=sorted))[:SIZE])
    sub = graph.subgraph(part)
    leaf = min(n for n in part if sub.degree(n) == 1 and n not in servers_)
    snap["nodes"] = [n for n in snap["nodes"] if n["node_id"] in part]
    snap["links"] = [lk for lk in snap["links"] if lk["source"] in part and lk["target"] in part]
    return snap, leaf


def states(service: Service) -> dict[str, str]:
    """node → its condition, as the API says it."""
    health = service.core.health
    return {n: str(health.node_condition(n)) for n in service.topology.nodes}


async def api(service: Service, path: str) -> Any:
    got = await get_json(service.http_url + path)
    assert got["status"] == 200, got
    return got["body"]


async def test_a_killed_bridge_is_one_alert_and_its_nodes_wait_for_it(
        tmp_path: Path, mosquitto: servers.Server) -> None:
    snap, leaf = leipzig_part()
    map_file = tmp_path / "meshviewer.json"
    write_atomically(map_file, snap)
    hook = WebhookReceiver()
    await hook.start()
    service = await collector_with_webhook(tmp_path, mosquitto.port, hook.url,
                                           http={"admin_token": TOKEN}, map={"tile_url": ""})
    config = meshviewer_bridge_config(tmp_path / "bridge.toml", BRIDGE, mosquitto.port,
                                      map_file, INTERVAL_S)
    bridge = start_bridge(config, tmp_path / "bridge-1.log")
    try:
        async def all_online() -> bool:
            return list(states(service).values()).count("online") == SIZE

        await eventually(all_online, 30, "every node of the map online in the collector")
        ids = {n.info.hostname: n.id for n in service.topology.nodes.values() if n.info}
        leaf_id = ids[next(n["hostname"] for n in snap["nodes"] if n["node_id"] == leaf)]

        # SIGKILL: nothing is said but the last will
        bridge.send_signal(signal.SIGKILL)
        bridge.wait(10)

        async def alerted() -> bool:
            return bool(hook.of("bridge_silent", "firing"))

        await eventually(alerted, 10, "the bridge_silent alert")
        # the nodes' own timeouts (3 s) pass: nothing else is sent
        await asyncio.sleep(3 * INTERVAL_S + 2)
        assert [(a["kind"], a["status"]) for a in hook.received] == [
            ("bridge_silent", "firing")]
        alert = hook.received[0]
        assert alert["cause"] == {"nodes": [BRIDGE], "links": []}
        assert sorted(alert["affected"]) == sorted(service.topology.nodes)
        assert alert["summary"].startswith(f"{BRIDGE} silent: {SIZE} devices unmonitored")
        nodes = (await api(service, "/api/v1/nodes"))["nodes"]
        assert {n["state"] for n in nodes} == {"unmonitored"} and len(nodes) == SIZE
        assert {json.dumps(n["source"]) for n in nodes} == {
            json.dumps({"kind": "meshviewer", "via": BRIDGE})}
        assert (await api(service, "/api/v1/outages"))["outages"] == []
        assert (await api(service, "/api/v1/bridges"))["bridges"] == [{
            "id": BRIDGE, "online": False, "since": service.topology.bridges.states[
                BRIDGE].since, "last_seen": service.topology.bridges.states[BRIDGE].last_seen,
            "nodes": SIZE, "kinds": {"meshviewer": SIZE}, "unmonitored": SIZE}]
        await pages_show_the_silent_bridge(service, leaf_id)

        # back: the alert resolves, the nodes follow what the bridge publishes
        bridge = start_bridge(config, tmp_path / "bridge-2.log")

        async def resolved() -> bool:
            return bool(hook.of("bridge_silent", "resolved"))

        await eventually(resolved, 20, "the bridge_silent recovery notice")
        await eventually(all_online, 20, "every node online again")
        await asyncio.sleep(3 * INTERVAL_S + 0.5)  # a whole grace: nothing else is sent
        assert [(a["kind"], a["status"]) for a in hook.received] == [
            ("bridge_silent", "firing"), ("bridge_silent", "resolved")]
        assert hook.received[1]["id"] == alert["id"]

        # while the bridge runs, a node the map shows offline is an outage naming it
        write_atomically(map_file, next_snapshot(snap, {leaf}))

        async def outage() -> bool:
            return bool(hook.of("outage", "firing"))

        await eventually(outage, 20, "an outage alert")
        await asyncio.sleep(2 * INTERVAL_S)
        outages = hook.of("outage")
        assert len(outages) == 1 and outages[0]["cause"] == {"nodes": [leaf_id], "links": []}
        assert len(hook.received) == 3
        assert states(service)[leaf_id] == "offline"

        # a planned restart: the bridge id is a known name for a silence, a typo is not
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
            for name, status in ((BRIDGE, 201), (BRIDGE + "x", 422)):
                async with s.post(f"{service.http_url}/api/v1/silences",
                                  json={"node": name, "duration_s": 600}) as r:
                    assert r.status == status, await r.text()
                    if status == 422:
                        assert (await r.json())["did_you_mean"] == BRIDGE
    finally:
        stop(bridge)
        await service.stop()
        await hook.stop()
    for log in ("bridge-1.log", "bridge-2.log"):
        assert "Traceback" not in (tmp_path / log).read_text()


async def pages_show_the_silent_bridge(service: Service, node: str) -> None:
    """The map draws the nodes as unmonitored (legend, marker, details with their source);
    /admin lists the bridge as silent with its count and shows its incident."""
    base = service.http_url
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)
        errors = console_errors(page)
        await page.goto(f"{base}/")
        await page.locator("body[data-ready='1']").wait_for(timeout=20_000)
        assert "unmonitored" in await page.locator("#legend").inner_text()
        legend_dot = page.locator("#legend .dot.state-unmonitored")
        assert await legend_dot.evaluate("e => getComputedStyle(e).borderStyle") == "dashed"
        assert await page.evaluate(f"window.meshmonMap.stateOf({json.dumps(node)})") == (
            "unmonitored")
        await page.evaluate(f"window.meshmonMap.open({json.dumps(node)})")
        await wait_for_js(page, "document.querySelector('#details dl')?.innerText"
                          f".includes('meshviewer via {BRIDGE}')", timeout=10_000)
        details = await page.locator("#details").inner_text()
        assert "Unmonitored" in details and "is silent" in details
        assert errors == []

        await page.goto(f"{base}/install/{node}")
        await wait_for_js(page, "document.querySelector('#status')?.innerText"
                          ".includes('is unmonitored')", timeout=10_000)
        assert errors == []

        await page.goto(f"{base}/admin?token={TOKEN}")
        await page.locator("body[data-ready='1']").wait_for(timeout=20_000)
        row = page.locator(f"#bridges tr[data-bridge='{BRIDGE}']")
        assert await row.get_attribute("data-online") == "false"
        cells = await row.locator("td").all_inner_texts()
        assert [cells[0], cells[1], cells[3], cells[4], cells[5]] == [
            BRIDGE, "silent", str(SIZE), f"meshviewer {SIZE}", str(SIZE)]
        # its incident card counts devices unmonitored, not nodes cut off
        card = page.locator("#incidents article[data-kind='bridge_silent']")
        assert await card.locator(".cause").inner_text() == BRIDGE
        assert await card.locator(".count").inner_text() == f"{SIZE} devices unmonitored"
        assert "meshmon-bridge is gone" in await card.locator(".why").inner_text()
        assert await card.locator(".actions a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))") == ["#bridges-h"]
        assert errors == []


SNMP_DEVICES = {"hill-5-ap": "airos", "tower-2-bh": "mimosa", "park-ap": "unifi"}
"""node id → the LibreNMS recording snmpsim answers for it"""
SILENCED = "park-ap"
"""the radio with an snmpsim of its own, stopped while the bridge runs"""
SNMP_INTERVAL_S = 2
"""a poll of the three devices through snmpsim fits well inside it, even on a busy CI"""


async def test_a_killed_snmp_bridge_is_one_alert_and_a_radio_silent_under_it_one_outage(
        tmp_path: Path, mosquitto: servers.Server) -> None:
    source = Path(__file__).parents[1] / "data" / "librenms" / "snmprec"
    others = {n: r for n, r in SNMP_DEVICES.items() if n != SILENCED}
    data = snmpsim.recordings(source, tmp_path / "snmprec", others)
    alone = snmpsim.recordings(source, tmp_path / "snmprec-alone",
                               {SILENCED: SNMP_DEVICES[SILENCED]})
    # both index side by side; (the probe runs asyncio.run: not on this loop)
    simulators = [snmpsim.launch_snmpsim(data), snmpsim.launch_snmpsim(alone)]
    try:
        for simulator, probe in zip(simulators, ("hill-5-ap", SILENCED), strict=True):
            await asyncio.to_thread(snmpsim.wait_until_answering, simulator, probe)
    except Exception:
        for simulator in simulators:
            simulator.stop()
        raise
    hook = WebhookReceiver()
    await hook.start()
    service = await collector_with_webhook(tmp_path, mosquitto.port, hook.url)
    # the silenced radio: a missed poll is one timeout, two in a row publish it offline
    body = "".join(f'[[snmp]]\nhost = "127.0.0.1"\nport = {simulators[node == SILENCED].port}\n'
                   f'community = "{node}"\nnode = "{node}"\ninterval_s = {SNMP_INTERVAL_S}\n'
                   + ("timeout_s = 1\nretries = 0\noffline_after = 2\n"
                      if node == SILENCED else "")
                   for node in SNMP_DEVICES)
    config = write_config(tmp_path / "bridge.toml", "snmp-west", mosquitto.port, body)
    bridge = start_bridge(config, tmp_path / "bridge-1.log")
    try:
        async def all_online() -> bool:
            got = states(service)
            return sorted(got) == sorted(SNMP_DEVICES) and set(got.values()) == {"online"}

        await eventually(all_online, 30, "the three radios online in the collector")
        bridge.send_signal(signal.SIGKILL)
        bridge.wait(10)

        async def alerted() -> bool:
            return bool(hook.of("bridge_silent", "firing"))

        await eventually(alerted, 10, "the bridge_silent alert")
        await asyncio.sleep(3 * SNMP_INTERVAL_S + 1)  # past every radio's own timeout
        assert [(a["kind"], a["status"]) for a in hook.received] == [
            ("bridge_silent", "firing")]
        assert hook.received[0]["summary"].startswith("snmp-west silent: 3 devices unmonitored")
        assert sorted(hook.received[0]["affected"]) == sorted(SNMP_DEVICES)
        nodes = (await api(service, "/api/v1/nodes"))["nodes"]
        assert [(n["id"], n["state"], n["source"]) for n in nodes] == [
            (node, "unmonitored", {"kind": "snmp", "via": "snmp-west"})
            for node in sorted(SNMP_DEVICES)]

        bridge = start_bridge(config, tmp_path / "bridge-2.log")

        async def resolved() -> bool:
            return bool(hook.of("bridge_silent", "resolved"))

        await eventually(resolved, 20, "the bridge_silent recovery notice")
        await eventually(all_online, 20, "the radios online again")
        await asyncio.sleep(3 * SNMP_INTERVAL_S + 0.5)  # a whole grace: nothing else
        assert [(a["kind"], a["status"]) for a in hook.received] == [
            ("bridge_silent", "firing"), ("bridge_silent", "resolved")]
        assert set(states(service).values()) == {"online"}

        # a radio stops answering while its bridge runs: one outage naming it
        simulators[1].stop()

        async def outage() -> bool:
            return bool(hook.of("outage", "firing"))

        await eventually(outage, 20, "an outage alert for the silenced radio")
        await asyncio.sleep(SNMP_INTERVAL_S)  # another round: nothing more
        outages = hook.of("outage")
        assert len(outages) == 1 and outages[0]["cause"] == {"nodes": [SILENCED], "links": []}
        assert len(hook.received) == 3
        assert states(service) == {**{n: "online" for n in others}, SILENCED: "offline"}
    finally:
        stop(bridge)
        await service.stop()
        await hook.stop()
        for simulator in simulators:
            simulator.stop()
        snmpsim.remove(data)
        snmpsim.remove(alone)
    for log in ("bridge-1.log", "bridge-2.log"):
        assert "Traceback" not in (tmp_path / log).read_text()
