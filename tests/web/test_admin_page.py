"""The maintainer view `/admin`: sign-in, the session cookie, and the page itself in a real
Chromium against a collector on a real Mosquitto with a scripted mesh."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from playwright.async_api import Page, ViewportSize

from meshmon.alerts.model import Alert, LinkRef, Silence
from meshmon.config import Config
from meshmon.metrics import Metrics
from meshmon.storage.sessions import DEFAULT_LIFETIME_S, SessionStore
from meshmon.web.admin import SESSION_COOKIE
from meshmon.web.alerts_api import authorized
from meshmon.web.app import WebContext, create_app
from tests import servers
from tests.browser import DESKTOP, PHONE, chromium, console_errors, screenshot
from tests.integration.harness import collector_config, eventually, started
from tests.integration.scripted_mesh import LEAVES, ScriptedMesh, WebhookReceiver, backbone_edges
from tests.web.conftest import NOW, build_core

TOKEN = "maint-3f9a-token-for-tests-only"
DESKTOP_SIZE = ViewportSize(width=DESKTOP["width"], height=DESKTOP["height"])
PHONE_SIZE = ViewportSize(width=PHONE["width"], height=PHONE["height"])


# ---------------------------------------------------------------------- HTTP, no browser
class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def admin_ctx(clock: Clock, tmp_path: Path) -> AsyncIterator[WebContext]:
    sessions = SessionStore(tmp_path / "meshmon.sqlite", clock=clock)
    await sessions.start()
    yield WebContext(core=build_core(), config=Config(), metrics=Metrics(),
                     clock=clock, admin_token=lambda: TOKEN, sessions=sessions)
    await sessions.close()


def live(ctx: WebContext, value: str) -> bool:
    """Whether the server holds `value` as a live session for the token."""
    assert ctx.sessions is not None
    return ctx.sessions.valid(TOKEN, value)


@pytest.fixture
async def client(admin_ctx: WebContext) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(admin_ctx)
    # no cookie jar: each request carries exactly the cookie the test gives it
    test_client: TestClient[Any, Any] = TestClient(
        TestServer(app, host="127.0.0.1"), cookie_jar=aiohttp.DummyCookieJar())
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()


def set_cookie_of(resp: aiohttp.ClientResponse) -> Any:
    """The session cookie's Morsel from the response's Set-Cookie header."""
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar[SESSION_COOKIE]


async def sign_in(client: TestClient[Any, Any], **headers: str) -> aiohttp.ClientResponse:
    resp = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False,
                             headers=headers)
    assert resp.status == 303, await resp.text()
    return resp


def with_cookie(value: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={value}", **headers}


async def test_admin_without_a_session_is_the_sign_in_form(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/admin")
    body = await resp.text()
    assert resp.status == 401
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert 'type="password"' in body and 'action="/admin/login"' in body
    assert 'id="outages"' not in body and "admin.js" not in body
    assert "alpha" not in body and TOKEN not in body


async def test_a_wrong_token_is_a_401_that_does_not_echo_it(client: TestClient[Any, Any]) -> None:
    wrong = "guess-0f1e2d-wrong"
    resp = await client.post("/admin/login", data={"token": wrong}, allow_redirects=False)
    body = await resp.text()
    assert resp.status == 401
    assert "not right" in body and wrong not in body and TOKEN not in body
    assert "Set-Cookie" not in resp.headers
    resp = await client.get(f"/admin?token={wrong}", allow_redirects=False)
    assert resp.status == 401 and wrong not in await resp.text()
    resp = await client.get("/admin", headers={"Authorization": f"Bearer {wrong}"})
    assert resp.status == 401 and "Set-Cookie" not in resp.headers


async def test_signing_in_sets_a_strict_http_only_cookie_that_is_not_the_token(
    client: TestClient[Any, Any],
) -> None:
    resp = await sign_in(client)
    assert resp.headers["Location"] == "/admin"
    morsel = set_cookie_of(resp)
    assert morsel.value and TOKEN not in morsel.value
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http: a Secure cookie would never come back
    assert int(morsel["max-age"]) == DEFAULT_LIFETIME_S
    page = await client.get("/admin", headers=with_cookie(morsel.value))
    body = await page.text()
    assert page.status == 200
    for element in ('id="outages"', 'id="weak-points"', 'id="alert-log"', 'id="silences"',
                    'id="silence-form"', "/static/admin.js"):
        assert element in body
    assert TOKEN not in body and morsel.value not in body
    # behind an https proxy the cookie is Secure
    resp = await sign_in(client, **{"X-Forwarded-Proto": "https"})
    assert set_cookie_of(resp)["secure"]


async def test_token_in_the_query_signs_in_and_leaves_the_address_bar(
    client: TestClient[Any, Any], admin_ctx: WebContext
) -> None:
    resp = await client.get(f"/admin?token={TOKEN}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin"
    assert live(admin_ctx, set_cookie_of(resp).value)
    # a Bearer header shows the page at once (and starts a session for its scripts)
    resp = await client.get("/admin", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200 and live(admin_ctx, set_cookie_of(resp).value)


async def test_the_api_accepts_the_cookie_until_it_expires(
    client: TestClient[Any, Any], clock: Clock
) -> None:
    value = set_cookie_of(await sign_in(client)).value
    app = client.app

    def allowed(method: str = "GET", **headers: str) -> bool:
        request = make_mocked_request(method, "/api/v1/silences", headers=headers, app=app)
        return authorized(request)

    assert allowed(**with_cookie(value))
    assert not allowed()
    # header and query keep working, and a token that is given must be right
    assert allowed(Authorization=f"Bearer {TOKEN}")
    assert not allowed(**with_cookie(value, Authorization="Bearer wrong"))
    # writes with the cookie only from this origin (another port is "same-site")
    host = "127.0.0.1:8080"
    assert allowed("POST", **with_cookie(value, Host=host, Origin=f"http://{host}"))
    assert allowed("DELETE", **with_cookie(value))  # no Origin: not a cross-origin browser call
    assert not allowed("POST", **with_cookie(value, Host=host, Origin="http://127.0.0.1:9999"))
    assert not allowed("DELETE", **with_cookie(value, Host=host, Origin="https://evil.example"))
    # a forged cookie, and the real one once expired
    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    assert not allowed(**with_cookie(forged))
    assert (await client.get("/admin", headers=with_cookie(forged))).status == 401
    clock.now = NOW + DEFAULT_LIFETIME_S
    assert not allowed(**with_cookie(value))
    resp = await client.get("/admin", headers=with_cookie(value))
    assert resp.status == 401
    assert (await client.get("/api/v1/silences", headers=with_cookie(value))).status == 401


async def test_signing_out_clears_the_cookie_and_ends_that_session(
    client: TestClient[Any, Any],
) -> None:
    first = set_cookie_of(await sign_in(client)).value
    second = set_cookie_of(await sign_in(client)).value
    resp = await client.post("/admin/logout", headers=with_cookie(first), allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin"
    cleared = set_cookie_of(resp)
    assert cleared.value == "" and int(cleared["max-age"]) == 0
    assert (await client.get("/admin", headers=with_cookie(first))).status == 401
    assert (await client.get("/admin", headers=with_cookie(second))).status == 200
    # signing out with a dead cookie changes nothing
    resp = await client.post("/admin/logout", headers=with_cookie(first), allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/admin", headers=with_cookie(second))).status == 200


async def test_without_a_token_nobody_signs_in(admin_ctx: WebContext) -> None:
    admin_ctx.admin_token = lambda: ""
    app = create_app(admin_ctx)
    server = TestServer(app, host="127.0.0.1")
    async with TestClient(server, cookie_jar=aiohttp.DummyCookieJar()) as test_client:
        resp = await test_client.post("/admin/login", data={"token": ""}, allow_redirects=False)
        assert resp.status == 401 and "Set-Cookie" not in resp.headers
        assert admin_ctx.sessions is not None
        value = await admin_ctx.sessions.create("")
        assert (await test_client.get("/admin", headers=with_cookie(value))).status == 401


# ---------------------------------------------------------------------- the page, for real
async def page_text(page: Page, selector: str) -> str:
    locator = page.locator(selector)
    return " ".join(await locator.all_inner_texts()) if await locator.count() else ""


async def api_silences(base: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(
        f"{base}/api/v1/silences", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as r:
        assert r.status == 200
        return list((await r.json())["silences"])


async def test_admin_page_in_chromium(tmp_path: Path, mosquitto: servers.Server) -> None:
    hook = WebhookReceiver()
    await hook.start()
    mesh = ScriptedMesh(mosquitto.port, backbone_edges(), {"gw"})
    config = collector_config(
        tmp_path, mosquitto.port, http={"admin_token": TOKEN},
        notifiers=[{"name": "hook", "type": "webhook", "url": hook.url, "timeout_s": 2}],
    )  # fmt: skip
    service = await started(config)
    base = service.http_url
    try:
        await mesh.start()

        async def settled() -> bool:
            topo = service.topology
            online = sum(1 for n in topo.nodes.values() if n.online)
            return online == 13 and topo.graph.number_of_edges() >= len(backbone_edges())

        await eventually(settled, 15, "mesh online")

        # without a token: 401 and no data, in plain HTTP ...
        async with aiohttp.ClientSession() as s, s.get(f"{base}/admin") as r:
            assert r.status == 401
            body = await r.text()
            assert "l0" not in body and "gw" not in body and TOKEN not in body

        async with chromium() as browser:
            context = await browser.new_context(viewport=DESKTOP_SIZE)
            page = await context.new_page()
            errors = console_errors(page)
            # ... and in the browser
            response = await page.goto(f"{base}/admin")
            assert response is not None and response.status == 401
            assert await page.locator("#outages").count() == 0
            assert await page.locator("input#token[type=password]").count() == 1
            # a wrong token: 401 again, with a plain message, and the token not in the page
            await page.fill("#token", "not-the-token-42")
            async with page.expect_navigation() as nav:
                await page.click("#signin-form button[type=submit]")
            assert (await nav.value) is not None and (await nav.value).status == 401
            assert "not right" in await page_text(page, "#signin-error")
            assert "not-the-token-42" not in await page.content()
            assert await context.cookies() == []

            # Chromium logs each 401 page load as an error; those two are all there is
            assert len(errors) == 2 and all("status of 401" in e for e in errors), errors
            errors.clear()

            # the right token: a session cookie that is not the token, then the page
            await page.fill("#token", TOKEN)
            async with page.expect_navigation() as nav:
                await page.click("#signin-form button[type=submit]")
            final = await nav.value
            assert final is not None and final.status == 200 and page.url == f"{base}/admin"
            cookies = await context.cookies()
            assert [c["name"] for c in cookies] == [SESSION_COOKIE]
            cookie = cookies[0]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            assert not cookie["secure"]
            assert TOKEN not in cookie["value"]
            assert TOKEN not in await page.content()
            # (a selector, not wait_for_function: the page's CSP forbids eval, rightly)
            await page.locator("body[data-ready='1']").wait_for(timeout=10_000)

            # weak points: b cuts off the ten leaves, r1 those and b; largest first
            row_b = page.locator("#weak-points tr[data-kind='node'][data-name='b']")
            assert await row_b.count() == 1
            text_b = await row_b.inner_text()
            assert all(leaf in text_b for leaf in LEAVES) and "10" in text_b
            names = await page.locator("#weak-points tr[data-kind]").evaluate_all(
                "rows => rows.map(r => r.dataset.kind + ':' + r.dataset.name)")
            assert names.index("node:r1") < names.index("node:b"), names
            counts = await page.locator("#weak-points td[data-label='Cut off']").all_inner_texts()
            assert [int(c) for c in counts] == sorted((int(c) for c in counts), reverse=True)
            assert "No outages" in await page_text(page, "#outages")

            # the backbone node loses power: the outage appears on the page by itself
            mesh.drop("b")
            await eventually(lambda: _has(page, "#outages article.outage"), 20, "outage shown")
            card = page.locator("#outages article.outage")
            assert await card.count() == 1
            assert (await card.locator(".cause").inner_text()).strip() == "b"
            assert "10 nodes cut off" in await card.inner_text()
            chips = await card.locator(".affected .chip").all_inner_texts()
            assert sorted(chips) == sorted(LEAVES)
            assert "since" in await card.locator(".since").inner_text()
            await eventually(lambda: _true(bool(hook.received)), 5, "webhook")
            assert await card.get_attribute("id") == hook.received[0]["id"]

            # the alert log shows the firing entry, where it went, not silenced
            await eventually(lambda: _has(page, "#alert-log tr[data-status='firing']"), 12,
                             "alert log entry")
            entry = page.locator("#alert-log tr[data-status='firing'][data-kind='outage']")
            assert await entry.count() == 1
            entry_text = await entry.inner_text()
            assert "b is down" in entry_text and "hook" in entry_text and "critical" in entry_text
            assert (await entry.locator("td[data-label='Silenced']").inner_text()).strip() == "no"
            assert "outage" in await page_text(page, "#incidents")

            # a silence made on the page is in the API and on the page
            await page.fill("#silence-node", "hill-*")
            await page.fill("#silence-duration", "2h")
            await page.fill("#silence-reason", "antenna swap")
            await page.click("#silence-form button[type=submit]")
            row = page.locator("#silences tr[data-node='hill-*']")
            await row.wait_for(timeout=5000)
            assert "antenna swap" in await row.inner_text()
            made = await api_silences(base)
            assert [(s["node"], s["reason"]) for s in made] == [("hill-*", "antenna swap")]
            assert made[0]["ends_at"] - made[0]["starts_at"] == pytest.approx(7200)

            await page.evaluate("window.scrollTo(0, 0)")
            await screenshot(page, "admin-desktop")
            await page.set_viewport_size(PHONE_SIZE)
            await page.evaluate("window.scrollTo(0, 0)")
            await asyncio.sleep(0.2)
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{overflow}px wider than a phone"
            await screenshot(page, "admin-phone")
            await page.set_viewport_size(DESKTOP_SIZE)

            # end it: gone from the API and from the page
            await row.locator("button.end").click()
            await row.wait_for(state="detached", timeout=5000)
            assert await api_silences(base) == []
            assert "No silences" in await page_text(page, "#silences")
            assert errors == [], errors

            # signing out ends the session for the page and for the APIs
            async with page.expect_navigation() as nav:
                await page.click("form.logout button[type=submit]")
            assert (await nav.value) is not None and (await nav.value).status == 401
            assert await context.cookies() == []
            async with aiohttp.ClientSession() as s, s.get(
                f"{base}/api/v1/silences", headers=with_cookie(cookie["value"])
            ) as r:
                assert r.status == 401
            await context.close()
    finally:
        await mesh.stop()
        await service.stop()
        await hook.stop()


# ---------------------------------------------------------------------- rendering, stand-in data
EVIL = '<img src=x onerror="document.body.dataset.pwned=1">'


def payload(kind: str, severity: str, summary: str, *, nodes: list[str] | None = None,
            links: list[LinkRef] | None = None, affected: list[str] | None = None,
            started: float = NOW - 600, status: str = "firing") -> dict[str, Any]:
    alert = Alert(id=f"{kind}-{abs(hash(summary)) % 10**12:012d}", status=status,  # type: ignore[arg-type]
                  kind=kind, severity=severity, summary=summary, started_at=started,
                  cause_nodes=nodes or [], cause_links=links or [], affected=affected or [],
                  sent_at=started)
    return alert.to_payload()


class StandInAlerting:
    """What the admin page reads from `Alerting`, as fixed data (every kind of incident)."""

    def __init__(self) -> None:
        many = [f"n{i:03d}" for i in range(200)]
        self.open = [
            payload("outage", "critical", "hill-3 is down; 200 nodes cut off",
                    nodes=["hill-3"], affected=many),
            payload("silent", "warning", "roof-7 agent is silent, its radio is heard",
                    nodes=["roof-7"]),
            payload("flapping", "warning", "f-1 flapped 4 times in 10 min", nodes=["f-1"]),
            payload("degraded", "warning", "link a — b degraded: signal -84 dBm",
                    links=[LinkRef("a", "b", "wifi")]),
            payload("weak_point", "info", EVIL, nodes=["bb-1"], affected=["x1", "x2"]),
        ]
        self.log = [
            {"ts": NOW - 600 + i, "id": p["id"], "status": "firing", "kind": p["kind"],
             "severity": p["severity"], "summary": p["summary"], "notifiers": ["ops"],
             "silenced": p["kind"] == "flapping", "payload": p}
            for i, p in enumerate(self.open)
        ]
        self.log.append({**self.log[1], "ts": NOW - 10, "status": "resolved",
                         "notifiers": []})
        self.made: list[Silence] = []

    def outages(self) -> list[dict[str, Any]]:
        return [p for p in self.open if p["kind"] == "outage"]

    def incidents(self) -> list[dict[str, Any]]:
        return self.open

    def weak_points(self) -> dict[str, Any]:
        cut = [f"n{i:03d}" for i in range(200)]
        return {
            "computed_at": NOW - 30,
            "nodes": [{"node": "small", "cut_off": ["s1"], "cut_off_count": 1},
                      {"node": "hill-3", "cut_off": cut, "cut_off_count": 750}],
            "links": [{"a": "gw", "b": "hill-3", "cut_off": cut[:3], "cut_off_count": 3}],
            "without_gateway": ["island-1"],
            "fading_links": [{"src": "a", "dst": "b", "iface": "wlan0", "kind": "wifi",
                              "baseline_dbm": -60.0, "signal_dbm": -67.5, "degraded": False}],
        }

    async def alert_log(self, since: float, limit: int) -> list[dict[str, Any]]:
        return self.log[-limit:]

    async def silences(self, include_expired: bool = False) -> list[Silence]:
        return [s for s in self.made if not s.ended_early]

    async def add_silence(self, silence: Silence) -> Silence:
        saved = dataclasses.replace(silence, id=len(self.made) + 1)
        self.made.append(saved)
        return saved

    async def end_silence(self, silence_id: int) -> bool:
        for i, s in enumerate(self.made):
            if s.id == silence_id and not s.ended_early:
                self.made[i] = dataclasses.replace(s, ended_early=True)
                return True
        return False


async def test_every_incident_kind_and_long_lists_render_safely(admin_ctx: WebContext) -> None:
    stand_in = StandInAlerting()
    admin_ctx.alerting = cast(Any, stand_in)
    admin_ctx.clock = time.time  # the browser's clock judges "active" and "for …"
    runner = web.AppRunner(create_app(admin_ctx))
    await runner.setup()
    port = servers.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with chromium() as browser:
            context = await browser.new_context(viewport=DESKTOP_SIZE)
            page = await context.new_page()
            errors = console_errors(page)
            assert (await page.goto(f"{base}/admin?token={TOKEN}")) is not None
            assert page.url == f"{base}/admin"
            await page.locator("body[data-ready='1']").wait_for(timeout=10_000)
            kinds = await page.locator("#incidents tr[data-kind]").evaluate_all(
                "rows => rows.map(r => r.dataset.kind)")
            assert sorted(kinds) == sorted(["outage", "silent", "flapping", "degraded",
                                            "weak_point"])
            incidents = await page_text(page, "#incidents")
            assert "roof-7" in incidents and "link a — b (wifi)" in incidents
            # hostile text is text
            assert EVIL in incidents
            assert await page.evaluate("document.body.dataset.pwned") is None
            assert await page.locator("#incidents img, #alert-log img").count() == 0
            # a long cut-off list: a dozen shown, the rest folded, the API cap said
            card = page.locator("#outages article.outage")
            assert "200 nodes cut off" in await card.inner_text()
            assert await card.locator(".affected > .nodes > .chip").count() == 12
            assert "+188 more" in await card.locator("details.more summary").inner_text()
            first = page.locator("#weak-points tr[data-kind]").first
            assert await first.get_attribute("data-name") == "hill-3"
            assert "+738 more (188 listed)" in await first.inner_text()
            assert "island-1" in await page_text(page, "#weak-points")
            assert "-7.5 dB" in await page_text(page, "#fading-links")
            # the log: newest first, where it went, silenced or not
            rows = page.locator("#alert-log tbody tr")
            assert await rows.count() == 6
            assert await rows.first.get_attribute("data-status") == "resolved"
            assert "nobody" in await rows.first.inner_text()
            flap = page.locator("#alert-log tr[data-kind='flapping']")
            assert "silenced" in await flap.locator("td[data-label='Silenced']").inner_text()
            # durations: a bad one is refused on the page, a good one is sent in seconds
            await page.fill("#silence-node", "bb-*")
            await page.fill("#silence-duration", "soon")
            await page.click("#silence-form button[type=submit]")
            assert "Duration like" in await page_text(page, "#silence-msg")
            assert stand_in.made == []
            await page.fill("#silence-duration", "1h30m")
            await page.fill("#silence-tag", "backbone")
            await page.click("#silence-form button[type=submit]")
            await page.locator("#silences tr[data-node='bb-*']").wait_for(timeout=5000)
            made = stand_in.made[0]
            assert (made.node, made.tag, made.created_by) == ("bb-*", "backbone", "admin page")
            assert made.ends_at - made.starts_at == 5400
            assert "tag backbone" in await page_text(page, "#silences")
            assert errors == [], errors
            await context.close()
    finally:
        await runner.cleanup()


async def _has(page: Page, selector: str) -> bool:
    return await page.locator(selector).count() > 0


async def _true(value: bool) -> bool:
    return value
