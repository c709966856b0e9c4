"""The maintainer view `/admin`: sign-in, the session cookie, and the page itself in a real
Chromium against a collector on a real Mosquitto with a scripted mesh."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
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
from meshmon.demo.network import load_network
from meshmon.metrics import Metrics
from meshmon.model.analysis import gateway_cuts
from meshmon.model.wire import Info
from meshmon.storage.sessions import DEFAULT_LIFETIME_S, SessionStore
from meshmon.web.admin import NAME_COOKIE, SESSION_COOKIE
from meshmon.web.alerts_api import authorized
from meshmon.web.app import create_app
from meshmon.web.context import WebContext
from tests import servers
from tests.browser import DESKTOP, PHONE, chromium, console_errors, screenshot, wait_for_js
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


def cleared(resp: aiohttp.ClientResponse, name: str) -> bool:
    """Whether the response deletes cookie `name` (empty value, Max-Age 0)."""
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    return name in jar and jar[name].value == "" and int(jar[name]["max-age"]) == 0


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


async def test_a_name_given_at_sign_in_is_kept_beside_the_session(
    client: TestClient[Any, Any],
) -> None:
    hostile = "Ana <b>Ops</b>\u202e\n  on call"
    resp = await client.post("/admin/login", data={"token": TOKEN, "name": hostile},
                             allow_redirects=False)
    assert resp.status == 303
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    session, name = jar[SESSION_COOKIE], jar[NAME_COOKIE]
    assert name["httponly"] and name["samesite"] == "Strict" and name["path"] == "/admin"
    assert int(name["max-age"]) == DEFAULT_LIFETIME_S
    cookies = f"{SESSION_COOKIE}={session.value}; {NAME_COOKIE}={name.value}"
    body = await (await client.get("/admin", headers={"Cookie": cookies})).text()
    # one line of text, escaped: the bidi override and the newline are gone
    assert 'data-user="Ana &lt;b&gt;Ops&lt;/b&gt; on call"' in body
    assert "Signed in as Ana &lt;b&gt;Ops&lt;/b&gt; on call" in body
    assert "<b>Ops" not in body and "\u202e" not in body
    # signing in again without a name forgets it; signing out clears it
    resp = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
    assert cleared(resp, NAME_COOKIE)
    resp = await client.post("/admin/logout", headers={"Cookie": cookies}, allow_redirects=False)
    assert cleared(resp, NAME_COOKIE) and cleared(resp, SESSION_COOKIE)
    # a name cookie without a session opens nothing
    resp = await client.get("/admin", headers={"Cookie": f"{NAME_COOKIE}={name.value}"})
    assert resp.status == 401 and "Ana" not in await resp.text()


async def test_recently_ended_silences_on_request(
    client: TestClient[Any, Any], admin_ctx: WebContext
) -> None:
    stand_in = StandInAlerting()
    admin_ctx.alerting = cast(Any, stand_in)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for node, start, end, early in (("old", NOW - 90_000, NOW - 86_500, False),
                                    ("ran-out", NOW - 7200, NOW - 3600, False),
                                    ("ended-early", NOW - 600, NOW - 60, True),
                                    ("active", NOW - 60, NOW + 3600, False),
                                    ("later", NOW + 3600, NOW + 7200, False)):
        stand_in.made.append(Silence(node=node, starts_at=start, ends_at=end,
                                     id=len(stand_in.made) + 1, ended_early=early))

    async def nodes(query: str) -> list[str]:
        resp = await client.get(f"/api/v1/silences{query}", headers=auth)
        assert resp.status == 200
        return [s["node"] for s in (await resp.json())["silences"]]

    assert await nodes("") == ["active", "later"]
    assert await nodes(f"?ended_since={NOW - 86_400:.0f}") == [
        "ran-out", "ended-early", "active", "later"]
    assert len(await nodes("?all=1")) == 5
    for bad in ("soon", "nan", "inf"):
        resp = await client.get(f"/api/v1/silences?ended_since={bad}", headers=auth)
        assert resp.status == 400 and "ended_since" in (await resp.json())["error"]


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

            # the right token (and a name): a session cookie that is not the token
            await page.fill("#token", TOKEN)
            await page.fill("#name", "Ana Ops")
            async with page.expect_navigation() as nav:
                await page.click("#signin-form button[type=submit]")
            final = await nav.value
            assert final is not None and final.status == 200 and page.url == f"{base}/admin"
            cookies = {c["name"]: c for c in await context.cookies()}
            assert set(cookies) == {SESSION_COOKIE, NAME_COOKIE}
            cookie = cookies[SESSION_COOKIE]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            assert not cookie["secure"]
            assert TOKEN not in cookie["value"]
            assert TOKEN not in await page.content()
            assert await page_text(page, "#who") == "Signed in as Ana Ops"
            # (a selector, not wait_for_function: the page's CSP forbids eval, rightly)
            await page.locator("body[data-ready='1']").wait_for(timeout=10_000)

            # weak points ranked by what they cut off; failures with the same cut-off set
            # are one row: gw and its link (12), r1 and the link b — r1 (11), b (10)
            groups = page.locator("#weak-points tr.group")
            assert await groups.count() == 3
            items = await groups.evaluate_all(
                "rows => rows.map(r => [...r.querySelectorAll('.item')]"
                ".map(i => i.dataset.kind + ':' + i.dataset.name))")
            assert items == [["node:gw", "link:gw — r1"], ["node:r1", "link:b — r1"], ["node:b"]]
            counts = await page.locator("#weak-points td[data-label='Cut off']").all_inner_texts()
            assert [int(c) for c in counts] == [12, 11, 10]
            text_b = await groups.nth(2).inner_text()
            assert all(leaf in text_b for leaf in LEAVES[:8]) and "+2 more" in text_b
            assert await page_text(page, "#n-weak") == "(3)"
            assert "No outages" in await page_text(page, "#outages")

            # the backbone node loses power: the outage appears on the page by itself
            mesh.drop("b")
            await eventually(lambda: _has(page, "#outages article.outage"), 20, "outage shown")
            card = page.locator("#outages article.outage")
            assert await card.count() == 1
            assert (await card.locator(".cause").inner_text()).strip() == "b"
            assert "10 nodes cut off" in await card.inner_text()
            # why it is critical, in words
            assert await card.locator(".why").inner_text() == (
                "Critical: cuts off 10 nodes from every gateway")
            chips = await card.locator(".affected .chip").all_text_contents()
            assert sorted(chips) == sorted(LEAVES)
            assert "since" in await card.locator(".since").inner_text()
            # where to look: the map, the installer view, the node's history
            hrefs = await card.locator(".goto a").evaluate_all(
                "a => a.map(x => x.getAttribute('href'))")
            assert hrefs == ["/#node=b", "/install/b", "/node/b"]
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

            # "Silence this": pre-filled with the cause, the name from signing in
            await card.locator("button.silence-this").click()
            quick = card.locator("form.quick-silence")
            assert await quick.locator("input[name=nodes]").input_value() == "b"
            assert await quick.locator("input[name=by]").input_value() == "Ana Ops"
            await quick.locator("select[name=duration]").select_option(label="1 h")
            await quick.locator("input[name=reason]").fill("replacing the PSU")
            await quick.locator("button[type=submit]").click()
            silenced = page.locator("#outages article.outage .silenced")
            await silenced.wait_for(timeout=5000)
            silenced_text = await silenced.inner_text()
            assert "Silenced until" in silenced_text and "by Ana Ops" in silenced_text
            assert "replacing the PSU" in silenced_text
            assert await page.locator("#outages form.quick-silence").count() == 0
            made = await api_silences(base)
            assert [(s["node"], s["created_by"], s["reason"]) for s in made] == [
                ("b", "Ana Ops", "replacing the PSU")]
            assert made[0]["ends_at"] - made[0]["starts_at"] == pytest.approx(3600)
            row_b = page.locator("#silences tr[data-node='b']")
            assert "Ana Ops" in await row_b.locator("td[data-label='By']").inner_text()

            # a silence made with the form is in the API and on the page, by the same name
            await page.fill("#silence-node", "hill-*")
            await page.fill("#silence-duration", "2h")
            await page.fill("#silence-reason", "antenna swap")
            await page.click("#silence-form button[type=submit]")
            row = page.locator("#silences tr[data-node='hill-*']")
            await row.wait_for(timeout=5000)
            assert "antenna swap" in await row.inner_text()
            made = await api_silences(base)
            assert [(s["node"], s["reason"], s["created_by"]) for s in made] == [
                ("b", "replacing the PSU", "Ana Ops"), ("hill-*", "antenna swap", "Ana Ops")]
            assert made[1]["ends_at"] - made[1]["starts_at"] == pytest.approx(7200)
            assert await page_text(page, "#n-silences") == "(2)"

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

            # end it: gone from the active ones, listed as recently ended
            await row.locator("button.end").click()
            await row.wait_for(state="detached", timeout=5000)
            assert [s["node"] for s in await api_silences(base)] == ["b"]
            ended = page.locator("#silences-ended tr.ended[data-node='hill-*']")
            assert await ended.count() == 1
            await page.click("#ended-box summary")
            ended_text = await ended.inner_text()
            assert "ended early" in ended_text and "Ana Ops" in ended_text
            assert await page_text(page, "#n-ended") == "(1)"
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
            started: float = NOW - 600, status: str = "firing",
            details: dict[str, Any] | None = None) -> dict[str, Any]:
    alert = Alert(id=f"{kind}-{abs(hash(summary)) % 10**12:012d}", status=status,  # type: ignore[arg-type]
                  kind=kind, severity=severity, summary=summary, started_at=started,
                  cause_nodes=nodes or [], cause_links=links or [], affected=affected or [],
                  sent_at=started, details=details or {})
    return alert.to_payload()


class StandInAlerting:
    """What the admin page reads from `Alerting`, as fixed data (every kind of incident)."""

    def __init__(self, clock: Callable[[], float] = lambda: NOW) -> None:
        self.clock = clock
        self.open: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.weak: dict[str, Any] = {"computed_at": NOW - 30, "nodes": [], "links": [],
                                     "without_gateway": [], "fading_links": []}
        self.made: list[Silence] = []

    def outages(self) -> list[dict[str, Any]]:
        return [p for p in self.open if p["kind"] == "outage"]

    def incidents(self) -> list[dict[str, Any]]:
        return self.open

    def weak_points(self) -> dict[str, Any]:
        return self.weak

    async def alert_log(self, since: float, limit: int) -> list[dict[str, Any]]:
        return self.log[-limit:]

    async def silences(self, include_expired: bool = False) -> list[Silence]:
        now = self.clock()
        found = [s for s in self.made if include_expired or s.active(now) or s.starts_at > now]
        return sorted(found, key=lambda s: s.starts_at)

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


def demo_sized(now: float) -> tuple[StandInAlerting, int]:
    """What /admin has to show on the demo network (Freifunk Bremen, 833 nodes): the real
    weak points of its graph with its gateways (the snapshot's own flag), outages of the
    worst of them, every other kind of incident, a full alert log and a week of silences.
    Also the number of distinct cut-off sets among the weak points."""
    net = load_network()
    adj: dict[str, list[str]] = {n.id: [] for n in net.nodes}
    for link in net.links:
        adj[link.source].append(link.target)
        adj[link.target].append(link.source)
    cuts = gateway_cuts(adj, [n.id for n in net.nodes if n.is_gateway])
    stand_in = StandInAlerting(clock=time.time)
    stand_in.weak = {
        "computed_at": now - 30,
        "nodes": [{"node": n, "cut_off": cut[:200], "cut_off_count": len(cut)}
                  for n, cut in cuts.node_cuts.items()],
        "links": [{"a": a, "b": b, "cut_off": cut[:200], "cut_off_count": len(cut)}
                  for (a, b), cut in cuts.link_cuts.items()],
        "without_gateway": cuts.unreachable,
        "fading_links": [{"src": lk.source, "dst": lk.target, "iface": "wlan0", "kind": "wifi",
                          "baseline_dbm": -60.0, "signal_dbm": -60.0 - i % 9,
                          "degraded": i % 3 == 0} for i, lk in enumerate(net.links[:30])],
    }
    distinct = len({tuple(c) for c in [*cuts.node_cuts.values(), *cuts.link_cuts.values()]})
    worst = sorted(cuts.node_cuts.items(), key=lambda kv: -len(kv[1]))[:8]
    leaves = [n.id for n in net.nodes if n.id not in cuts.node_cuts][:2]
    links = net.links[100:112]
    stand_in.open = [
        *(payload("outage", "critical", f"{n} is down; {len(cut)} nodes cut off", nodes=[n],
                  affected=cut[:200], started=now - 600 * i) for i, (n, cut) in enumerate(worst)),
        *(payload("outage", "warning", f"{n} is down", nodes=[n], started=now - 60)
          for n in leaves),
        *(payload("flapping", "warning", f"{n.id} failed 4 times within 10m", nodes=[n.id],
                  started=now - 900, details={"changes": 4, "window_s": 600})
          for n in net.nodes[:12]),
        *(payload("silent", "warning", f"{n.id}: agent silent", nodes=[n.id],
                  started=now - 1200) for n in net.nodes[12:24]),
        *(payload("degraded", "warning", f"link {lk.source} — {lk.target} degraded",
                  links=[LinkRef(lk.source, lk.target, "wifi")], started=now - 300,
                  details={f"{lk.source}->{lk.target}": ["signal -84 dBm < -80"]})
          for lk in links),
        payload("weak_point", "info", "bb-1 is now a single point of failure", nodes=["bb-1"],
                affected=["x1", "x2"], started=now - 60),
    ]
    stand_in.log = [
        {"ts": now - 3600 + i * 10, "id": p["id"], "status": "firing", "kind": p["kind"],
         "severity": p["severity"], "summary": p["summary"], "notifiers": ["ops"] if i % 4 else [],
         "silenced": i % 7 == 0, "payload": p}
        for i, p in enumerate(stand_in.open[j % len(stand_in.open)] for j in range(199))
    ]
    stand_in.log.append({**stand_in.log[-1], "ts": now - 5, "summary": EVIL, "id": "evil"})
    for i in range(12):
        stand_in.made.append(Silence(node=f"bb-{i}", starts_at=now - 60,
                                     ends_at=now + 3600 * (i + 1), reason="antenna swap",
                                     created_by="Ana Ops", id=i + 1))
    for i in range(30):  # a month of ended ones: the page lists the last week's
        stand_in.made.append(Silence(node=f"old-{i}", starts_at=now - 86_400 * i - 7200,
                                     ends_at=now - 86_400 * i - 600, reason="maintenance",
                                     created_by="Bo", ended_early=i % 2 == 0, id=100 + i))
    return stand_in, distinct


PAGE_SIZE = "[document.documentElement.scrollHeight, " \
    "document.documentElement.scrollWidth - document.documentElement.clientWidth]"
MAX_DESKTOP_PX = 5000
MAX_PHONE_PX = 10_000
"""the admin page's height for a demo-sized network: 4,444 and 8,975 px here when written.
On `meshmon demo` itself (measured in Chromium after 60 s): 27,094 px on a desktop and
87,226 px on a phone, 169 px wider than the phone, before the page was reworked; 3,762
and 7,651 px, nothing sideways, after"""


async def test_a_demo_sized_network_fits_on_a_phone_and_renders_safely(
    admin_ctx: WebContext,
) -> None:
    now = time.time()  # the browser's clock judges "active" and "for …"
    stand_in, distinct = demo_sized(now)
    admin_ctx.alerting = cast(Any, stand_in)
    for node in load_network().nodes:  # the collector knows them: silences by id are taken
        admin_ctx.topology.apply_info(Info(v=1, node=node.id), now)
    admin_ctx.clock = time.time
    runner = web.AppRunner(create_app(admin_ctx))
    await runner.setup()
    port = servers.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with chromium() as browser:
            context = await browser.new_context(viewport=PHONE_SIZE)
            page = await context.new_page()
            errors = console_errors(page)
            assert (await page.goto(f"{base}/admin?token={TOKEN}")) is not None
            assert page.url == f"{base}/admin"
            await page.locator("body[data-ready='1']").wait_for(timeout=10_000)
            # short, and nothing sideways on a 390 px phone
            height, overflow = await page.evaluate(PAGE_SIZE)
            await screenshot(page, "admin-demo-phone")
            assert overflow <= 0, f"{overflow} px wider than a phone"
            assert height <= MAX_PHONE_PX, f"{height} px tall on a phone"
            await page.set_viewport_size(DESKTOP_SIZE)
            await asyncio.sleep(0.2)
            height, overflow = await page.evaluate(PAGE_SIZE)
            await screenshot(page, "admin-demo-desktop")
            assert overflow <= 0 and height <= MAX_DESKTOP_PX, (height, overflow)

            # counts in the header; the long lists capped, largest first
            counts = {n: await page_text(page, f"#n-{n}")
                      for n in ("outages", "incidents", "weak", "silences", "ended")}
            assert counts == {"outages": "(10)", "incidents": "(37)", "weak": f"({distinct})",
                              "silences": "(12)", "ended": "(7)"}
            cards = page.locator("#outages article.outage")
            assert await cards.count() == 5
            cut = await cards.locator(".affected .count").all_inner_texts()
            sizes = [int(c.split()[0]) for c in cut]
            assert sizes == sorted(sizes, reverse=True) and sizes[0] >= 100
            await page.click("#outages button.show-all")
            assert await cards.count() == 10
            assert "Warning: nobody else is cut off" in await cards.last.inner_text()
            await page.click("#outages button.show-all")
            assert await cards.count() == 5
            # weak points: one row per distinct cut-off set, ten of them until asked
            rows = page.locator("#weak-points tr.group")
            assert await rows.count() == 10
            await page.click("#weak-points button.show-all")
            assert await rows.count() == distinct
            counts_shown = [int(c) for c in await page.locator(
                "#weak-points td[data-label='Cut off']").all_inner_texts()]
            assert counts_shown == sorted(counts_shown, reverse=True)
            assert sum(int(r) for r in await rows.evaluate_all(
                "rows => rows.map(r => r.dataset.items)")) == (
                len(stand_in.weak["nodes"]) + len(stand_in.weak["links"]))
            first = rows.first
            assert "+" in await first.locator("details.more summary").inner_text()
            # the alert log is paged, newest first
            log_rows = page.locator("#alert-log tbody tr")
            assert await log_rows.count() == 15
            assert await page_text(page, "#alert-log .page") == "1–15 of 200 latest"
            newest = await log_rows.first.get_attribute("data-id")
            assert newest == "evil"
            await page.click("#alert-log button.older")
            assert await page_text(page, "#alert-log .page") == "16–30 of 200 latest"
            assert await log_rows.first.get_attribute("data-id") != newest
            assert "nobody" in await page_text(page, "#alert-log")
            # recently ended silences: the last week's, newest first
            await page.click("#ended-box summary")
            ended = await page.locator("#silences-ended tr.ended").evaluate_all(
                "rows => rows.map(r => r.dataset.node)")
            assert ended == [f"old-{i}" for i in range(7)]
            # every kind of incident says why it is open; hostile text is text
            await page.click("#incidents button.show-all")
            incidents = await page_text(page, "#incidents")
            for why in ("Warning: failed 4 times within 10m", "neighbours still hear",
                        "below the link thresholds: signal -84 dBm < -80",
                        "Info: 2 nodes would lose every gateway if it failed"):
                assert why in incidents
            await page.click("#alert-log button.newer")
            assert EVIL in await page_text(page, "#alert-log")
            assert await page.evaluate("document.body.dataset.pwned") is None
            assert await page.locator("#incidents img, #alert-log img").count() == 0
            # "Silence this" on a degraded link silences both its ends
            first_id = await page.locator("#incidents article.incident").first.get_attribute("id")
            card = page.locator(f"#incidents article.incident[data-id='{first_id}']")
            assert await card.get_attribute("data-kind") == "degraded"
            ends = await card.locator(".goto").evaluate_all("g => g.map(x => x.dataset.node)")
            await card.locator("button.silence-this").click()
            quick = card.locator("form.quick-silence")
            assert await quick.locator("input[name=nodes]").input_value() == " ".join(ends)
            await quick.locator("input[name=reason]").fill("realigning")
            await quick.locator("button[type=submit]").click()
            await card.locator(".silenced").wait_for(timeout=5000)
            assert [(m.node, m.reason, m.ends_at - m.starts_at) for m in stand_in.made[42:]] \
                == [(end, "realigning", 7200) for end in ends]
            assert "realigning" in await card.locator(".silenced").inner_text()
            # a typo is refused with the collector's hint, and the form stays open
            await card.locator("button.silence-this").click()
            await quick.locator("input[name=nodes]").fill(ends[0] + "x")
            await quick.locator("button[type=submit]").click()
            await wait_for_js(page, "document.querySelector('form.quick-silence .form-msg')"
                              ".textContent.includes('did you mean')", timeout=5000)
            assert len(stand_in.made) == 44
            # Chromium logs the refused request; that one is all there is
            assert len(errors) == 1 and "status of 422" in errors[0], errors
            errors.clear()
            await quick.locator("button.cancel").click()
            assert await page.locator("form.quick-silence").count() == 0
            # durations: a bad one is refused on the page, a good one is sent in seconds
            await page.fill("#silence-node", "bb-*")
            await page.fill("#silence-duration", "soon")
            await page.click("#silence-form button[type=submit]")
            assert "Duration like" in await page_text(page, "#silence-msg")
            assert len(stand_in.made) == 44
            await page.fill("#silence-duration", "1h30m")
            await page.fill("#silence-tag", "backbone")
            await page.click("#silence-form button[type=submit]")
            await page.locator("#silences tr[data-node='bb-*']").wait_for(timeout=5000)
            made = stand_in.made[-1]
            assert (made.node, made.tag, made.created_by) == ("bb-*", "backbone", "admin page")
            assert made.ends_at - made.starts_at == 5400
            assert errors == [], errors
            await context.close()
    finally:
        await runner.cleanup()


async def _has(page: Page, selector: str) -> bool:
    return await page.locator(selector).count() > 0


async def _true(value: bool) -> bool:
    return value
