"""The installer view: pure event building, the SSE stream over a real socket, and the page
in Debian's Chromium against a collector, a real Mosquitto and a real agent process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from meshmon.config import Config, InstallerConfig, PlannedLink
from meshmon.metrics import Metrics
from meshmon.model.core import Core
from meshmon.model.topology import Topology
from meshmon.model.wire import Report, Status
from meshmon.web import installer
from meshmon.web.app import create_app
from meshmon.web.context import WebContext
from meshmon.web.installer import (
    LIVE_STREAMS,
    fast_command,
    live_event,
    planned_signal,
    sse_event,
    verdict,
    worse_end,
)
from tests import servers
from tests.agent_process import CAPTURED_PEERS, start_agent, stop
from tests.browser import (
    DESKTOP,
    PHONE,
    chromium,
    console_errors,
    screenshot,
    wait_for_js,
)
from tests.integration.harness import Publisher, collector_config, eventually, started
from tests.web.conftest import MACS, NOW, SECRETS, build_core, build_topology

FAST = b'{"cmd":"fast","interval_s":1,"duration_s":10}'


# ---------------------------------------------------------------------- pure logic
def test_verdict_follows_the_thresholds() -> None:
    assert verdict(-50, -65, -75) == "good"
    assert verdict(-65, -65, -75) == "good"
    assert verdict(-65.1, -65, -75) == "fair"
    assert verdict(-75, -65, -75) == "fair"
    assert verdict(-75.5, -65, -75) == "poor"
    assert verdict(None, -65, -75) == "unknown"
    assert verdict(float("nan"), -65, -75) == "unknown"


def test_planned_signal_by_direction_and_reverse_fallback() -> None:
    planned = [
        PlannedLink(src="a", dst="b", signal_dbm=-60),
        PlannedLink(src="b", dst="a", signal_dbm=-62),
        PlannedLink(src="c", dst="a", signal_dbm=-70),
    ]
    assert planned_signal(planned, "a", "b") == -60
    assert planned_signal(planned, "b", "a") == -62
    assert planned_signal(planned, "a", "c") == -70  # only c → a budgeted: symmetric
    assert planned_signal(planned, "a", "d") is None
    assert planned_signal([], "a", "b") is None


def test_fast_command_is_the_wire_contract() -> None:
    cfg = InstallerConfig(fast_interval_s=1, fast_duration_s=600)
    assert json.loads(fast_command(cfg)) == {"cmd": "fast", "interval_s": 1, "duration_s": 600}
    assert json.loads(fast_command(InstallerConfig(fast_interval_s=0.5)))["interval_s"] == 0.5


def test_sse_event_is_one_data_line() -> None:
    raw = sse_event({"text": "two\nlines"})
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n")
    assert raw.count(b"\n") == 2
    assert json.loads(raw[6:]) == {"text": "two\nlines"}


def test_live_event_pairs_views_with_verdict_planned_and_no_secrets() -> None:
    topo = build_topology()
    cfg = InstallerConfig(planned=[PlannedLink(src="alpha", dst="bravo", signal_dbm=-58)])
    event = live_event(topo, "alpha", cfg, NOW + 4, fast_requested=True)
    assert event["node"] == "alpha" and event["known"] and event["reported"]
    assert event["state"] == "online" and event["online"] is True
    assert event["age_s"] == 4.0 and event["interval_s"] == 30
    assert event["fast"] == {"requested": True, "interval_s": 1, "duration_s": 120}
    assert event["thresholds"] == {"signal_dbm": [-65, -75], "tq": [200, 120], "etx": [1.5, 3.0]}
    links = {(e["peer"], e["kind"]): e for e in event["links"]}
    assert set(links) == {("bravo", "wifi"), ("charlie", "ethernet")}
    bravo = links["bravo", "wifi"]
    assert bravo["iface"] == "wlan0"
    assert bravo["out"]["signal_dbm"] == -61 and bravo["out"]["chains_dbm"] == [-63, -64]
    assert bravo["out"]["snr_db"] == 34 and bravo["out"]["tx_rate_mbps"] == 130
    assert bravo["out"]["expected_tput_mbps"] == 60 and bravo["out"]["age_s"] == 4.0
    # the radio's noise floor fills in the noise the link itself does not give
    assert bravo["out"]["noise_dbm"] == -95 and bravo["out"]["derived"] == ["noise_dbm"]
    assert bravo["in"]["signal_dbm"] == -64 and bravo["in"]["iface"] == "wlan1"
    assert bravo["signal_dbm"] == -61 and bravo["signal_from"] == "out"
    assert bravo["metric"] == "signal" and bravo["value"] == -61 and bravo["value_from"] == "out"
    assert (bravo["verdict_out"], bravo["verdict_in"], bravo["verdict"]) == ("good",) * 3
    assert bravo["verdict_by"] == "out"  # a tie: this node's end
    # bravo is private, but its hostname is public like on the map
    assert bravo["peer_name"] == "bravo-home"
    assert bravo["planned_signal_dbm"] == -58 and bravo["planned_diff_db"] == -3
    charlie = links["charlie", "ethernet"]
    assert charlie["out"] is None and charlie["in"] is not None
    assert charlie["verdict"] == "unknown" and charlie["signal_dbm"] is None
    assert charlie["metric"] is None and charlie["value"] is None and charlie["verdict_by"] is None
    # the peer known only by its MAC is counted, never shown
    assert event["unresolved_links"] == 1
    text = json.dumps(event)
    for secret in SECRETS:
        assert secret not in text


def test_live_event_lists_radio_links_first_each_worst_first() -> None:
    topo = Topology()
    topo.apply_report(Report.model_validate({
        "v": 1, "node": "roof", "ts": NOW, "seq": 1, "interval_s": 30,
        "links": [{"peer": "a-peer", "iface": "bat0", "kind": "batman", "tq": 200},
                  {"peer": "c-peer", "iface": "wlan0", "kind": "wifi", "signal_dbm": -70},
                  {"peer": "a-peer", "iface": "wlan0", "kind": "wifi", "signal_dbm": -60},
                  {"peer": "b-peer", "iface": "eth0", "kind": "ethernet"}]}), NOW)  # fmt: skip
    topo.apply_report(Report.model_validate({
        "v": 1, "node": "d-peer", "ts": NOW, "seq": 1, "interval_s": 30,
        "links": [{"peer": "roof", "iface": "wlan0", "kind": "wifi", "signal_dbm": -90}]}), NOW)
    event = live_event(topo, "roof", InstallerConfig(), NOW)
    # radio: d-peer poor (heard only from its side), c-peer fair, a-peer good; then the rest
    assert [(e["peer"], e["kind"], e["verdict"]) for e in event["links"]] == [
        ("d-peer", "wifi", "poor"), ("c-peer", "wifi", "fair"), ("a-peer", "wifi", "good"),
        ("a-peer", "batman", "good"), ("b-peer", "ethernet", "unknown")]


def test_worse_end_decides_and_a_tie_is_this_nodes() -> None:
    assert worse_end("good", "poor") == ("poor", "in")
    assert worse_end("fair", "good") == ("fair", "out")
    assert worse_end("fair", "fair") == ("fair", "out")
    assert worse_end("unknown", "fair") == ("fair", "in")
    assert worse_end("poor", "unknown") == ("poor", "out")
    assert worse_end("unknown", "unknown") == ("unknown", None)


def test_verdict_from_both_ends_and_the_metric_each_link_is_shown_in() -> None:
    topo = Topology()
    topo.apply_report(Report.model_validate({
        "v": 1, "node": "roof", "ts": NOW, "seq": 1, "interval_s": 30,
        "links": [{"peer": "far", "iface": "wlan0", "kind": "wifi", "signal_dbm": -55},
                  {"peer": "olsr-1", "iface": "wlan1", "kind": "olsr", "etx": 2.2},
                  {"peer": "bat-1", "iface": "bat0", "kind": "batman", "tq": 253}]}), NOW)
    for peer, link in (("far", {"kind": "wifi", "signal_dbm": -82}),
                       ("bat-1", {"kind": "batman", "tq": 195})):
        topo.apply_report(Report.model_validate({
            "v": 1, "node": peer, "ts": NOW, "seq": 1, "interval_s": 30,
            "links": [{"peer": "roof", "iface": "wlan0", **link}]}), NOW)
    links = {e["peer"]: e for e in live_event(topo, "roof", InstallerConfig(), NOW)["links"]}
    far = links["far"]  # good here, poor there: the far end decides
    assert (far["verdict_out"], far["verdict_in"], far["verdict"], far["verdict_by"]) == (
        "good", "poor", "poor", "in")
    assert far["value"] == -55 and far["value_from"] == "out"  # the figure follows the antenna
    bat = links["bat-1"]  # TQ 253 here, 195 there: GOOD 253 is not the verdict
    assert (bat["metric"], bat["value"], bat["verdict"], bat["verdict_by"]) == (
        "tq", 253, "fair", "in")
    olsr = links["olsr-1"]
    assert (olsr["metric"], olsr["value"], olsr["verdict"], olsr["verdict_by"]) == (
        "etx", 2.2, "fair", "out")


def test_live_event_uses_the_peer_view_when_this_node_has_no_reading() -> None:
    topo = build_topology()
    cfg = InstallerConfig(good_signal_dbm=-60, marginal_signal_dbm=-70,
                          planned=[PlannedLink(src="alpha", dst="bravo", signal_dbm=-60)])
    event = live_event(topo, "bravo", cfg, NOW)
    alpha = next(e for e in event["links"] if e["peer"] == "alpha")
    assert alpha["out"]["signal_dbm"] == -64 and alpha["in"]["signal_dbm"] == -61
    assert alpha["verdict"] == "fair"  # -64 here, -61 there: both fair
    assert alpha["planned_signal_dbm"] == -60 and alpha["planned_diff_db"] == -4
    # charlie's link from bravo is batman: TQ, no signal
    charlie = next(e for e in event["links"] if e["peer"] == "charlie")
    assert charlie["out"]["tq"] == 200 and charlie["verdict"] == "good"  # no signal: TQ 200 decides
    assert (charlie["metric"], charlie["value"], charlie["verdict_in"]) == ("tq", 200, "unknown")
    # delta never reported: only its info is known
    delta = live_event(topo, "delta", cfg, NOW)
    assert delta["known"] and not delta["reported"] and delta["interval_s"] is None
    assert delta["links"] == [] and delta["hostname"] is None  # an IP is no hostname


def test_live_event_of_an_unknown_node() -> None:
    event = live_event(build_topology(), "nobody", InstallerConfig(), NOW)
    assert event["known"] is False and event["reported"] is False
    assert event["state"] == "unknown" and event["online"] is False
    assert event["last_seen"] is None and event["age_s"] is None
    assert event["links"] == [] and event["unresolved_links"] == 0


def test_live_event_state_comes_from_state_of() -> None:
    event = live_event(build_topology(), "alpha", InstallerConfig(), NOW,
                       state_of=lambda n: "unreachable")
    assert event["state"] == "unreachable"


# ---------------------------------------------------------------------- the stream
class Stream:
    """Reads one SSE response: events as dicts, comments counted."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.comments = 0
        self.retry: int | None = None

    async def next(self, timeout: float = 2.0) -> dict[str, Any]:
        data = await asyncio.wait_for(self._message(), timeout)
        return json.loads(data)

    async def _message(self) -> str:
        data: list[str] = []
        while True:
            raw = await self.resp.content.readline()
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if data:
                    return "\n".join(data)
                continue
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith("retry: "):
                self.retry = int(line[7:])


class Sent:
    """The MQTT edge: what the app asked to publish, and when."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, bytes, float]] = []

    def __call__(self, node: str, payload: bytes) -> None:
        self.commands.append((node, payload, time.monotonic()))

    def to(self, node: str) -> list[bytes]:
        return [p for n, p, _ in self.commands if n == node]


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def live_ctx(sent: Sent) -> WebContext:
    config = Config.model_validate({"installer": {"fast_duration_s": 10}})
    return WebContext(core=build_core(), config=config, metrics=Metrics(),
                      clock=time.time, send_command=sent)


@pytest.fixture
async def client(live_ctx: WebContext) -> AsyncIterator[TestClient[Any, Any]]:
    c: TestClient[Any, Any] = TestClient(TestServer(create_app(live_ctx), host="127.0.0.1"))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def open_stream(client: TestClient[Any, Any], node: str) -> Stream:
    resp = await client.get(f"/api/v1/live/{node}")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["Cache-Control"] == "no-store"
    return Stream(resp)


def report(node: str, signal: float, interval_s: float = 30) -> Report:
    return Report.model_validate({
        "v": 1, "node": node, "ts": time.time(), "seq": 1, "interval_s": interval_s,
        "links": [{"peer_mac": MACS["bravo"][0], "iface": "wlan0", "kind": "wifi",
                   "signal_dbm": signal}],
    })  # fmt: skip


async def test_first_event_at_once_then_one_per_change(
    client: TestClient[Any, Any], live_ctx: WebContext
) -> None:
    started_at = time.monotonic()
    stream = await open_stream(client, "alpha")
    first = await stream.next()
    assert time.monotonic() - started_at < 1.0
    assert stream.retry == installer.RETRY_MS
    assert first["node"] == "alpha" and first["links"][0]["out"]["signal_dbm"] == -61
    assert live_ctx.live.watchers("alpha") >= 1

    live_ctx.core.apply(report("alpha", -70), time.time())
    live_ctx.catch_up()  # what the collector does after each ingest batch
    changed = await stream.next(1.0)
    bravo = next(e for e in changed["links"] if e["peer"] == "bravo")
    assert bravo["out"]["signal_dbm"] == -70 and bravo["verdict"] == "fair"

    # a burst of changes is coalesced: at most one event per MIN_EVENT_GAP_S
    for signal in range(-60, -50):
        live_ctx.core.apply(report("alpha", signal), time.time())
        live_ctx.catch_up()
        await asyncio.sleep(0.01)
    events = [await stream.next(1.0)]
    with pytest.raises(TimeoutError):
        while True:
            events.append(await stream.next(0.5))
    assert 1 <= len(events) <= 2
    last = next(e for e in events[-1]["links"] if e["peer"] == "bravo")
    assert last["out"]["signal_dbm"] == -51  # the latest state, nothing queued behind it
    stream.resp.close()


async def test_offline_without_a_wake_up_still_reaches_the_page(
    client: TestClient[Any, Any], live_ctx: WebContext
) -> None:
    stream = await open_stream(client, "alpha")
    assert (await stream.next())["online"] is True
    # expiry and status changes need not wake LiveHub: the stream notices by itself
    live_ctx.core.apply(Status(v=1, node="alpha", online=False), time.time())
    event = await stream.next(installer.POLL_S + 1.5)
    assert event["online"] is False and event["state"] == "offline"
    stream.resp.close()


async def test_heartbeat_comments_keep_an_idle_stream_open(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(installer, "HEARTBEAT_S", 0.3)
    stream = await open_stream(client, "alpha")
    await stream.next()
    with pytest.raises(TimeoutError):
        await stream.next(1.6)
    assert stream.comments >= 2
    stream.resp.close()


async def test_fast_sent_once_per_node_renewed_and_stopped_after_the_last_viewer(
    client: TestClient[Any, Any], live_ctx: WebContext, sent: Sent
) -> None:
    streams = client.app[LIVE_STREAMS]
    first = await open_stream(client, "alpha")
    await first.next()
    second = await open_stream(client, "alpha")
    await second.next()
    other = await open_stream(client, "bravo")
    await other.next()
    await asyncio.sleep(0.2)
    assert sent.to("alpha") == [FAST]  # one renewal loop per node, not per viewer
    assert sent.to("bravo") == [FAST]
    assert streams.renewing("alpha") and streams.open == 3
    # renewed every fast_duration_s / 2 = 5 s while a viewer stays
    first.resp.close()
    await eventually(lambda: _true(len(sent.to("alpha")) == 2), 6.5, "renewal")
    times = [t for n, _, t in sent.commands if n == "alpha"]
    assert 4.5 <= times[1] - times[0] <= 6.0
    assert streams.renewing("alpha")
    second.resp.close()
    other.resp.close()
    await eventually(lambda: _true(not streams.renewing("alpha")), 3, "renewal stopped")
    await eventually(lambda: _true(streams.open == 0 and not streams.renewing("bravo")), 3,
                     "all streams closed")
    assert live_ctx.live.watchers("alpha") == 0 and not live_ctx.live
    count = len(sent.commands)
    await asyncio.sleep(5.5)
    assert len(sent.commands) == count  # no renewal without a viewer


async def test_renewal_stops_when_the_last_viewer_leaves_as_the_node_reports(
    client: TestClient[Any, Any], live_ctx: WebContext, sent: Sent
) -> None:
    # the wake-up and the cancellation in the same loop turn (a report arriving as the
    # page closes): asyncio.wait_for on Python 3.11 swallowed this cancellation
    streams = client.app[LIVE_STREAMS]
    for _ in range(3):
        streams.acquire("alpha")
        await asyncio.sleep(0.05)
        live_ctx.live.changed("alpha")
        streams.release("alpha")
        await asyncio.sleep(0.05)
        assert not streams.renewing("alpha") and live_ctx.live.watchers("alpha") == 0
    assert sent.to("alpha") == [FAST] * 3


async def test_fast_again_when_the_node_still_reports_slowly(
    client: TestClient[Any, Any], live_ctx: WebContext, sent: Sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the agent restarted (or connected after the page opened) and lost fast mode
    monkeypatch.setattr(installer, "CATCH_UP_AFTER_S", 0.3)
    stream = await open_stream(client, "alpha")
    await stream.next()
    await eventually(lambda: _true(len(sent.to("alpha")) == 1), 2, "first fast")
    await asyncio.sleep(0.4)
    live_ctx.core.apply(report("alpha", -60, interval_s=1), time.time())
    live_ctx.catch_up()
    await asyncio.sleep(0.3)
    assert len(sent.to("alpha")) == 1  # reporting fast: nothing to catch up
    live_ctx.core.apply(report("alpha", -60, interval_s=30), time.time())
    live_ctx.catch_up()
    await eventually(lambda: _true(len(sent.to("alpha")) == 2), 2, "catch-up fast")
    stream.resp.close()


async def test_without_a_broker_the_stream_still_works(core: Core) -> None:
    ctx = WebContext(core=core, config=Config(), metrics=Metrics(), clock=lambda: NOW)
    c: TestClient[Any, Any] = TestClient(TestServer(create_app(ctx), host="127.0.0.1"))
    await c.start_server()
    try:
        stream = await open_stream(c, "alpha")
        event = await stream.next()
        assert event["fast"]["requested"] is False and event["links"]
        stream.resp.close()
    finally:
        await c.close()


async def test_invalid_node_ids_are_refused(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/live/-bad")
    assert resp.status == 404 and resp.content_type == "application/json"
    resp = await client.get("/install/-bad")
    assert resp.status == 404 and resp.content_type == "text/html"
    resp = await client.get("/install/" + "x" * 65)
    assert resp.status == 404


async def test_page_names_the_node_and_its_assets(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/install/roof-7.a_b")
    assert resp.status == 200 and resp.content_type == "text/html"
    text = await resp.text()
    assert 'data-node="roof-7.a_b"' in text
    assert "/static/installer.js?v=" in text and "/static/installer.css?v=" in text
    assert "good ≥ -65 dBm" in text
    for asset in ("/static/installer.js", "/static/installer.css"):
        assert (await client.get(asset)).status == 200


async def test_streams_end_at_once_on_shutdown(live_ctx: WebContext, sent: Sent) -> None:
    runner = web.AppRunner(create_app(live_ctx))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"http://127.0.0.1:{port}/api/v1/live/alpha")
        stream = Stream(resp)
        await stream.next()
        streams = runner.app[LIVE_STREAMS]
        assert streams.renewing("alpha")
        started_at = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - started_at < 3.0  # not aiohttp's 60 s handler wait
        with pytest.raises(EOFError):
            await stream.next(2.0)
        assert streams.open == 0 and not streams.renewing("alpha")
        resp.close()


async def test_page_reconnects_after_the_collector_restarts(live_ctx: WebContext) -> None:
    port = servers.free_port()

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(create_app(live_ctx))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = await serve()
    try:
        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
            await page.goto(f"http://127.0.0.1:{port}/install/alpha")
            await wait_for_js(page, "window.meshmonInstaller.updates >= 1", timeout=5000)
            assert await page.locator("#connection").inner_text() == "Live: connected"
            await runner.cleanup()
            await wait_for_js(
                page,
                "document.getElementById('connection').textContent.startsWith('Connection lost')",
                timeout=5000)
            before = await page.evaluate("window.meshmonInstaller.updates")
            runner = await serve()
            await wait_for_js(
                page, f"window.meshmonInstaller.updates > {before}", timeout=15000)
            assert await page.locator("#connection").inner_text() == "Live: connected"
            assert await page.evaluate("window.meshmonInstaller.verdicts") == {
                "bravo": "good", "charlie": "unknown"}
            await page.close()
    finally:
        await runner.cleanup()


async def _true(value: bool) -> bool:
    return value


# ---------------------------------------------------------------------- in the browser
AGENT = "roof-Buergermarkt-1"  # long and unbreakable at its end, like real Freifunk names
PEERS = dict(zip(("peer-a", "peer-b", "peer-c"), CAPTURED_PEERS, strict=True))
"""scripted neighbours that own the MACs the agent's captured station dump sees"""
BATMAN_PEERS = {"lr-a": "02:58:47:da:4e:aa", "lr-b": "02:58:47:46:28:95"}
"""scripted LibreRouters owning one radio MAC each of the captured `batctl` neighbours:
TQ 111 and TQ 222 in the capture, no signal (the other radio's two links stay unresolved)"""
NAMES = {"peer-b": "Buergermarkt Dach Ost", "lr-a": "librerouter-a"}
"""hostnames that differ from the node id: the cards show these"""
CARD_ORDER = ["ff-FF-Hagen-Cux-AC-Mesh-Ersatzoffloader-2", "peer-d", "peer-a", "peer-b",
              "peer-c", "lr-a", "lr-b"]
"""radio first, each group worst first: poor, fair, then the good ones by id"""


def info(node: str, **extra: Any) -> dict[str, Any]:
    return {"v": 1, "node": node, "hostname": NAMES.get(node, node), **extra}


def peer_report(node: str, links: list[dict[str, Any]]) -> dict[str, Any]:
    return {"v": 1, "node": node, "ts": time.time(), "seq": 1, "interval_s": 30,
            "links": links}


LONG_PEER = "ff-FF-Hagen-Cux-AC-Mesh-Ersatzoffloader-2"

LABELS_ON_ONE_LINE = """(() => [...document.querySelectorAll('.views tbody tr:not([hidden]) th')]
  .filter((th) => { const r = document.createRange(); r.selectNodeContents(th);
                    return r.getClientRects().length !== 1; })
  .map((th) => th.textContent))()"""
"""the table labels that break over more than one line (a phone once showed 'Expecte/d')"""

DARK_PIXELS = """(sel) => { const c = document.querySelector(sel);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 40 && d[i+1] < 40 && d[i+2] < 40 && d[i+3] > 200) return true; }
  return false; }"""
"""whether the chart in `sel` has this node's line (black) drawn"""


async def test_installer_page_live_with_a_real_agent(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    config = collector_config(
        tmp_path, mosquitto.port,
        installer={"planned": [{"src": AGENT, "dst": "peer-a", "signal_dbm": -30},
                               {"src": AGENT, "dst": "peer-c", "signal_dbm": -25}]},
    )
    service = await started(config)
    pub = Publisher(mosquitto.port)
    agent = None
    try:
        for node, mac in {**PEERS, **BATMAN_PEERS}.items():
            await pub.send(f"meshmon/v1/node/{node}/info", info(node, macs=[mac]), retain=True)
        # neighbours seen only from their side: a fair and a poor link for the picture
        await pub.send("meshmon/v1/node/peer-d/report", peer_report("peer-d", [
            {"peer": AGENT, "iface": "wlan0", "kind": "wifi", "signal_dbm": -71}]))
        # a name as long as Freifunk Bremen's (ff-FF-Hagen-Cux-AC-Mesh-Buergermarkt):
        # the phone layout must wrap it, not scroll sideways
        await pub.send(f"meshmon/v1/node/{LONG_PEER}/report", peer_report(LONG_PEER, [
            {"peer": AGENT, "iface": "wlan0", "kind": "wifi", "signal_dbm": -83}]))
        # lr-a hears the agent better (TQ 200) than the agent hears it (TQ 111)
        await pub.send("meshmon/v1/node/lr-a/report", peer_report("lr-a", [
            {"peer": AGENT, "iface": "wlan0-mesh", "kind": "batman", "tq": 200}]))
        agent = start_agent(tmp_path, mosquitto.port, AGENT, interval_s=10)
        topo = service.topology

        async def resolved() -> bool:
            dsts = {ls.dst for ls in topo.node_links(AGENT) if ls.key.src == AGENT}
            return set(PEERS) | set(BATMAN_PEERS) <= dsts

        await eventually(resolved, 20, "the agent's stations resolved to the scripted peers")
        assert topo.nodes[AGENT].interval_s == 10

        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
            errors = console_errors(page)
            await page.goto(f"{service.http_url}/install/{AGENT}")
            await wait_for_js(page, "window.meshmonInstaller.updates >= 1", timeout=5000)
            began = await page.evaluate("window.meshmonInstaller.updates")
            started_at = time.monotonic()
            await wait_for_js(
                page, f"window.meshmonInstaller.updates >= {began + 3}", timeout=5000)
            assert time.monotonic() - started_at < 5.0
            # the updates come from fast mode: the agent got `fast` and reports every second
            assert topo.nodes[AGENT].interval_s == 1
            log = (tmp_path / f"agent-{AGENT}.log").read_text()
            assert "fast mode: every 1.0 s for 120 s" in log
            assert service.live.watchers(AGENT) >= 1

            verdicts = await page.evaluate("window.meshmonInstaller.verdicts")
            assert verdicts == {"peer-a": "good", "peer-b": "good", "peer-c": "good",
                                "peer-d": "fair", LONG_PEER: "poor", "lr-a": "poor",
                                "lr-b": "good"}
            # the map's words, the worst first (radio links ahead of the batman ones)
            order = await page.locator(".link").evaluate_all(
                "cards => cards.map(c => c.dataset.peer)")
            assert order == CARD_ORDER
            words = await page.locator(".link > .verdict").all_inner_texts()
            assert [w.lower() for w in words] == [
                "poor", "fair", "good", "good", "good", "poor", "good"]
            # names, not ids, where the node announced one (and the id beside it)
            card_b = page.locator('.link[data-peer="peer-b"]')
            assert await card_b.locator("h2").inner_text() == NAMES["peer-b"]
            assert "peer-b" in await card_b.locator(".peer-id").inner_text()
            assert await card_b.locator(".peer-view").get_attribute("href") == "/install/peer-b"
            card_a = page.locator('.link[data-peer="peer-a"]')
            assert await card_a.locator(".figure").inner_text() == str(PEERS_SIGNAL["peer-a"])
            assert "planned -30 dBm · +9.0 dB" in await card_a.locator(".planned").inner_text()
            card_c = page.locator('.link[data-peer="peer-c"]')
            assert "-4.0 dB" in await card_c.locator(".planned").inner_text()
            status = await page.locator("#status").inner_text()
            assert f"{AGENT} is online" in status and "every 1.0 s" in status
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow == 0, f"the phone page is {overflow} px wider than the screen"
            assert await page.evaluate(LABELS_ON_ONE_LINE) == []
            assert "Last heard" in await page.locator("#heard").inner_text()
            # the other radio's batman neighbours have MACs nobody announced: counted only
            assert "2 more neighbour links" in await page.locator("#unresolved").inner_text()
            assert await page.locator("#to-history").get_attribute("href") == f"/node/{AGENT}"
            assert await page.locator("#to-map").get_attribute("href") == f"/#node={AGENT}"

            # a TQ-only link (batman, no radio reading) has its own figure and 0–255 chart
            card_tq = page.locator('.link[data-peer="lr-b"]')
            assert await card_tq.get_attribute("data-metric") == "tq"
            assert await card_tq.locator(".figure").inner_text() == "222"
            assert await card_tq.locator(".unit").inner_text() == "TQ / 255"
            chart = card_tq.locator("canvas")
            assert (await chart.get_attribute("data-lo"), await chart.get_attribute("data-hi")) \
                == ("0", "255")
            assert await page.evaluate(DARK_PIXELS, '.link[data-peer="lr-b"] canvas')
            assert "TQ" in await card_tq.locator(".spark-legend").inner_text()
            assert "dBm" not in await card_tq.locator(".hold").inner_text()
            # both ends' TQ: the agent's 111 decides against lr-a's 200
            card_lra = page.locator('.link[data-peer="lr-a"]')
            assert await card_lra.locator("h2").inner_text() == NAMES["lr-a"]
            assert await card_lra.locator(".end-in .value").inner_text() == "TQ 200"
            assert "decides: " + AGENT in await card_lra.locator(".decides").inner_text()

            # the other end reports the reverse link: its view appears beside ours, and
            # it hears much worse than we do, so its end decides the verdict
            assert "no report" in await card_a.locator("tbody tr").first.inner_text()
            await pub.send("meshmon/v1/node/peer-a/report", peer_report("peer-a", [
                {"peer": AGENT, "iface": "mesh0", "kind": "wifi", "signal_dbm": -80,
                 "tx_rate_mbps": 780, "expected_tput_mbps": 410}]))
            await wait_for_js(
                page, "window.meshmonInstaller.last.links.some("
                "l => l.peer === 'peer-a' && l.in && l.in.signal_dbm === -80)", timeout=5000)
            await wait_for_js(
                page, "document.querySelector('.link[data-peer=\"peer-a\"] td.in')"
                ".textContent === '-80 dBm'", timeout=3000)
            assert "peer-a hears" in await card_a.locator("thead").inner_text()
            assert (await card_a.locator(".verdict").inner_text()).lower() == "poor"
            assert (await card_a.locator(".end-out .grade").inner_text()).lower() == "good"
            assert (await card_a.locator(".end-in .grade").inner_text()).lower() == "poor"
            assert await card_a.locator(".end-in.decider").count() == 1
            decides = await card_a.locator(".decides").inner_text()
            assert f"The worse end decides: peer-a hears {AGENT} as poor" in decides
            # the figure still follows this node's own reading (what the antenna changes)
            assert await card_a.locator(".figure").inner_text() == str(PEERS_SIGNAL["peer-a"])
            order = await page.locator(".link").evaluate_all(
                "cards => cards.map(c => c.dataset.peer)")
            assert order.index("peer-a") < order.index("peer-d")  # now poor: moved up

            # min and peak hold, and the sparkline has been drawn
            hold = await card_a.locator(".hold").inner_text()
            assert f"min {PEERS_SIGNAL['peer-a']}" in hold and "peak" in hold
            assert await page.evaluate(DARK_PIXELS, '.link[data-peer="peer-a"] canvas')

            # the tone: off by default, follows the button
            tone = page.locator("#tone")
            assert await tone.get_attribute("aria-pressed") == "false"
            await tone.click()
            assert await tone.get_attribute("aria-pressed") == "true"
            await tone.click()
            assert await tone.get_attribute("aria-pressed") == "false"

            text = await page.content()
            for mac in (*CAPTURED_PEERS, *BATMAN_PEERS.values()):
                assert mac not in text.lower()
            await page.wait_for_timeout(1500)  # a few more points on the sparkline
            await page.evaluate("window.scrollTo(0, 0)")
            await screenshot(page, "installer-phone")

            desktop = await browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
            errors_desktop = console_errors(desktop)
            await desktop.goto(f"{service.http_url}/install/{AGENT}")
            await wait_for_js(desktop, "window.meshmonInstaller.updates >= 3",
                                            timeout=6000)
            assert await desktop.evaluate(LABELS_ON_ONE_LINE) == []
            await screenshot(desktop, "installer-desktop")

            # a node nobody has heard of: a plain message, no links, no error
            unknown = await browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
            errors_unknown = console_errors(unknown)
            await unknown.goto(f"{service.http_url}/install/never-heard-1")
            await wait_for_js(unknown, "window.meshmonInstaller.updates >= 1",
                                            timeout=5000)
            status = await unknown.locator("#status").inner_text()
            assert status.startswith("Not heard from never-heard-1 yet")
            assert "Last heard: never" in await unknown.locator("#heard").inner_text()
            assert await unknown.locator(".link").count() == 0
            await screenshot(unknown, "installer-unknown")

            for p in (page, desktop, unknown):
                await p.close()
            assert errors == [] and errors_desktop == [] and errors_unknown == []
        await eventually(lambda: _true(service.live.watchers(AGENT) == 0), 5,
                         "streams closed with the pages")
    finally:
        if agent is not None:
            stop(agent)
        pub.close()
        await service.stop()


PEERS_SIGNAL = {node: CAPTURED_PEERS[mac] for node, mac in PEERS.items()}
