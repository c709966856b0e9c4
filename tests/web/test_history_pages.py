"""The node and link history pages in real Chromium, on a collector fed through its real
ingest (Mosquitto, MQTT) with seven days of time-shifted reports.

A chain gw – alpha – bravo – charlie reports every 5 minutes for seven days (the collector's
clock set to each report's time: a fake clock, the edge this test is not about), every
30 s over the last hour, then every second live. Bravo is down for six hours on the third
day (no reports: the availability strip shows it), and at the end it loses power for a
few seconds, which cuts off charlie: an outage the alert engine logs. Each chart must
show exactly the points the reports give for the range's window and step; the ranges
switch; bravo's page lists the outage as its cause, charlie's as cut off, gw's none; the
installer view overlays the same time yesterday.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from meshmon.history.chunks import bucket_of
from meshmon.service import Service
from tests.browser import DESKTOP, PHONE, chromium, console_errors, screenshot, wait_for_js
from tests.integration.harness import collector_config, eventually, started
from tests.servers import Server

NODES = ("gw", "alpha", "bravo", "charlie")
EDGES = {("gw", "alpha"), ("alpha", "bravo"), ("bravo", "charlie")}
PAST_DAYS = 7
DOWN = (2 * 86_400 + 3 * 3600, 2 * 86_400 + 9 * 3600)
"""bravo is down from/to these seconds after the first report (six hours on day 3)"""
RANGES = ("1h", "24h", "7d", "30d", "1y")


class Clock:
    """The collector's clock: a set time while the past is replayed, then real time
    shifted to go on from there (and frozen while the pages are read)."""

    def __init__(self, at: float) -> None:
        self.at: float | None = at
        self.offset = 0.0

    def __call__(self) -> float:
        return self.at if self.at is not None else time.time() + self.offset

    def run_from(self, at: float) -> None:
        self.offset, self.at = at - time.time(), None


@dataclass
class Sent:
    """What the test published: report times per node and per directed link."""

    node: dict[str, list[float]] = field(default_factory=dict)
    link: dict[tuple[str, str], list[float]] = field(default_factory=dict)


def neighbours(node: str) -> list[str]:
    return sorted({b for a, b in EDGES if a == node} | {a for a, b in EDGES if b == node})


class Mesh:
    """One paho client that publishes for every node (the test broker has no ACLs)."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="history-mesh")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent = Sent()
        self.seq = dict.fromkeys(NODES, 0)
        self.rx = dict.fromkeys(NODES, 0)

    def publish(self, node: str, what: str, payload: dict[str, Any], retain: bool = False
                ) -> None:
        self.client.publish(f"meshmon/v1/node/{node}/{what}", json.dumps(payload), 1, retain)

    def hello(self, ts: float) -> None:
        for node in NODES:
            self.publish(node, "status", {"v": 1, "node": node, "online": True, "ts": ts}, True)
            self.publish(node, "info", {"v": 1, "node": node, "hostname": f"{node}-roof",
                                        "gateway": node == "gw"}, True)

    def report(self, node: str, ts: float, interval: float, up: set[str]) -> None:
        self.seq[node] += 1
        i = self.seq[node]
        self.rx[node] += 40_000 + 1_000 * (i % 7)
        links = [{"peer": p, "iface": "wlan0", "kind": "wifi",
                  "signal_dbm": -60 - NODES.index(p) - (i % 5), "tx_rate_mbps": 130.0 + i % 3,
                  "tq": 200 + i % 50}
                 for p in neighbours(node) if p in up]
        self.publish(node, "report", {
            "v": 1, "node": node, "ts": ts, "seq": i, "interval_s": interval, "clients": i % 4,
            "sys": {"uptime_s": 10_000 + i * interval, "load": [0.1 + (i % 9) / 10, 0.2, 0.2],
                    "mem_total_kb": 60_000, "mem_avail_kb": 30_000 + i % 1000},
            "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": self.rx[node],
                        "tx_bytes": self.rx[node] // 2}],
            "links": links,
        })
        self.sent.node.setdefault(node, []).append(ts)
        for link in links:
            self.sent.link.setdefault((node, link["peer"]), []).append(ts)

    def round(self, ts: float, interval: float, up: set[str]) -> None:
        for node in NODES:
            if node in up:
                self.report(node, ts, interval, up)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def caught_up(service: Service, ts: float) -> None:
    """Every report published up to `ts` is in the core."""

    async def done() -> bool:
        seen = [service.topology.nodes.get(n) for n in ("gw", "alpha")]
        return all(s is not None and s.last_report is not None and s.last_report.ts >= ts
                   for s in seen)

    await eventually(done, 20, f"reports up to {ts}")


async def all_in(fed: Fed) -> None:
    """Every node's last report sent is in the core."""
    last = {node: max(times) for node, times in fed.mesh.sent.node.items()}

    async def done() -> bool:
        nodes = fed.service.topology.nodes
        return all(node in nodes and nodes[node].last_report is not None
                   and nodes[node].last_report.ts >= ts for node, ts in last.items())

    await eventually(done, 20, "every report sent")


@dataclass
class Fed:
    service: Service
    mesh: Mesh
    clock: Clock


@pytest.fixture(params=["thread", "process"])
async def fed(mosquitto: Server, tmp_path: Path, request: pytest.FixtureRequest
              ) -> AsyncIterator[Fed]:
    """(both places the SQLite store's worker runs: the pages' reads run there)"""
    start = bucket_of(time.time(), 86_400) - PAST_DAYS * 86_400
    clock = Clock(start)
    # the collector's clock runs ahead of a report by up to a few dozen rounds while it
    # catches up (hours of replayed time): its own ts is stored, not the arrival time
    config = collector_config(tmp_path, mosquitto.port, map={"tile_url": ""},
                              storage={"max_clock_skew_s": 2 * PAST_DAYS * 86_400,
                                       "worker": request.param})
    service = Service(config, clock)
    await service.start()
    assert service.ingest is not None
    await asyncio.wait_for(service.ingest.connected.wait(), 10)
    mesh = Mesh(mosquitto.port)
    try:
        mesh.hello(start)
        # seven days every 5 minutes, then the last hour every 30 s
        live = start + PAST_DAYS * 86_400
        times = [(float(t), 300.0) for t in range(int(start), int(live - 3600), 300)]
        times += [(float(t), 30.0) for t in range(int(live - 3600), int(live), 30)]
        for n, (ts, interval) in enumerate(times):
            clock.at = ts
            down = DOWN[0] <= ts - start < DOWN[1]
            mesh.round(ts, interval, set(NODES) - {"bravo"} if down else set(NODES))
            if n % 48 == 47:  # let the collector keep up (its clock is the reports' time)
                await caught_up(service, ts)
        await caught_up(service, times[-1][0])
        clock.run_from(live)
        yield Fed(service, mesh, clock)
    finally:
        mesh.close()
        await service.stop()


async def live_outage(fed: Fed) -> None:
    """Reports every second, then bravo loses power until an outage is logged and ends."""
    clock, mesh, service = fed.clock, fed.mesh, fed.service
    alerting = service.alerting

    async def rounds(count: int, up: set[str]) -> None:
        for _ in range(count):
            mesh.round(clock(), 1.0, up)
            await asyncio.sleep(1.0)

    await rounds(3, set(NODES))
    started_at = clock()
    for _ in range(30):  # until the outage is open (a few seconds)
        await rounds(1, set(NODES) - {"bravo"})
        if any("bravo" in o["cause"]["nodes"] for o in alerting.outages()):
            break
    else:
        raise AssertionError("no outage caused by bravo")
    for _ in range(30):
        await rounds(1, set(NODES))
        if not alerting.outages():
            break
    else:
        raise AssertionError("the outage did not end")
    assert clock() - started_at < 60


def expected_points(times: list[float], answer: dict[str, Any]) -> int:
    """How many points a chart of the answer's window and step shows for reports at
    `times`: samples in the window (raw), or steps of the grid with a report in them."""
    start, end, step = answer["from"], answer["to"], answer["step"]
    if step == 0:
        return sum(start <= t < end for t in times)
    first = bucket_of(start, step)
    last = answer["t"][-1] + step
    return len({bucket_of(t, step) for t in times if first <= t < last})


async def api(session: aiohttp.ClientSession, base: str, path: str) -> Any:
    async with session.get(base + path) as resp:
        assert resp.status == 200, (path, resp.status, await resp.text())
        return await resp.json()


async def chart_points(page: Any, selector: str) -> list[int]:
    text = await page.get_attribute(selector, "data-points")
    assert text is not None, selector
    return [int(n) for n in text.split(",") if n]


async def installer_shows_yesterday(fed: Fed) -> None:
    """The installer view overlays this end's readings of the same time yesterday."""
    mesh, clock = fed.mesh, fed.clock

    async def reporting() -> None:
        while True:
            mesh.round(clock(), 1.0, set(NODES))
            await asyncio.sleep(1.0)

    keep = asyncio.create_task(reporting())
    asked: dict[str, dict[str, list[str]]] = {}
    """peer → the query of the page's last history request for its link"""

    def history_request(request: Any) -> None:
        url = urllib.parse.urlsplit(request.url)
        parts = url.path.split("/")  # /api/v1/links/bravo/PEER/history
        if parts[-1] == "history" and parts[-4] == "links":
            asked[urllib.parse.unquote(parts[-2])] = urllib.parse.parse_qs(url.query)

    try:
        async with chromium() as browser:
            page = await browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
            errors = console_errors(page)
            page.on("request", history_request)
            await page.goto(f"{fed.service.http_url}/install/bravo")
            await wait_for_js(page, "document.querySelectorAll('canvas.spark').length === 2",
                              20_000)
            await page.click("#yesterday")
            assert await page.get_attribute("#yesterday", "aria-pressed") == "true"
            await wait_for_js(page, "[...document.querySelectorAll('canvas.spark')].every("
                              "c => Number(c.dataset.yesterday) > 0)", 20_000)
            # the page asks for the window around now (the browser's clock) a day ago:
            # each card shows every report bravo sent of that link in it (one or two
            # when it reported every 5 minutes, ~14 in the last hour it reported every
            # 30 s: which one depends on the time of day the test runs)
            counts = await page.eval_on_selector_all(
                "canvas.spark", "cs => cs.map(c => Number(c.dataset.yesterday))")
            assert sorted(asked) == neighbours("bravo"), asked
            expected = []
            for peer, q in asked.items():
                start, end = float(q["from"][0]), float(q["to"][0])
                expected.append(sum(1 for ts in fed.mesh.sent.link[("bravo", peer)]
                                    if start <= ts < end))
            assert sorted(counts) == sorted(expected), (counts, expected)
            await wait_for_js(page, "[...document.querySelectorAll('.spark-legend')].every("
                              "e => e.textContent.includes('yesterday'))", 10_000)
            await screenshot(page, "installer-yesterday-phone")
            assert not errors, errors
    finally:
        keep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keep


async def test_node_and_link_pages_show_every_range(fed: Fed) -> None:
    await live_outage(fed)
    await installer_shows_yesterday(fed)
    fed.clock.at = fed.clock()  # the pages and the test read the same window
    # every report sent so far is in the core (the pages' reads store what waits for
    # SQLite first): the test counts what was sent
    await all_in(fed)
    base, sent = fed.service.http_url, fed.mesh.sent
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
        errors = console_errors(page)
        await page.goto(f"{base}/node/bravo?range=1h")
        for range_ in RANGES:
            if range_ != "1h":  # switched by the range links, without a new page
                await page.click(f".ranges a[data-range='{range_}']")
            await wait_for_js(page, f"document.body.dataset.ready === '{range_}'", 20_000)
            assert await page.get_attribute(f".ranges a[data-range='{range_}']",
                                            "aria-current") == "page"
            answer = await api(session, base, f"/api/v1/nodes/bravo/history?range={range_}")
            load = expected_points(sent.node["bravo"], answer)
            assert load > 0
            assert await chart_points(page, ".chart[data-metric='load1']") == [load], range_
            for peer in ("alpha", "charlie"):
                section = f".group:has(a[href='/link/bravo/{peer}'])"
                want = sorted(expected_points(sent.link[pair], answer)
                              for pair in (("bravo", peer), (peer, "bravo")))
                got = await chart_points(page, f"{section} .chart[data-metric='signal_dbm']")
                assert sorted(got) == want, (range_, peer)
            traffic = await chart_points(page, ".chart[data-metric='rx_bps']")
            assert len(traffic) == 2 and min(traffic) > 0, range_  # in and out of wlan0
            if range_ == "1h":  # every sample; the strip in 5-minute steps, reporting
                assert await page.locator(".availability .cell.up").count() >= 10
                assert await page.locator(".availability .cell.down").count() == 0
            if range_ == "7d":  # six hours down on day 3, up the rest of the week
                down = await page.locator(".availability .cell.down").count()
                assert 5 <= down <= 7, down
                assert await page.locator(".availability .cell.up").count() > 150
        outage = page.locator(".outages li.outage.cause")
        assert await outage.count() >= 1
        assert "cause" in await outage.first.inner_text()
        await screenshot(page, "history-node-desktop")

        # charlie was cut off; gw was never part of an outage
        for node, words in (("charlie", "cut off"), ("gw", "None in this range")):
            await page.goto(f"{base}/node/{node}")
            await wait_for_js(page, "document.body.dataset.ready === '24h'", 20_000)
            assert words in await page.inner_text(".outages"), node

        # a link's page: both ends' view of it, on a phone without sideways scrolling
        phone = await browser.new_page(viewport=PHONE)  # type: ignore[arg-type]
        errors += console_errors(phone)
        await phone.goto(f"{base}/link/alpha/bravo?range=7d")
        await wait_for_js(phone, "document.body.dataset.ready === '7d'", 20_000)
        answer = await api(session, base, "/api/v1/links/alpha/bravo/history?range=7d")
        want = sorted(expected_points(sent.link[pair], answer)
                      for pair in (("alpha", "bravo"), ("bravo", "alpha")))
        assert sorted(await chart_points(phone, ".chart[data-metric='signal_dbm']")) == want
        legend = await phone.inner_text(".chart[data-metric='signal_dbm']")
        assert "alpha-roof hears bravo-roof" in legend and "bravo-roof hears alpha-roof" in legend
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"sideways scroll: {width} px"
        await screenshot(phone, "history-link-phone")
        await phone.goto(f"{base}/node/bravo?range=30d")
        await wait_for_js(phone, "document.body.dataset.ready === '30d'", 20_000)
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"sideways scroll: {width} px"

        # the page's CSV link: a header row and one row per step
        href = await phone.get_attribute("#csv", "href")
        assert href is not None and "format=csv" in href
        async with session.get(base + href) as resp:
            assert resp.status == 200 and resp.content_type == "text/csv"
            assert "attachment" in resp.headers["Content-Disposition"]
            rows = list(csv.reader(io.StringIO(await resp.text())))
        answer = await api(session, base, href.replace("&format=csv", ""))
        assert rows[0][:2] == ["time", "unix_time"]
        assert len(rows) == 1 + len(answer["t"])
        assert [int(r[1]) for r in rows[1:]] == answer["t"]
        assert not errors, errors
    assert time.monotonic() - started < 60


BAD = (
    ("?step=7", "step must be one of"),
    ("?from=yesterday", "from must be unix seconds or an ISO 8601 time"),
    ("?range=1h&from=1", "give range or from, not both"),
    ("?metrics=<script>", "unknown metric"),
    ("?format=xlsx", "format must be json or csv"),
    ("?from=0&step=10", "kept 2 days"),
    ("?from=0&step=3600", "too many"),
    ("?stats=median", "stats must be"),
)


async def test_bad_parameters_are_a_400_that_says_why(mosquitto: Server, tmp_path: Path
                                                      ) -> None:
    service = await started(collector_config(tmp_path, mosquitto.port))
    mesh = Mesh(mosquitto.port)
    try:
        mesh.hello(time.time())
        mesh.round(time.time(), 30.0, set(NODES))
        await caught_up(service, mesh.sent.node["gw"][-1])
        async with aiohttp.ClientSession() as session:
            for query, says in BAD:
                for path in ("/api/v1/nodes/bravo/history",
                             "/api/v1/links/alpha/bravo/history"):
                    async with session.get(service.http_url + path + query) as resp:
                        body = await resp.json()
                        assert resp.status == 400, (path, query, body)
                        assert says in body["error"], (query, body)
            for path in ("/api/v1/nodes/nobody/history", "/api/v1/links/gw/charlie/history",
                         "/node/nobody", "/link/gw/charlie", "/node/bravo?range=2y"):
                async with session.get(service.http_url + path) as resp:
                    assert resp.status in (400, 404), path
                    assert resp.status == (400 if "range" in path else 404), path
    finally:
        mesh.close()
        await service.stop()
