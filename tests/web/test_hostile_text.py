"""Hostile text is text: nodes whose every free-text field holds a different HTML/script
payload, published over a real Mosquitto to a real collector, looked at in a real
Chromium on every page (map: every marker hovered, tooltip, details, search, banner;
installer; admin). No payload may run, no CSP violation may happen, and the texts must
show literally. Plus the security headers on every response."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import BrowserContext, Locator, Page

from meshmon.service import Service
from tests import servers
from tests.browser import DESKTOP, chromium, console_errors, wait_for_js
from tests.integration.harness import collector_config, eventually, get_json, started
from tests.integration.scripted_mesh import WebhookReceiver
from tests.web.conftest import Served
from tests.web.test_map_page import LocatedMesh

TOKEN = "hostile-text-test-token"
FLAGS = "window.__pwned"
"""every payload pushes its own name here if it ever runs"""


def payload(name: str, shape: str) -> str:
    """One hostile string that would push `name` onto window.__pwned if it ran."""
    js = f"window.__pwned.push('{name}')"
    return {
        "img": f'<img src=x onerror="{js}">',
        "script": f"<script>{js}</script>",
        "svg": f'"><svg onload="{js}">',
        "url": f"javascript:{js}",
        "markdown": f"[click me](javascript:{js})",
        "iframe": f'<iframe srcdoc="<script>parent.__pwned.push(\'{name}\')</script>">',
        "details": f'<details open ontoggle="{js}">x',
        "style": f"<style>@import 'javascript:{js}'</style><b>{name}</b>",
        "mxss": f'<math><mtext><table><mglyph><style><img src=x onerror="{js}">',
        "attr": f"' onmouseover='{js}' x='",
        "entity": f"&lt;img src=x onerror=&quot;{js}&quot;&gt;",
    }[shape]


EVIL = {  # two nodes: evil-1 relays for evil-2, which loses power (an outage banner)
    "evil-1": {
        "hostname": payload("hostname-1", "img"),
        "model": payload("model-1", "script"),
        "firmware": payload("firmware-1", "svg"),
        "agent": payload("agent-1", "url"),
        "tags": [payload("tag-1a", "markdown"), payload("tag-1b", "iframe")],
        "owner": {"contact": payload("owner-1", "details")},
        "antennas": [{"iface": payload("antenna-1", "style"), "azimuth_deg": 90,
                      "width_deg": 60, "range_m": 500}],
    },
    "evil-2": {
        "hostname": payload("hostname-2", "attr"),
        "model": payload("model-2", "mxss"),
        "firmware": payload("firmware-2", "entity"),
        "agent": payload("agent-2", "markdown"),
        "tags": [payload("tag-2", "script")],
        "owner": {"contact": payload("owner-2", "svg")},
    },
}
IFACES = {  # names in reports: interfaces, radios and the interface of each link
    "evil-1": {"iface": payload("iface-1", "svg"), "radio": payload("radio-1", "img"),
               "link": payload("link-iface-1", "details")},
    "evil-2": {"iface": payload("iface-2", "iframe"), "radio": payload("radio-2", "script"),
               "link": payload("link-iface-2", "img")},
}
SILENCE_REASON = payload("silence-reason", "img")
LOCATIONS = {"gw": (53.0700, 8.8000), "evil-1": (53.0712, 8.8031), "evil-2": (53.0690, 8.8062)}
EDGES = [("gw", "evil-1"), ("evil-1", "evil-2")]

WATCH = f"""
{FLAGS} = [];
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""


class HostileMesh(LocatedMesh):
    """The located scripted mesh, whose reports name interfaces with payloads too."""

    def links_of(self, node: str) -> list[dict[str, Any]]:
        names = IFACES.get(node)
        links = super().links_of(node)
        return [{**link, "iface": names["link"]} for link in links] if names else links

    def report(self, node: str) -> None:
        names = IFACES.get(node)
        if names is None:
            super().report(node)
            return
        sn = self.nodes[node]
        sn.seq += 1
        sn.client.publish(f"{sn.base}/report", json.dumps({
            "v": 1, "node": node, "ts": time.time(), "seq": sn.seq, "interval_s": 1.0,
            "links": self.links_of(node), "sys": {"uptime_s": 4000 + sn.seq},
            "ifaces": [{"name": names["iface"], "up": True, "rx_bytes": 1, "tx_bytes": 2}],
            "radios": [{"iface": names["radio"], "freq_mhz": 5180, "channel": 36}],
        }), 1)


@dataclass
class Hostile:
    service: Service
    mesh: HostileMesh
    url: str
    hook: WebhookReceiver


@pytest.fixture
async def hostile(tmp_path: Path, mosquitto: servers.Server) -> AsyncIterator[Hostile]:
    extra: dict[str, dict[str, Any]] = {
        node: {**EVIL.get(node, {"hostname": "gateway"}),
               "location": {"lat": lat, "lon": lon}}
        for node, (lat, lon) in LOCATIONS.items()
    }
    hook = WebhookReceiver()
    await hook.start()
    config = collector_config(
        tmp_path, mosquitto.port, map={"tile_url": "", "refresh_s": 1},
        http={"admin_token": TOKEN},
        notifiers=[{"name": "hook", "type": "webhook", "url": hook.url, "timeout_s": 2}])
    service = await started(config)
    mesh = HostileMesh(mosquitto.port, EDGES, {"gw"}, extra)
    try:
        await mesh.start()

        async def settled() -> bool:
            topo = service.topology
            return (sum(1 for n in topo.nodes.values() if n.online) == 3
                    and topo.graph.number_of_edges() == 2)

        await eventually(settled, 15, "hostile mesh online")
        mesh.drop("evil-2")  # its outage puts its name in the banner and on /admin

        async def outage() -> bool:
            body = (await get_json(f"{service.http_url}/api/v1/outages"))["body"]
            return [o["cause"]["nodes"] for o in body["outages"]] == [["evil-2"]]

        await eventually(outage, 10, "outage of evil-2")
        async with aiohttp.ClientSession() as s, s.post(
            f"{service.http_url}/api/v1/silences", headers={"Authorization": f"Bearer {TOKEN}"},
            json={"node": "nobody-*", "duration_s": 3600, "reason": SILENCE_REASON,
                  "created_by": payload("created-by", "svg")},
        ) as r:
            assert r.status == 201
        yield Hostile(service, mesh, service.http_url, hook)
    finally:
        await mesh.stop()
        await service.stop()
        await hook.stop()


async def assert_nothing_ran(page: Page, errors: list[str]) -> None:
    assert await page.evaluate(FLAGS) == []
    assert await page.evaluate("window.__csp") == []
    assert errors == [], errors


async def hover(page: Page, node: str, tooltip: Locator) -> None:
    """Move the mouse off every dot (the last tooltip closes), then onto a node's dot as a
    hand would, until its tooltip shows. Leaflet looks at canvas hover at most every 32 ms
    and drops the moves in between, so the mouse keeps moving a pixel to and fro."""
    point = await page.evaluate(f"meshmonMap.pointOf('{node}')")
    for x, y, want in ((5, 300, 0), (point["x"], point["y"], 1)):
        for step in range(40):
            await page.mouse.move(x + step % 2, y)
            if await tooltip.count() == want:
                break
            await page.wait_for_timeout(50)
        else:
            raise AssertionError(f"{want} tooltips never showed, hovering towards {node}")


async def open_page(context: BrowserContext, url: str, ready: str) -> tuple[Page, list[str]]:
    page = await context.new_page()
    errors = console_errors(page)
    await page.goto(url)
    await wait_for_js(page, ready, timeout=15_000)
    return page, errors


async def test_hostile_text_is_shown_as_text_on_every_page(hostile: Hostile) -> None:
    base = hostile.url
    name1, name2 = EVIL["evil-1"]["hostname"], EVIL["evil-2"]["hostname"]
    async with chromium() as browser:
        context = await browser.new_context(viewport=DESKTOP)
        await context.add_init_script(WATCH)
        requested: list[str] = []
        context.on("request", lambda r: requested.append(r.url))

        # the map: hover every marker, its tooltip holds the name as text
        page, errors = await open_page(context, base + "/", "document.body.dataset.ready === '1'")
        assert await page.evaluate("meshmonMap.markers") == 3
        for node, name in (("gw", "gateway"), ("evil-1", name1), ("evil-2", name2)):
            tip = page.locator(".leaflet-tooltip")
            await hover(page, node, tip)
            assert await tip.text_content() == name
            assert await tip.locator("*:not(span)").count() == 0

        # the details of each evil node: name, model, its links' peers and kinds
        await page.evaluate("meshmonMap.open('evil-1')")
        await page.wait_for_selector("#details:not([hidden]) .links li")
        assert await page.text_content("#details h2") == name1
        facts = await page.locator("#details dd").all_text_contents()
        assert EVIL["evil-1"]["model"] in facts
        peers = await page.locator("#details .links .peer").all_text_contents()
        assert sorted(peers) == sorted(["gateway", name2])
        await page.evaluate("meshmonMap.open('evil-2')")
        await wait_for_js(
            page, "document.querySelector('#details h2').textContent === " + json.dumps(name2))
        await page.wait_for_selector("#details dd")
        assert EVIL["evil-2"]["model"] in await page.locator("#details dd").all_text_contents()

        # the banner names evil-2 (its hostname, as text)
        cause = page.locator("#outages .cause")
        await cause.wait_for(timeout=10_000)
        assert await cause.text_content() == name2

        # search results: both hostile names, literally
        await page.fill("#search", "pwned")
        await page.wait_for_selector("#search-results:not([hidden]) li button")
        found = await page.locator("#search-results button").all_text_contents()
        assert sorted(found) == sorted([f"{name1} (evil-1)", f"{name2} (evil-2)"])
        await page.fill("#search", "' onmouseover")
        await page.locator("#search-results button").first.hover()
        await assert_nothing_ran(page, errors)
        html = await page.content()
        assert "owner-1" not in html and "owner-2" not in html  # contacts stay private
        await page.close()

        # the installer view of evil-1: peers and the hostile link interface as text
        page, errors = await open_page(context, base + "/install/evil-1",
                                       "document.querySelectorAll('.link').length === 2")
        kinds = await page.locator(".link .kind").all_text_contents()
        assert kinds == [f"wifi · {IFACES['evil-1']['link']}"] * 2
        # the cards name peers by hostname (evil-2's is a payload): as text, the id beside
        peers = await page.locator(".link h2.peer").all_text_contents()
        assert sorted(peers) == sorted([name2, "gateway"])
        assert await page.locator(".link h2.peer *").count() == 0
        ids = await page.locator(".link .peer-id .id").all_text_contents()
        assert sorted(ids) == ["evil-2 · ", "gw · "]
        hears = await page.locator(".link .end-in .who").all_text_contents()
        assert sorted(hears) == sorted([f"{name2} hears", "gateway hears"])
        await assert_nothing_ran(page, errors)
        await page.close()

        # the maintainer page: the outage of evil-2 and the silence's hostile reason
        page, errors = await open_page(context, f"{base}/admin?token={TOKEN}",
                                       "document.body.dataset.ready === '1'")
        await page.wait_for_selector("#outages .card")
        assert "evil-2" in (await page.text_content("#outages .cause") or "")
        silence = await page.text_content("#silences tbody") or ""
        assert SILENCE_REASON in silence and payload("created-by", "svg") in silence
        await assert_nothing_ran(page, errors)
        await page.close()
        await context.close()
    # the alert names evil-2 by its id; its tags travel as JSON data, nothing else of it
    [alert] = hostile.hook.received
    assert alert["cause"]["nodes"] == ["evil-2"] and alert["tags"] == EVIL["evil-2"]["tags"]
    assert "pwned" not in json.dumps({k: v for k, v in alert.items() if k != "tags"})
    # nothing was fetched that a payload asked for (an <img src=x> would load /x)
    paths = {re.sub(r"\?.*", "", u.removeprefix(base)) for u in requested}
    assert all(p == "/" or p.startswith(("/static/", "/api/", "/install/", "/admin"))
               for p in paths), paths


# ------------------------------------------------------------------ headers


async def test_every_html_page_has_a_strict_csp_and_every_response_nosniff(
    served: Served,
) -> None:
    served.ctx.admin_token = lambda: TOKEN
    html_pages = ["/", "/install/alpha", "/install/%3Cx%3E", "/admin", f"/admin?token={TOKEN}"]
    for path in html_pages:
        resp = await served.client.get(path)
        assert resp.content_type == "text/html", path
        csp = resp.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'", path
        assert directives["frame-ancestors"] == "'none'", path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        body = await resp.text()
        # no inline script (a JSON data block is data), no inline handler or style
        for tag in re.findall(r"<script\b[^>]*>", body):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", body), path
        assert not re.search(r"<[^>]+\sstyle\s*=", body) and "<style" not in body, path
    for path in ["/api/v1/nodes", "/api/v1/nope", "/static/map.js", "/healthz", "/metrics",
                 "/no-such-page"]:
        resp = await served.client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path


async def test_tiles_are_the_only_outside_source_the_map_may_load(served: Served) -> None:
    served.ctx.config.map.tile_url = "https://{s}.tiles.example.net/{z}/{x}/{y}.png"
    from meshmon.web.security import content_security_policy

    csp = content_security_policy(served.ctx.config)
    assert "img-src 'self' data: https://*.tiles.example.net" in csp
    served.ctx.config.map.tile_url = ""
    assert "img-src 'self' data:;" in content_security_policy(served.ctx.config) + ";"
