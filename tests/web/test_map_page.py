"""The public map at `/`: the page's HTML, and the map in a real Chromium against a real
collector fed by scripted nodes over a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Request

from meshmon.service import Service
from tests import servers
from tests.browser import (
    DESKTOP,
    PHONE,
    chromium,
    console_errors,
    screenshot,
    wait_for_js,
)
from tests.integration.harness import collector_config, eventually, get_json, started
from tests.integration.scripted_mesh import ScriptedMesh, ScriptedNode
from tests.web.conftest import SECRETS, Served
from tests.web.privacy import assert_no_leaks

# ------------------------------------------------------------------ the page's HTML


async def test_page_embeds_its_config_as_safe_json(served: Served) -> None:
    served.ctx.config.map.attribution = '</script><script>alert(1)</script> &copy; <!-- x'
    served.ctx.config.map.tile_url = ""
    resp = await served.client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    text = await resp.text()
    assert "<script>alert(1)" not in text and "<!-- x" not in text
    found = re.search(r'<script type="application/json" id="map-config">(.*?)</script>', text)
    assert found is not None
    config = json.loads(found.group(1))
    assert config == {
        "outages": False,  # no alerting here: the page does not ask
        "tile_url": "", "attribution": served.ctx.config.map.attribution, "max_zoom": 19,
        "refresh_s": 5, "coverage_radius_m": 150,
        "thresholds": {"signal_dbm": [-65, -75], "tq": [200, 120], "etx": [1.5, 3.0]},
        # one word per state on every page (badge, legend, banner, list), problems first
        "states": [["offline", "offline"], ["unreachable", "cut off"],
                   ["flapping", "flapping"], ["silent", "agent silent"],
                   ["unmonitored", "unmonitored"], ["online", "online"]],
    }  # fmt: skip
    assert_no_leaks(text, SECRETS)


async def test_page_shows_summary_legend_and_loads_only_local_assets(served: Served) -> None:
    text = await (await served.client.get("/")).text()
    assert '<p id="summary" class="summary" aria-live="polite">3 of 4 nodes online, 3 links' in text
    assert "signal ≥ −65 dBm, TQ ≥ 200, ETX ≤ 1.5" in text  # the legend's thresholds
    assert 'id="details"' in text and 'id="search"' in text
    sources = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert sources and all(s.startswith(("/", "data:")) for s in sources), sources
    for path in ("/static/map.js", "/static/map.css", "/static/vendor/leaflet/leaflet.js",
                 "/static/vendor/leaflet/leaflet.css"):
        assert (await served.client.get(path)).status == 200, path


# ------------------------------------------------------------------ a located scripted mesh

CENTRE = (53.0755, 8.8070)  # a neighbourhood of about 2 × 2 km
GRID = 6
STEP_DEG = (0.0024, 0.0038)  # ≈ 265 m × 255 m
GATEWAYS = {"kiez-00", "kiez-35"}
PRIVATE = "kiez-14"
UNLOCATED = ("cellar-1", "cellar-2")
LEAF = "kiez-05"  # a corner: dropping it cuts nobody off
PRIVATE_EXACT = {"lat": 53.073421, "lon": 8.812345}


def grid_mesh() -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """36 roofs on a jittered grid, linked to their grid neighbours and a few diagonals,
    plus two nodes without a location; the info each announces beyond the basics."""
    rng = random.Random(7)
    names = [f"kiez-{i:02d}" for i in range(GRID * GRID)]
    extra: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        row, col = divmod(i, GRID)
        lat = CENTRE[0] + (row - GRID / 2) * STEP_DEG[0] + rng.uniform(-4e-4, 4e-4)
        lon = CENTRE[1] + (col - GRID / 2) * STEP_DEG[1] + rng.uniform(-6e-4, 6e-4)
        extra[name] = {"hostname": f"{name}-roof", "model": rng.choice(MODELS),
                       "location": {"lat": round(lat, 6), "lon": round(lon, 6)}}
        if i % 7 == 3:
            extra[name]["antennas"] = [
                {"iface": "wlan1", "azimuth_deg": rng.choice((0, 90, 180, 270)),
                 "width_deg": 60, "range_m": 600},
            ]  # fmt: skip
    extra[PRIVATE].update({"location": {**PRIVATE_EXACT, "alt_m": 30}, "public": False,
                           "hostname": "backyard"})
    for name in UNLOCATED:
        extra[name] = {"hostname": name, "model": "x86"}
    edges = []
    for i, name in enumerate(names):
        row, col = divmod(i, GRID)
        if col + 1 < GRID:
            edges.append((name, names[i + 1]))
        if row + 1 < GRID:
            edges.append((name, names[i + GRID]))
        if row + 1 < GRID and col + 1 < GRID and rng.random() < 0.3:
            edges.append((name, names[i + GRID + 1]))
    edges += [("cellar-1", "kiez-20"), ("cellar-2", "kiez-21"), ("cellar-1", "cellar-2")]
    return edges, extra


MODELS = ("Ubiquiti NanoStation M5", "TP-Link CPE510", "GL.iNet GL-AR300M", "LiteBeam 5AC")


class LocatedMesh(ScriptedMesh):
    """A ScriptedMesh whose nodes announce hostnames, locations and antennas, and whose
    links differ in signal and throughput like real ones do."""

    def __init__(self, port: int, edges: list[tuple[str, str]], gateways: set[str],
                 extra: dict[str, dict[str, Any]]) -> None:
        super().__init__(port, edges, gateways, interval_s=1.0)
        self.extra = extra
        rng = random.Random(11)
        self.signal = {frozenset(e): rng.choice((-52, -58, -63, -68, -72, -79, -84))
                       for e in edges}

    async def revive(self, node: str, report: bool = True) -> None:
        old = self.nodes.pop(node, None)
        if old is not None:
            await asyncio.to_thread(old.close)
        info = {"gateway": node in self.gateways, "interval_s": self.interval_s,
                "owner": {"contact": f"owner-of-{node}@example.org"}, "tags": ["test"],
                **self.extra.get(node, {})}
        self.nodes[node] = await asyncio.to_thread(ScriptedNode, self.port, node, info)
        self.radio_up.add(node)
        self.reporting.add(node)
        if report:
            self.report(node)

    def report(self, node: str) -> None:
        """A report with uptime and clients as well (ScriptedNode sends links only)."""
        sn = self.nodes[node]
        sn.seq += 1
        uptime = 3600 * (7 + 53 * (sum(map(ord, node)) % 40)) + 90 * sn.seq
        sn.client.publish(f"{sn.base}/report", json.dumps({
            "v": 1, "node": node, "ts": time.time(), "seq": sn.seq,
            "interval_s": self.interval_s, "links": self.links_of(node),
            "sys": {"uptime_s": uptime}, "clients": sum(map(ord, node)) % 17,
        }), 1)

    def links_of(self, node: str) -> list[dict[str, Any]]:
        out = []
        for link in super().links_of(node):
            signal = self.signal[frozenset((node, link["peer"]))]
            # throughput falls with the signal, as minstrel's expected throughput does
            out.append({**link, "signal_dbm": signal,
                        "expected_tput_mbps": max(2, round((signal + 90) * 4.5))})
        return out


@dataclass
class Running:
    service: Service
    mesh: LocatedMesh
    url: str


@pytest.fixture
async def running(tmp_path: Path, mosquitto: servers.Server) -> AsyncIterator[Running]:
    """A collector on Mosquitto with the located mesh online; tiles off (no outside I/O)."""
    edges, extra = grid_mesh()
    config = collector_config(tmp_path, mosquitto.port,
                              map={"tile_url": "", "refresh_s": 1})
    service = await started(config)
    mesh = LocatedMesh(mosquitto.port, edges, GATEWAYS, extra)
    try:
        await mesh.start()

        async def settled() -> bool:
            topo = service.topology
            online = sum(1 for n in topo.nodes.values() if n.online)
            return online == len(mesh.adj) and topo.graph.number_of_edges() == len(edges)

        await eventually(settled, 20, "mesh online")
        yield Running(service, mesh, service.http_url)
    finally:
        await mesh.stop()
        await service.stop()


def watch_requests(page: Page) -> list[str]:
    """Every URL the page asks for that is not on the collector (must stay empty)."""
    outside: list[str] = []

    def check(request: Request) -> None:
        if not request.url.startswith(("http://127.0.0.1:", "data:")):
            outside.append(request.url)

    page.on("request", check)
    return outside


async def expected_summary(run: Running) -> str:
    nodes = (await get_json(f"{run.url}/api/v1/nodes"))["body"]["nodes"]
    online = sum(1 for n in nodes if n["online"])
    links = run.service.topology.graph.number_of_edges()
    return f"{online} of {len(nodes)} nodes online, {links} links"


async def open_map(page: Page, url: str) -> None:
    await page.goto(url + "/")
    await wait_for_js(page, "document.body.dataset.ready === '1'", timeout=15_000)


async def test_map_draws_the_network_and_follows_it_live(running: Running) -> None:
    run = running
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)
        errors = console_errors(page)
        outside = watch_requests(page)
        await open_map(page, run.url)

        # one dot per node with a public position; one line per drawn pair
        mapdoc = (await get_json(f"{run.url}/api/v1/map"))["body"]
        nodes = (await get_json(f"{run.url}/api/v1/nodes"))["body"]["nodes"]
        located = [n for n in nodes if n["location"] is not None]
        drawn = await page.evaluate("({m: meshmonMap.markers, l: meshmonMap.links})")
        assert drawn["m"] == len(located) == len(mapdoc["nodes"]) == 36
        assert drawn["l"] == len(mapdoc["links"]) > 50
        assert await page.text_content("#summary") == await expected_summary(run)

        # the private node is drawn on the grid point, never at its roof
        where = await page.evaluate(f"meshmonMap.latLngOf('{PRIVATE}')")
        assert (where["lat"], where["lng"]) == (53.07, 8.81)
        html = await page.content()
        assert str(PRIVATE_EXACT["lat"]) not in html and "backyard" not in html.lower()

        # a real click on a dot opens its panel
        point = await page.evaluate("meshmonMap.pointOf('kiez-09')")
        await page.mouse.click(point["x"], point["y"])
        await page.wait_for_selector("#details:not([hidden]) .links li")
        assert await page.text_content("#details h2") == "kiez-09-roof"
        details = await page.text_content("#details")
        assert details is not None
        assert "peer's view" in details and "dBm" in details and "Uptime" in details

        # power cut: the dot turns offline without a reload, the banner names the cause
        await page.evaluate(f"meshmonMap.open('{LEAF}')")
        assert await page.text_content("#details h2") == f"{LEAF}-roof"
        await page.evaluate("window.__sameDocument = true")
        assert await page.evaluate(f"meshmonMap.stateOf('{LEAF}')") == "online"
        cut_at = time.monotonic()
        run.mesh.drop(LEAF)
        await wait_for_js(page, f"meshmonMap.stateOf('{LEAF}') === 'offline'",
                                     timeout=5_000)
        took = time.monotonic() - cut_at
        assert await page.evaluate("window.__sameDocument === true")
        assert await page.evaluate("meshmonMap.updates") >= 1
        await wait_for_js(
            page, f"document.querySelector('#outages .cause')?.textContent === '{LEAF}-roof'",
            timeout=10_000)
        await wait_for_js(page,   # the open panel follows too
            "document.querySelector('#details .pill')?.textContent === 'offline'")
        await wait_for_js(page,   # and says its links are what was last heard
            "document.querySelector('#details h3')?.textContent.endsWith('as last heard')",
            timeout=5_000)

        async def summary_matches() -> bool:
            return await page.text_content("#summary") == await expected_summary(run)

        await eventually(summary_matches, 5, "summary after the power cut")
        shot = await screenshot(page, "map-desktop")
        assert shot.exists()

        # the search box flies to a node and opens it
        await page.fill("#search", "kiez-33")
        await page.press("#search", "Enter")
        await wait_for_js(
            page, "document.querySelector('#details h2').textContent === 'kiez-33-roof'")
        assert errors == [], errors
        assert outside == [], outside
    assert took < 5


async def test_map_on_a_phone_keeps_controls_reachable(running: Running) -> None:
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                            device_scale_factor=2)
        page = await context.new_page()
        errors = console_errors(page)
        outside = watch_requests(page)
        await open_map(page, running.url)
        assert await page.evaluate("meshmonMap.markers") == 36

        width, height = PHONE["width"], PHONE["height"]
        for selector in ("#search", "#summary", ".leaflet-control-layers", "#legend summary"):
            box = await page.locator(selector).bounding_box()
            assert box is not None, selector
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, selector
            assert box["y"] >= 0 and box["y"] + box["height"] <= height, selector
        assert await page.evaluate("document.getElementById('legend').open") is False

        # tapping a dot opens the panel as a bottom sheet over the lower part of the map
        point = await page.evaluate("meshmonMap.pointOf('kiez-21')")
        await page.touchscreen.tap(point["x"], point["y"])
        await page.wait_for_selector("#details:not([hidden]) .links li")
        assert await page.text_content("#details h2") == "kiez-21-roof"
        sheet = await page.locator("#details").bounding_box()
        assert sheet is not None
        assert sheet["width"] == width and abs(sheet["y"] + sheet["height"] - height) < 2
        assert sheet["height"] <= height * 0.6
        # the map moves the tapped dot above the sheet
        await wait_for_js(
            page, "meshmonMap.pointOf('kiez-21').y < document.getElementById('details')"
            ".getBoundingClientRect().top - 10")
        close = await page.locator("#details .close").bounding_box()
        assert close is not None and close["width"] >= 40 and close["height"] >= 40
        await screenshot(page, "map-phone")

        await page.locator("#details .close").tap()
        assert await page.locator("#details").is_hidden()
        assert errors == [], errors
        assert outside == [], outside
        await context.close()
