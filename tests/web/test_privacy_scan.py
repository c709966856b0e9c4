"""Every public response of a running collector, scanned for what must never be public.

A real collector on a real Mosquitto, with scripted nodes that announce owner contacts,
their MACs, exact locations (one node private, with a sector antenna), and free text that
hides addresses (hostnames, models, firmware, tags, interface names); links go by `peer`
and by `peer_mac`, one to a neighbour without an agent, known only by its MAC; one node
loses power, which cuts off the node behind it (an outage). Then an anonymous visitor
fetches every GET route the app registers (node routes for every node), the static files,
the first seconds of each live stream, and what Chromium receives while it shows the map
and the installer view. Nothing may contain an owner contact, a MAC (in any case or
format), an IP address, an e-mail address, the private node's exact position, or the
admin token (DESIGN.md, HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Response

from meshmon.config import Config
from meshmon.metrics import Metrics
from meshmon.model.core import Core
from meshmon.service import Service
from meshmon.web.app import create_app
from meshmon.web.context import STATIC_DIR, WebContext
from tests.browser import DESKTOP, PHONE, chromium, wait_for_js
from tests.integration.harness import collector_config, eventually, started
from tests.integration.scripted_mesh import ScriptedMesh, ScriptedNode
from tests.servers import Server
from tests.web.privacy import leaks

ADMIN_TOKEN = "adm-Qx7vTz9LpW4mRk2N"
PRIVATE = "bravo"
PRIVATE_LOC = {"lat": 52.512345, "lon": 13.418765, "alt_m": 123.456}
COARSE = {"lat": 52.51, "lon": 13.42}
"""PRIVATE_LOC on the default 0.01° grid"""
EXACT_FRAGMENTS = ("52.5123", "13.4187", "52.512", "13.418", "52.513", "13.419", "123.456")
"""the private position to 3+ decimals (~100 m, finer than the grid) and its altitude"""
EXACT_NUMBERS_RE = re.compile("|".join(rf"(?<![0-9]){re.escape(f)}" for f in EXACT_FRAGMENTS))
"""a fragment where a number starts: a timestamp such as 1765047613.4195 holds `13.419`
and is not a position"""

MACS = {
    "gw": ["02:a0:00:00:00:01", "02:a0:00:00:00:02"],
    "alpha": ["02:a1:00:00:00:01", "02:a1:00:00:00:02"],
    "bravo": ["02:b2:00:00:00:01", "02:b2:00:00:00:02"],
    "charlie": ["02:c3:00:00:00:01"],
    "delta": ["02:d4:00:00:00:01", "02:d4:00:00:00:02"],
    "echo": ["02:e5:00:00:00:01"],
    "foxtrot": ["02:f6:00:00:00:01"],
}
STRANGER_MAC = "02:ee:00:00:00:99"
"""a neighbour without an agent: nobody announces it"""
CONTACTS = {
    "gw": "alice@example.org +49 170 5550101",
    "alpha": "Bob Builder <bob@builder.example>",
    "bravo": "carol-signal-handle, +44 7700 900123",
    "charlie": "Dave Dörfler",
    "delta": "https://matrix.to/#/@eve:mesh.example",
    "echo": "Erika Mustermann, Hauptstr. 5",
    "foxtrot": "frank.owner@example.net",
}
CONTACT_PARTS = (
    "alice@example.org", "+49 170 5550101", "Bob Builder", "bob@builder.example",
    "carol-signal-handle", "+44 7700 900123", "Dave Dörfler", "@eve:mesh.example",
    "Erika Mustermann", "Hauptstr. 5", "frank.owner@example.net",
)  # fmt: skip
HIDDEN_ADDRESSES = ("192.168.7.1", "10.1.2.3", "fd00::7", "10.9.8.7", "dave@example.net")
"""addresses that agents hide in free text (hostname, model, tags, interface names)"""

INFO: dict[str, dict[str, Any]] = {
    "gw": {"hostname": "gw-roof", "model": "Ubiquiti NanoStation M5",
           "firmware": "OpenWrt 23.05.2", "gateway": True,
           "location": {"lat": 52.520008, "lon": 13.404954, "alt_m": 48.0},
           "antennas": [{"iface": "wlan0", "azimuth_deg": 90, "width_deg": 60,
                         "range_m": 800}],
           "tags": ["backbone", "roof"]},
    "alpha": {"hostname": "alpha", "model": "TP-Link CPE510", "firmware": "gluon-v2023.2",
              "location": {"lat": 52.530111, "lon": 13.401222}},
    "bravo": {"hostname": "bravo-home", "model": "TP-Link WDR4300", "public": False,
              "location": PRIVATE_LOC,
              "antennas": [{"iface": "wlan0", "azimuth_deg": 200, "width_deg": 90}]},
    # agents are not trusted: addresses hidden in free text must not come out
    "charlie": {"hostname": "192.168.7.1", "model": "x86 at 10.1.2.3",
                "firmware": "build 02:C3:00:00:00:01",
                "location": {"lat": 52.540222, "lon": 13.390333},
                "tags": ["mail me: dave@example.net", "fd00::7", "ok-tag"]},
    "delta": {"hostname": "router-02D400000002", "firmware": "gluon 02-d4-00-00-00-01",
              "location": {"lat": 52.550444, "lon": 13.380555}},
    "echo": {"hostname": "echo", "location": {"lat": 52.560666, "lon": 13.370777}},
    "foxtrot": {"hostname": "foxtrot"},
}  # fmt: skip
EDGES = [("gw", "alpha"), ("gw", "bravo"), ("alpha", "bravo"), ("alpha", "charlie"),
         ("bravo", "delta"), ("charlie", "delta"), ("charlie", "echo"), ("echo", "foxtrot")]
BY_MAC = {("alpha", "bravo"), ("bravo", "gw"), ("charlie", "echo"), ("delta", "charlie"),
          ("foxtrot", "echo"), ("gw", "alpha")}
"""(src, dst): src knows dst only by a MAC (as batman-adv and `iw` do)"""
ODD_IFACE = {("charlie", "delta"): "mesh-10.9.8.7"}
DROPPED = "echo"
"""loses power; foxtrot, behind it, is cut off from the gateway"""
FIXED_ROUTES = (
    "/", "/api/v1/nodes", "/api/v1/nodes/{node}", "/api/v1/links", "/api/v1/topology",
    "/api/v1/outages", "/api/v1/weak-points", "/api/v1/map", "/install/{node}",
    "/api/v1/live/{node}", "/data/meshviewer.json", "/data/nodelist.json",
    "/node/{node}", "/api/v1/nodes/{node}/history", "/link/{a}/{b}",
    "/api/v1/links/{a}/{b}/history",
)  # fmt: skip
"""public routes that must exist (and answer 200 for a known node)"""
SSE_READ_S = 2.0
INCIDENT_ID_RE = re.compile(r"\b[a-z]+-[0-9a-f]{12}\b")
"""incident ids are `<kind>-<12 hex digits of a sha1>`: MAC-shaped, not a MAC (the real
MACs are still checked in every format by `secrets()`)"""
PSEUDO_ELEMENT_RE = re.compile(r"::-?[a-z-]*[g-z][a-z-]*", re.I)
"""CSS `::before`, `e::after`, `::selection` look like IPv6 addresses (`e::af`); no address
has a letter past f"""
TWELVE_DIGITS_RE = re.compile(r"(?<![0-9a-f])[0-9]{12}(?![0-9a-f])", re.I)
"""a number with 12 digits (a byte counter, a float's fraction in /metrics) has the shape of
a bare MAC; the real MACs are still checked in every format by `secrets()`"""


def mac_forms(mac: str) -> list[str]:
    """A MAC as `aa:bb:…`, `aa-bb-…`, `aabbccddeeff` and Cisco's `aabb.ccdd.eeff` (compared
    case-insensitively)."""
    hexes = mac.lower().replace(":", "")
    return [mac.lower(), mac.lower().replace(":", "-"), hexes,
            f"{hexes[:4]}.{hexes[4:8]}.{hexes[8:]}"]


def secrets() -> list[str]:
    """Everything that must not appear anywhere, lower case."""
    macs = [m for ms in MACS.values() for m in ms] + [STRANGER_MAC]
    out = [f for m in macs for f in mac_forms(m)]
    out += [c.lower() for c in (*CONTACTS.values(), *CONTACT_PARTS)]
    out += [a.lower() for a in HIDDEN_ADDRESSES]
    out += [ADMIN_TOKEN.lower()]
    return out


def problems(where: str, body: bytes | str) -> list[str]:
    """What in one response must not be public: known secrets in any case, and anything
    shaped like a MAC, IP or e-mail address (in the text and, for JSON, in its strings)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    low = text.lower()
    found = [f"{where}: {s!r}" for s in secrets() if s in low]
    found += [f"{where}: {m.group()!r}" for m in EXACT_NUMBERS_RE.finditer(text)]
    generic = INCIDENT_ID_RE.sub("incident-id", text)
    generic = TWELVE_DIGITS_RE.sub("number", PSEUDO_ELEMENT_RE.sub("", generic))
    docs: list[Any] = [generic]
    with contextlib.suppress(ValueError):
        docs.append(json.loads(generic))
    for doc in docs:
        found += [f"{where}: {p[:300]}" for p in leaks(doc)]
    return sorted(set(found))


class PrivacyMesh(ScriptedMesh):
    """The scripted mesh with rich info, MAC-addressed links and full reports."""

    async def revive(self, node: str, report: bool = True) -> None:
        old = self.nodes.pop(node, None)
        if old is not None:
            await asyncio.to_thread(old.close)
        info = {"gateway": False, **INFO[node], "macs": MACS[node],
                "owner": {"contact": CONTACTS[node], "notify": True},
                "interval_s": self.interval_s, "agent": "scripted/1"}
        self.nodes[node] = await asyncio.to_thread(ScriptedNode, self.port, node, info)
        self.radio_up.add(node)
        self.reporting.add(node)
        if report:
            self.report(node)

    def links_of(self, node: str) -> list[dict[str, Any]]:
        links: list[dict[str, Any]] = []
        for i, peer in enumerate(sorted(self.adj[node])):
            if peer not in self.radio_up:
                continue
            ref: dict[str, Any] = (
                {"peer_mac": MACS[peer][-1].upper() if i % 2 else MACS[peer][0]}
                if (node, peer) in BY_MAC else {"peer": peer}
            )
            iface = ODD_IFACE.get((node, peer), "wlan0")
            links.append({**ref, "iface": iface, "kind": "wifi", "signal_dbm": -58 - 4 * i,
                          "signal_avg_dbm": -59 - 4 * i, "chains_dbm": [-60, -61],
                          "noise_dbm": -95, "snr_db": 36 - 4 * i, "tx_rate_mbps": 130.0,
                          "expected_tput_mbps": 48.5, "inactive_ms": 40})
            links.append({**ref, "iface": "bat0", "kind": "batman", "tq": 230 - 20 * i})
        if node == "gw":
            links.append({"peer_mac": STRANGER_MAC, "iface": "wlan0", "kind": "wifi",
                          "signal_dbm": -83})
        return links

    def report(self, node: str) -> None:
        sn = self.nodes[node]
        sn.seq += 1
        payload = {
            "v": 1, "node": node, "ts": time.time(), "seq": sn.seq, "interval_s": self.interval_s,
            "clients": 3, "links": self.links_of(node),
            "sys": {"uptime_s": 3600 + sn.seq, "load": [0.2, 0.1, 0.1], "mem_total_kb": 60000,
                    "mem_avail_kb": 30000, "rootfs_used_pct": 40},
            "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": 1000 * sn.seq},
                       {"name": "bat0", "up": True},
                       {"name": ODD_IFACE.get((node, "delta"), "eth0"), "up": True}],
            "radios": [{"iface": "wlan0", "freq_mhz": 5180, "channel": 36, "width_mhz": 20,
                        "noise_dbm": -95, "clients": 3}],
        }  # fmt: skip
        sn.client.publish(f"{sn.base}/report", json.dumps(payload), 1)


@dataclass
class Scan:
    """What the visitor fetched and what was wrong with it."""

    base: str
    fetched: dict[str, int] = field(default_factory=dict)
    """path → HTTP status"""
    found: list[str] = field(default_factory=list)
    bodies: dict[str, bytes] = field(default_factory=dict)

    def check(self, where: str, body: bytes | str) -> None:
        self.found += problems(where, body)


@pytest.fixture
async def collector(
    mosquitto: Server, tmp_path: Path
) -> AsyncIterator[tuple[Service, PrivacyMesh]]:
    config = collector_config(tmp_path, mosquitto.port, http={"admin_token": ADMIN_TOKEN},
                              map={"tile_url": ""})
    service = await started(config)
    mesh = PrivacyMesh(mosquitto.port, EDGES, gateways={"gw"}, interval_s=1.0)
    await mesh.start()
    try:
        yield service, mesh
    finally:
        await mesh.stop()
        await service.stop()


def public_get_routes() -> list[str]:
    """Every GET route the web app registers (as its canonical path), static files aside."""
    ctx = WebContext(core=Core(), config=Config(), metrics=Metrics())
    app = create_app(ctx)
    routes = []
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource):
            continue
        if any(route.method == "GET" for route in resource):
            routes.append(resource.canonical)
    return sorted(set(routes))


HISTORY_QUERIES = ("", "?range=1h&metrics=all", "?range=1h&metrics=all&format=csv",
                   "?step=raw&metrics=all&format=csv")
"""what the history API is asked, beside its defaults: every metric, raw and as CSV"""


def expand(route: str, nodes: list[str]) -> list[str]:
    """The paths a visitor can ask for: `{node}` as every node and an unknown one, `{a}/{b}`
    as every edge both ways and an unknown pair; the history API with every metric."""
    queries = HISTORY_QUERIES if route.endswith("/history") else ("",)
    if "{node}" in route:
        paths = [route.replace("{node}", n) for n in [*nodes, "nobody"]]
    elif "{a}" in route:
        pairs = [*EDGES, *((b, a) for a, b in EDGES), ("nobody", "gw")]
        paths = [route.replace("{a}", a).replace("{b}", b) for a, b in pairs]
    else:
        paths = [re.sub(r"\{[^}]+\}", "1", route)]
    return [p + q for p in paths for q in queries]


async def fetch(session: aiohttp.ClientSession, scan: Scan, path: str) -> bytes:
    """GET as an anonymous visitor; an event stream is read for SSE_READ_S seconds."""
    async with session.get(scan.base + path, allow_redirects=False) as resp:
        scan.fetched[path] = resp.status
        if resp.content_type == "text/event-stream":
            chunks: list[bytes] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SSE_READ_S
            with contextlib.suppress(TimeoutError):
                while (left := deadline - loop.time()) > 0:
                    chunk = await asyncio.wait_for(resp.content.readany(), left)
                    if not chunk:
                        break
                    chunks.append(chunk)
            body = b"".join(chunks)
        else:
            body = await resp.read()
        head = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
    scan.bodies[path] = body
    scan.check(f"GET {path} [{resp.status}]", body)
    scan.check(f"GET {path} (headers)", head)
    return body


async def settled(service: Service) -> None:
    """Every node known with its links resolved, and the outage open."""
    topo = service.topology

    async def ready() -> bool:
        nodes = topo.nodes
        if set(nodes) != set(MACS) or any(n.info is None for n in nodes.values()):
            return False
        resolved = {(k.src, lk.dst) for k, lk in topo.links.items() if lk.dst is not None}
        return all((a, b) in resolved for a, b in BY_MAC if DROPPED not in (a, b))

    await eventually(ready, 15, "all nodes and their MAC-addressed links")

    async def outage() -> bool:
        found = service.alerting.outages()
        return any(DROPPED in o["cause"]["nodes"] for o in found)

    await eventually(outage, 15, f"an outage caused by {DROPPED}")


async def test_no_public_response_leaks(collector: tuple[Service, PrivacyMesh]) -> None:
    service, mesh = collector

    async def all_known() -> bool:
        return set(service.topology.nodes) == set(MACS)

    await eventually(all_known, 15, "every node")
    await asyncio.sleep(2.5)  # a few report rounds with every link
    mesh.drop(DROPPED)
    await settled(service)

    scan = Scan(service.http_url)
    nodes = sorted(MACS)
    registered = public_get_routes()
    missing = [r for r in FIXED_ROUTES if r not in registered]
    assert not missing, f"public routes not registered: {missing} (registered: {registered})"

    async with aiohttp.ClientSession() as session:
        for route in registered:  # a route's paths at once: live streams are read for 2 s
            await asyncio.gather(*(fetch(session, scan, p) for p in expand(route, nodes)))
        # the static files the pages reference, and every script and style sheet there is
        pages = [p for p in scan.bodies
                 if p == "/" or p.startswith(("/install/", "/admin", "/node/", "/link/"))]
        referenced = {
            m for p in pages
            for m in re.findall(r"""(?:src|href)=["'](/static/[^"'?#]+)""",
                                scan.bodies[p].decode("utf-8", "replace"))
        }  # fmt: skip
        shipped = {
            "/static/" + f.relative_to(STATIC_DIR).as_posix()
            for f in STATIC_DIR.rglob("*") if f.suffix in (".js", ".css")
        }  # fmt: skip
        for path in sorted(referenced | shipped):
            await fetch(session, scan, path)

    # every fixed route answered 200 for the nodes (the unknown node may be a 404)
    wrong = {p: s for p, s in scan.fetched.items()
             if s != 200 and "nobody" not in p
             and any(re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", r) + r"(\?.*)?", p)
                     for r in FIXED_ROUTES)}
    assert not wrong, f"public routes that did not answer 200: {wrong}"
    assert referenced, "the pages reference no /static/ files"
    assert all(scan.fetched[p] == 200 for p in referenced), {p: scan.fetched[p] for p in referenced}
    for node in nodes:
        assert b"data:" in scan.bodies[f"/api/v1/live/{node}"], f"no live event for {node}"

    # the outage is there to be scanned, with the node it cut off
    outages = json.loads(scan.bodies["/api/v1/outages"])["outages"]
    assert [(o["cause"]["nodes"], o["affected"]) for o in outages] == [([DROPPED], ["foxtrot"])]
    # the private node is on the grid, not where it is
    detail = json.loads(scan.bodies[f"/api/v1/nodes/{PRIVATE}"])
    assert detail["location"] == {**COARSE, "approximate": True}
    shown = {n["id"]: n for n in json.loads(scan.bodies["/api/v1/map"])["nodes"]}
    assert (shown[PRIVATE]["lat"], shown[PRIVATE]["lon"]) == (COARSE["lat"], COARSE["lon"])
    assert shown[PRIVATE].get("approximate") is True
    assert not shown[PRIVATE].get("antennas"), "a sector drawn from a blurred point"
    public_detail = json.loads(scan.bodies["/api/v1/nodes/alpha"])
    assert public_detail["location"] == INFO["alpha"]["location"]  # exact when public

    # what a browser receives (and what the pages make of it)
    async with chromium() as browser:
        for path, viewport in (("/", DESKTOP), ("/install/alpha", PHONE),
                               (f"/install/{PRIVATE}", PHONE), (f"/node/{PRIVATE}", PHONE),
                               ("/node/charlie", DESKTOP), ("/link/charlie/delta", PHONE)):
            page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]
            responses: list[Response] = []

            def keep(resp: Response, seen: list[Response] = responses) -> None:
                seen.append(resp)

            page.on("response", keep)
            await page.goto(scan.base + path)
            if path == "/":
                await wait_for_js(page, "document.body.dataset.ready === '1'",
                                             timeout=15_000)
                drawn = await page.evaluate("id => window.meshmonMap.latLngOf(id)", PRIVATE)
                assert (drawn["lat"], drawn["lng"]) == (COARSE["lat"], COARSE["lon"])
                # a visitor opens the private node's details (fetched by the page)
                await page.evaluate("id => window.meshmonMap.open(id)", PRIVATE)
            if path.startswith(("/node/", "/link/")):  # the charts drawn from the history
                await wait_for_js(page, "document.body.dataset.ready === '24h'",
                                  timeout=15_000)
                assert await page.locator(".chart[data-points]").count()
            await page.wait_for_timeout(SSE_READ_S * 1000)
            scan.check(f"browser {path} (DOM)", await page.content())
            scan.check(f"browser {path} (text)", await page.inner_text("body"))
            for resp in responses:
                if resp.headers.get("content-type", "").startswith("text/event-stream"):
                    continue  # a stream has no end: read above over HTTP
                try:
                    body = await asyncio.wait_for(resp.body(), 5)
                except Exception as exc:  # a redirect has no body
                    body = f"(no body: {exc})".encode()
                scan.check(f"browser {path} → {resp.url} [{resp.status}]", body)
            assert responses, f"the browser received nothing for {path}"
            await page.close()

    assert not scan.found, "public output leaks:\n  " + "\n  ".join(scan.found)

