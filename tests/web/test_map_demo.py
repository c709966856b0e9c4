"""The public map and node list on the demo network, as a new user meets them.

833 Freifunk Bremen routers (713 located, 120 not: VPN servers and cellar routers) played
by the demo's simulated agents through a real Mosquitto into a real collector, and a real
Chromium at desktop and 390 px phone sizes. Three real outages: a leaf that cuts nobody
off loses power first, then a router without a location, then the node whose loss cuts
off the most (29 nodes behind it), so the banner must put the last, largest one first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import networkx as nx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from meshmon.demo.network import DemoNetwork, load_network
from meshmon.demo.simulator import Simulator
from meshmon.model.analysis import gateway_cuts
from meshmon.service import Service
from tests import servers
from tests.browser import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    chromium,
    console_errors,
    screenshot,
    wait_for_js,
)
from tests.integration.harness import collector_config, eventually, started

pytestmark = pytest.mark.asyncio(loop_scope="module")

READY = "document.body.dataset.ready === '1'"


@dataclass
class Demo:
    service: Service
    network: DemoNetwork
    url: str
    victim: str
    """the node whose loss cuts off the most"""
    cut_off: set[str]
    """who loses every gateway with it (from the snapshot's graph, by networkx)"""
    leaf: str
    """a node whose loss cuts nobody off; it fails first"""
    unlocated: str
    """a router without a location (not a server) that fails second: search, the banner
    and the list reach it"""

    def name(self, node_id: str) -> str:
        return self.network.node(node_id).hostname


def outage_plan(net: DemoNetwork) -> tuple[str, set[str], str, str]:
    """The victim (most cut off), what networkx says it cuts off, a located leaf elsewhere
    and an unlocated router whose loss cuts nobody off."""
    graph: nx.Graph[str] = nx.Graph()
    graph.add_edges_from((lk.source, lk.target) for lk in net.links)
    gateways = [n.id for n in net.nodes if n.gateway]
    cuts = gateway_cuts(graph.adj, gateways).node_cuts
    # a router, not a VPN server (the demo never fails those): Schlachthof_Dachboden
    victim = max(sorted(set(cuts) - set(gateways)), key=lambda n: len(cuts[n]))
    rest = graph.subgraph(set(graph) - {victim})
    reached: set[str] = set().union(*(c for c in nx.connected_components(rest)
                                      if c & set(gateways)))
    cut_off = set(rest) - reached
    near = cut_off | {victim} | set(graph.adj[victim])
    leaf = next(n.id for n in net.nodes
                if n.location is not None and not n.gateway and n.id not in cuts
                and graph.degree(n.id) == 1 and n.id not in near
                and not near & set(graph.adj[n.id]))
    unlocated = next(n.id for n in net.nodes if n.location is None and not n.gateway
                     and n.id not in cuts and n.id not in near)
    return victim, cut_off, leaf, unlocated


async def outages(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/api/v1/outages") as r:
        found: list[dict[str, Any]] = (await r.json())["outages"]
        return found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    mosquitto = servers.start_mosquitto()
    service: Service | None = None
    sim: Simulator | None = None
    task: asyncio.Task[None] | None = None
    try:
        config = collector_config(tmp_path_factory.mktemp("demo-map"), mosquitto.port,
                                  map={"tile_url": "", "refresh_s": 1})
        service = await started(config)
        net = load_network()
        victim, cut_off, leaf, unlocated = outage_plan(net)
        sim = Simulator(net, "127.0.0.1", mosquitto.port, interval_s=10,
                        outages_per_node_h=0, start_rate_per_s=1000)
        sim.start()
        task = asyncio.create_task(sim.run(None))
        topo = service.topology

        async def all_online() -> bool:
            return sum(n.online for n in topo.nodes.values()) == len(net.nodes)

        await eventually(all_online, 30, "the demo network online")
        await sim.take_down(leaf, 3600)  # older, but cuts nobody off
        url = service.http_url

        async def leaf_outage() -> bool:
            return any(o["cause"]["nodes"] == [leaf] for o in await outages(url))

        await eventually(leaf_outage, 15, "the outage of the leaf")
        await sim.take_down(unlocated, 3600)

        async def unlocated_outage() -> bool:
            return any(o["cause"]["nodes"] == [unlocated] for o in await outages(url))

        await eventually(unlocated_outage, 15, "the outage of the unlocated router")
        await sim.take_down(victim, 3600)

        async def victim_outage() -> bool:
            return any(o["cause"]["nodes"] == [victim] and set(o["affected"]) == cut_off
                       for o in await outages(url))

        await eventually(victim_outage, 20, "the outage of the victim with all it cuts off")
        yield Demo(service, net, url, victim, cut_off, leaf, unlocated)
    finally:
        if sim is not None:
            sim.stop()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if service is not None:
            await service.stop()
        mosquitto.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def open_map(browser: Browser, url: str, phone: bool = False) -> tuple[Page, list[str]]:
    if phone:
        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                            device_scale_factor=2)
    else:
        context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    errors = console_errors(page)
    await page.goto(url)
    if "/nodes" not in url:
        await wait_for_js(page, READY, timeout=20_000)
    return page, errors


# The colour of the nodes canvas at each node's dot centre ([r, g, b, a]), for the dots
# inside the visible map; the colours of the states from the page's own palette.
PIXELS = """ids => {
  const canvas = document.querySelector('.leaflet-nodes-pane canvas');
  const ctx = canvas.getContext('2d');
  const box = canvas.getBoundingClientRect();
  const area = document.getElementById('map').getBoundingClientRect();
  const out = {};
  for (const id of ids) {
    const p = meshmonMap.pointOf(id);
    if (!p || p.x < area.left + 8 || p.y < area.top + 8 || p.x > area.right - 8
        || p.y > area.bottom - 8) continue;
    const x = Math.round((p.x - box.left) * canvas.width / box.width);
    const y = Math.round((p.y - box.top) * canvas.height / box.height);
    out[id] = Array.from(ctx.getImageData(x, y, 1, 1).data);
  }
  return out;
}"""
PALETTE = """names => Object.fromEntries(names.map(n => [n,
  getComputedStyle(document.documentElement).getPropertyValue('--' + n).trim()]))"""


def rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def nearest(pixel: list[int], palette: dict[str, tuple[int, int, int]]) -> str:
    """The palette colour a pixel is (dots are 95 % opaque and anti-aliased: the dot
    below shows through a little); "" for a pixel no dot covers."""
    if pixel[3] < 128:
        return ""
    name, dist = min(((n, sum((p - c) ** 2 for p, c in zip(pixel, col, strict=False)))
                      for n, col in palette.items()), key=lambda nd: nd[1])
    return name if dist < 40 ** 2 else f"{name}?"


async def test_failed_and_cut_off_dots_are_drawn_on_top_at_every_zoom(
    demo: Demo, browser: Browser,
) -> None:
    page, errors = await open_map(browser, demo.url + "/")
    await wait_for_js(page, f"meshmonMap.stateOf({json.dumps(demo.victim)}) === 'offline'")
    await wait_for_js(page, "document.querySelector('#outages .cause') !== null")
    states = await page.evaluate("ids => ids.map(id => meshmonMap.stateOf(id))",
                                 sorted(demo.cut_off))
    assert set(states) == {"unreachable"}, states
    palette = {k: rgb(v) for k, v in (await page.evaluate(
        PALETTE, ["offline", "unreachable", "cause", "online", "gateway", "paper"])).items()}
    problems = [demo.victim, demo.leaf, *sorted(demo.cut_off)]
    opening = await page.evaluate("meshmonMap.zoom()")
    for zoom in (opening, opening - 2):
        await page.evaluate(f"meshmonMap.zoom({zoom})")
        await page.evaluate("new Promise(r => requestAnimationFrame(() => "
                            "requestAnimationFrame(r)))")
        pixels = await page.evaluate(PIXELS, problems)
        assert len(pixels) >= 20, f"only {len(pixels)} problem dots in view at zoom {zoom}"
        seen = {node: nearest(pixel, palette) for node, pixel in pixels.items()}
        # a problem dot may lie under another one (or its cause's black ring), never under
        # a healthy dot (green, white ring) or a gateway's ring
        covered = {node: (seen[node], pixels[node]) for node in seen
                   if seen[node] not in ("offline", "unreachable", "cause")}
        assert not covered, f"problem dots covered at zoom {zoom}: {covered}"
        assert seen[demo.victim] == "offline", pixels[demo.victim]
    await page.evaluate(f"meshmonMap.zoom({opening})")

    # one link count: the header's pairs, of which the map draws those with two located
    # ends (the legend says how many it cannot), and the API's directed links per pair
    summary = await page.text_content("#summary")
    pairs = demo.service.topology.graph.number_of_edges()
    assert summary is not None and summary.endswith(f", {pairs} links")
    drawn = await page.evaluate("meshmonMap.links")
    note = await page.text_content("#unlocated")
    assert note is not None and f"{pairs - drawn} of the links not drawn" in note
    async with aiohttp.ClientSession() as s, s.get(f"{demo.url}/api/v1/links") as r:
        directed = (await r.json())["links"]
    assert len({frozenset((lk["src"], lk["dst"])) for lk in directed}) == pairs
    await screenshot(page, "map-demo-desktop")
    assert errors == [], errors
    await page.context.close()


async def test_banner_puts_the_bigger_outage_first_and_every_entry_opens_its_node(
    demo: Demo, browser: Browser,
) -> None:
    found = await outages(demo.url)
    assert {o["cause"]["nodes"][0]: o["severity"] for o in found} == {
        demo.victim: "critical", demo.leaf: "warning", demo.unlocated: "warning",
    }  # no "critical" for nothing
    page, errors = await open_map(browser, demo.url + "/")
    entries = page.locator("#outages li.outage")
    await wait_for_js(page, "document.querySelectorAll('#outages li.outage').length === 3")
    texts = await entries.all_text_contents()
    assert texts[0].startswith("critical") and demo.name(demo.victim) in texts[0]
    assert f"cuts off {len(demo.cut_off)} nodes" in texts[0]
    for text, node in zip(texts[1:], (demo.leaf, demo.unlocated), strict=True):  # by start
        assert text.startswith("warning") and demo.name(node) in text
        assert "no other node cut off" in text

    # the router without a location opens its details and the map stays where it is
    view = "JSON.stringify([meshmonMap.zoom(), document.querySelector('.leaflet-map-pane')" \
           ".style.transform])"
    before = await page.evaluate(view)
    await entries.nth(2).locator("button.cause").click()
    await wait_for_js(page, f"document.querySelector('#details h2')?.textContent === "
                            f"{json.dumps(demo.name(demo.unlocated))}")
    assert await page.evaluate("location.hash") == f"#node={demo.unlocated}"
    await page.wait_for_selector("#details dl")  # its details came: a fly began long ago
    assert await page.evaluate(view) == before
    for entry, node in ((1, demo.leaf), (0, demo.victim)):
        await entries.nth(entry).locator("button.cause").click()
        await wait_for_js(page, f"document.querySelector('#details h2')?.textContent === "
                                f"{json.dumps(demo.name(node))}")
        assert await page.evaluate("location.hash") == f"#node={node}"
    details = page.locator("#details")
    await wait_for_js(page, "document.querySelector('#details .reason') !== null")
    reason = await details.locator(".reason").text_content()
    assert reason is not None and reason.startswith("Offline since ")
    assert f"the cause of an outage: {len(demo.cut_off)} nodes cut off" in reason

    # a cut-off node says by whom and since when, and shows no fresh-looking numbers
    behind = sorted(demo.cut_off)[0]
    await page.evaluate(f"meshmonMap.open({json.dumps(behind)})")
    await wait_for_js(page, "document.querySelector('#details .reason')?.textContent"
                            ".startsWith('Cut off since')")
    reason = await details.locator(".reason").text_content()
    assert reason is not None and f"by the outage of {demo.name(demo.victim)}" in reason
    assert await details.locator(".badges .pill").first.text_content() == "cut off"
    await page.wait_for_selector("#details h3")
    assert (await details.locator("h3").text_content() or "").endswith("as last heard")
    assert await details.locator(".pill.q-good, .pill.q-fair, .pill.q-poor").count() == 0
    assert "Uptime" not in (await details.locator("dl").text_content() or "")
    hrefs = await details.locator(".actions a").evaluate_all("as => as.map(a => a.href)")
    assert hrefs == [f"{demo.url}/install/{behind}", f"{demo.url}/node/{behind}",
                     f"{demo.url}/#node={behind}"]
    # the cause in the reason is a way to it
    await details.locator(".reason button").click()
    await wait_for_js(page, f"meshmonMap.selected() === {json.dumps(demo.victim)}")
    assert errors == [], errors
    await page.context.close()


async def test_search_finds_unlocated_nodes_by_id_and_the_url_names_the_open_node(
    demo: Demo, browser: Browser,
) -> None:
    page, errors = await open_map(browser, demo.url + "/")
    view = "JSON.stringify([meshmonMap.zoom(), document.querySelector('.leaflet-map-pane')" \
           ".style.transform])"
    before = await page.evaluate(view)
    await page.fill("#search", demo.unlocated)
    await page.wait_for_selector("#search-results:not([hidden]) li button")
    found = await page.locator("#search-results button").all_text_contents()
    assert any(f"({demo.unlocated}) · not on the map" in f or
               f.startswith(f"{demo.unlocated} · not on the map") for f in found), found
    await page.press("#search", "Enter")
    await wait_for_js(page, f"meshmonMap.selected() === {json.dumps(demo.unlocated)}")
    await page.wait_for_selector("#details dl")
    assert await page.text_content("#details h2") == demo.name(demo.unlocated)
    assert "not on the map" in (await page.text_content("#details .badges") or "")
    assert await page.evaluate(view) == before  # nothing to fly to: the map stays
    assert await page.evaluate("location.hash") == f"#node={demo.unlocated}"

    # back and forward step through what was opened
    await page.evaluate(f"meshmonMap.open({json.dumps(demo.victim)}, true)")
    await wait_for_js(page, f"location.hash === '#node={demo.victim}'")
    await page.go_back()
    await wait_for_js(page, f"meshmonMap.selected() === {json.dumps(demo.unlocated)}")
    await page.go_back()
    await wait_for_js(page, "meshmonMap.selected() === null")
    assert await page.locator("#details").is_hidden()
    await page.go_forward()
    await wait_for_js(page, f"meshmonMap.selected() === {json.dumps(demo.unlocated)}")
    await page.context.close()

    # a shared link opens the node's details and flies to it
    page, more = await open_map(browser, f"{demo.url}/#node={demo.victim}")
    await wait_for_js(page, f"document.querySelector('#details h2')?.textContent === "
                            f"{json.dumps(demo.name(demo.victim))}")
    await wait_for_js(page, "meshmonMap.zoom() >= 16", timeout=5_000)
    point = await page.evaluate(f"meshmonMap.pointOf({json.dumps(demo.victim)})")
    free = await page.evaluate("[document.getElementById('map').getBoundingClientRect(), "
                               "document.getElementById('details').getBoundingClientRect()]")
    assert free[0]["left"] < point["x"] < free[1]["left"]  # beside the panel, not under it
    assert errors == [] and more == [], errors + more
    await page.context.close()


NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


async def test_phone_reaches_every_outage_and_has_no_sideways_scroll(
    demo: Demo, browser: Browser,
) -> None:
    page, errors = await open_map(browser, demo.url + "/", phone=True)
    await wait_for_js(page, "document.querySelector('#outages .more') !== null")
    assert await page.locator("#outages li.outage").count() == 1  # the map keeps its room
    assert await page.text_content("#outages .more") == "and 2 more"
    assert await page.evaluate(NO_SIDEWAYS)
    await page.locator("#outages .more").tap()
    await wait_for_js(page, "document.querySelectorAll('#outages li.outage').length === 3")
    second = page.locator("#outages li.outage").nth(1).locator("button.cause")
    await second.scroll_into_view_if_needed()
    await second.tap()
    await wait_for_js(page, f"meshmonMap.selected() === {json.dumps(demo.leaf)}")
    sheet = await page.locator("#details").bounding_box()
    assert sheet is not None and sheet["width"] == PHONE["width"]
    assert await page.evaluate(NO_SIDEWAYS)
    await screenshot(page, "map-demo-phone")
    await page.context.close()

    page, more = await open_map(browser, demo.url + "/nodes", phone=True)
    assert await page.evaluate(NO_SIDEWAYS)
    first = page.locator("tbody tr").first
    assert await first.locator(".pill").text_content() == "offline"
    box = await first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # the first screen: 833 cards are tall
    await page.screenshot(path=str(ARTIFACTS / "nodes-demo-phone.png"))
    assert errors == [] and more == [], errors + more
    await page.context.close()


async def test_node_list_has_every_node_problems_first(demo: Demo) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{demo.url}/nodes") as r:
        assert r.status == 200
        text = await r.text()
    ids = [n.id for n in demo.network.nodes]
    rows = text.split('<tr class="row ')[1:]
    assert len(rows) == len(ids) == 833
    listed = [row.split('href="/#node=', 1)[1].split('"', 1)[0] for row in rows]
    assert sorted(listed) == sorted(ids)  # located or not, servers too
    states = [row.split('"', 1)[0] for row in rows]
    cut = len(demo.cut_off)
    assert states[:3 + cut] == ["state-offline"] * 3 + ["state-unreachable"] * cut
    assert set(listed[:3]) == {demo.victim, demo.leaf, demo.unlocated}
    assert f'href="/install/{demo.unlocated}"' in text and f'href="/node/{demo.unlocated}"' in text
