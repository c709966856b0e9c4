"""The installer view: `/install/NODE` and its live stream `/api/v1/live/NODE` (SSE).

A volunteer on a roof opens the page for the node they are aligning. The stream sends the
node's links (both ends' views, verdict, planned budget) at once, then again each time
`LiveHub` says the node or a neighbour's view of it changed, at most every
`MIN_EVENT_GAP_S`. While at least one stream for a node is open, one renewal task per node
(not per viewer) keeps the agent in `fast` mode; it stops when the last viewer leaves.

Pure parts (`verdict`, `planned_signal`, `live_event`, …) take plain data and `now`; the
event reuses the allow-listed views of `meshmon.web.public`, so it carries no MAC, IP or
contact, and peers known only by MAC are counted, not named.

Each event (`data:` line, compact JSON):

    {"node", "known" (has spoken), "reported" (has sent a report), "state" (online |
     offline | silent | unreachable | flapping | unmonitored | unknown), "online",
     "hostname", "now",
     "last_seen", "age_s" (seconds since last heard), "interval_s" (of its last report),
     "fast": {"requested", "interval_s", "duration_s"},
     "thresholds": {"signal_dbm": [good, fair], "tq": [good, fair], "etx": [good, fair]}
                   (the map's grading, `mapdata.Thresholds.as_json`),
     "links": [{"peer", "peer_name" (its hostname when known and safe, else null),
                "kind", "iface",
                "out": this node's view {iface, signal_dbm, signal_avg_dbm, chains_dbm,
                       noise_dbm, snr_db, tx_rate_mbps, rx_rate_mbps, expected_tput_mbps,
                       tq, etx, inactive_ms, … (present ones only), last_seen, age_s,
                       derived: [noise_dbm/snr_db filled in from the radio]} | null,
                "in": the peer's view of the same link, same shape | null,
                "metric": signal | tq | etx | null (what the figure and chart show: the
                          first of them either end reports),
                "value", "value_from" (out | in): that metric, this node's reading first,
                "signal_dbm", "signal_from" (out | in),
                "verdict_out", "verdict_in": each end's own grade (good | fair | poor |
                          unknown; the map's words, from its first metric),
                "verdict": the worse of the two ends' grades, "verdict_by" (out | in |
                          null): the end that decides,
                "planned_signal_dbm", "planned_diff_db"}],
     "unresolved_links": links to peers known only by MAC}

Links come radio first (wifi: what the person on the roof is aiming), then the others;
within each group the worst verdict first, then by peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from meshmon.config import InstallerConfig, PlannedLink
from meshmon.model.fastwire import AnyReport
from meshmon.model.topology import Topology
from meshmon.model.wire import NODE_ID_RE
from meshmon.web.context import CTX, STATIC_DIR, WebContext, json_error
from meshmon.web.mapdata import QUALITIES, Thresholds, quality
from meshmon.web.public import dump, node_links_detail, plain_state, safe_text

log = logging.getLogger(__name__)

Json = dict[str, Any]

HEARTBEAT_S = 15.0
"""an SSE comment this often keeps proxies and NAT from dropping an idle stream"""
MIN_EVENT_GAP_S = 0.2
"""changes closer together than this are coalesced into one event"""
POLL_S = 1.0
"""how often an idle stream checks for a gone client and for state changes that nobody
announces (a node expiring to offline does not wake `LiveHub`)"""
CATCH_UP_AFTER_S = 10.0
"""a node that still reports slower than the fast interval this long after the last `fast`
(agent restarted, or connected after the page opened) is sent `fast` again"""
MAX_STREAMS = 200
"""open live streams per collector; each may keep an agent in fast mode"""
RETRY_MS = 3000
"""what EventSource waits before reconnecting after the stream ends"""
VERDICTS = QUALITIES
"""the map's words: good, fair, poor, unknown"""
WORST_FIRST = {"poor": 0, "fair": 1, "good": 2, "unknown": 3}
METRICS = ("signal", "tq", "etx")

_NODE_RE = re.compile(NODE_ID_RE)


# ---------------------------------------------------------------------- pure logic
def verdict(signal_dbm: float | None, good_dbm: float, fair_dbm: float) -> str:
    """good at or above `good_dbm`, fair at or above `fair_dbm`, else poor; unknown
    without a reading."""
    if signal_dbm is not None and math.isnan(signal_dbm):
        return "unknown"
    return quality(Thresholds(good_dbm, fair_dbm), signal_dbm, None, None)


def view_verdict(view: Json | None, thresholds: Thresholds) -> str:
    """One end's grade from its first metric (signal, else TQ, else ETX): the map's."""
    if view is None:
        return "unknown"
    signal = view_signal(view)
    if signal is not None and math.isnan(signal):
        signal = None
    return quality(thresholds, signal, view.get("tq"), view.get("etx"))


def worse_end(out: str, back: str) -> tuple[str, str | None]:
    """The verdict of a link from both ends' grades (the worse one decides) and the end
    that decides (`out` on a tie; None when neither end has a grade)."""
    if out == "unknown" and back == "unknown":
        return "unknown", None
    if back == "unknown" or (out != "unknown" and WORST_FIRST[out] <= WORST_FIRST[back]):
        return out, "out"
    return back, "in"


def link_metric(out: Json | None, back: Json | None) -> str | None:
    """What a link's figure and chart show: signal when either end reports one, else TQ,
    else ETX; None without any."""
    views = [v for v in (out, back) if v is not None]
    if any(view_signal(v) is not None for v in views):
        return "signal"
    for metric in ("tq", "etx"):
        if any(v.get(metric) is not None for v in views):
            return metric
    return None


def metric_value(view: Json | None, metric: str | None) -> float | None:
    """One end's reading of `metric` (signal: the latest, else the average)."""
    if view is None or metric is None:
        return None
    return view_signal(view) if metric == "signal" else view.get(metric)


def planned_signal(planned: Sequence[PlannedLink], src: str, dst: str) -> float | None:
    """The budgeted signal on src → dst; a budget given only for dst → src counts for both
    directions (link budgets are usually symmetric)."""
    reverse = None
    for p in planned:
        if p.src == src and p.dst == dst:
            return p.signal_dbm
        if reverse is None and p.src == dst and p.dst == src:
            reverse = p.signal_dbm
    return reverse


def view_signal(view: Json | None) -> float | None:
    """The signal of one direction: the latest reading, else the driver's average."""
    if view is None:
        return None
    value = view.get("signal_dbm")
    if value is None:
        value = view.get("signal_avg_dbm")
    return value


def radio_noise(report: AnyReport | None, iface: str | None) -> float | None:
    """The noise floor the node's report gives for the radio of `iface`."""
    if report is None or iface is None:
        return None
    for radio in report.radios:
        if radio.iface == iface:
            return radio.noise_dbm
    return None


def direction_view(view: Json | None, report: AnyReport | None, now: float) -> Json | None:
    """One direction's metrics flattened, with its age; noise and SNR filled in from the
    radio's noise floor when the link itself has none (listed in `derived`)."""
    if view is None:
        return None
    out: Json = {"iface": view["iface"], **view["metrics"], "last_seen": view["last_seen"]}
    out["age_s"] = _age(view["last_seen"], now)
    derived: list[str] = []
    noise = out.get("noise_dbm")
    if noise is None:
        noise = radio_noise(report, view["iface"])
        if noise is not None:
            out["noise_dbm"] = noise
            derived.append("noise_dbm")
    signal = out.get("signal_dbm")
    if out.get("snr_db") is None and signal is not None and noise is not None:
        out["snr_db"] = round(signal - noise, 1)
        derived.append("snr_db")
    if derived:
        out["derived"] = derived
    return out


def link_entry(entry: Json, node: str, cfg: InstallerConfig,
               reports: Callable[[str], AnyReport | None], now: float,
               names: Callable[[str], str | None] = lambda _peer: None) -> Json:
    """One neighbour of `node` for the installer: both views, each end's grade and the
    verdict (the worse end decides), the figure to show, the planned budget.

    The figure and the planned difference use this node's own reading of the peer (it
    follows the antenna at once in fast mode); the peer's reading only when this node
    has none.
    """
    peer = entry["peer"]
    out = direction_view(entry["out"], reports(node), now)
    back = direction_view(entry["in"], reports(peer), now)
    signal, source = view_signal(out), "out"
    if signal is None:
        signal, source = view_signal(back), "in"
    planned = planned_signal(cfg.planned, node, peer) if source == "out" else (
        planned_signal(cfg.planned, peer, node))
    metric = link_metric(out, back)
    value, value_from = metric_value(out, metric), "out"
    if value is None:
        value, value_from = metric_value(back, metric), "in"
    thresholds = Thresholds(cfg.good_signal_dbm, cfg.marginal_signal_dbm)
    grade_out, grade_in = view_verdict(out, thresholds), view_verdict(back, thresholds)
    grade, decided_by = worse_end(grade_out, grade_in)
    iface = (out or back or {}).get("iface")
    return {
        "peer": peer,
        "peer_name": names(peer),
        "kind": entry["kind"],
        "iface": iface,
        "out": out,
        "in": back,
        "metric": metric,
        "value": value,
        "value_from": value_from if value is not None else None,
        "signal_dbm": signal,
        "signal_from": source if signal is not None else None,
        "verdict_out": grade_out,
        "verdict_in": grade_in,
        "verdict": grade,
        "verdict_by": decided_by,
        "planned_signal_dbm": planned,
        "planned_diff_db": (
            round(signal - planned, 1) if planned is not None and signal is not None else None
        ),
    }


def _worst_first(link: Json) -> tuple[bool, int]:
    return link["kind"] != "wifi", WORST_FIRST[link["verdict"]]


def live_event(topology: Topology, node: str, cfg: InstallerConfig, now: float,
               state_of: Callable[[str], str] | None = None,
               fast_requested: bool = False) -> Json:
    """The whole live state of `node` as one stream event (shape in the module docstring)."""
    state = topology.nodes.get(node)
    nodes = topology.nodes

    def report_of(nid: str) -> AnyReport | None:
        ns = nodes.get(nid)
        return ns.last_report if ns is not None else None

    def name_of(nid: str) -> str | None:
        ns = nodes.get(nid)
        return safe_text(ns.info.hostname) if ns is not None and ns.info is not None else None

    entries, unresolved = node_links_detail(topology, node)
    links = [link_entry(e, node, cfg, report_of, now, name_of) for e in entries]
    # radio links first: they are what is being aimed on the roof, and a poor VPN or
    # cable link listed above them would push the antenna's cards off the screen
    links.sort(key=_worst_first)  # stable: by peer within each group and verdict
    if state is None:
        condition = "unknown"
    else:
        condition = state_of(node) if state_of is not None else plain_state(state)
    info = state.info if state is not None else None
    last_seen = state.last_seen if state is not None else None
    return {
        "node": node,
        "known": state is not None,
        "reported": state is not None and state.last_report is not None,
        "state": condition,
        "online": bool(state and state.online),
        "hostname": safe_text(info.hostname) if info is not None else None,
        "now": now,
        "last_seen": last_seen,
        "age_s": _age(last_seen, now),
        "interval_s": state.interval_s if state is not None and state.last_report else None,
        "fast": {
            "requested": fast_requested,
            "interval_s": cfg.fast_interval_s,
            "duration_s": cfg.fast_duration_s,
        },
        "thresholds": Thresholds(cfg.good_signal_dbm, cfg.marginal_signal_dbm).as_json(),
        "links": links,
        "unresolved_links": unresolved,
    }


def fast_command(cfg: InstallerConfig) -> bytes:
    """The `fast` command of wire contract v1 with the configured interval and duration."""
    return dump({"cmd": "fast", "interval_s": _num(cfg.fast_interval_s),
                 "duration_s": _num(cfg.fast_duration_s)})


def sse_event(data: Json) -> bytes:
    """One SSE message; compact JSON has no raw newlines, so one `data:` line suffices."""
    return b"data: " + dump(data) + b"\n\n"


def _age(then: float | None, now: float) -> float | None:
    return None if then is None else round(max(0.0, now - then), 1)


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


# ---------------------------------------------------------------------- streams
class LiveStreams:
    """Open live streams and the `fast` renewal task of each watched node."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.closing = asyncio.Event()
        self.open = 0
        self._viewers: dict[str, int] = {}
        self._renewals: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        """every renewal task not yet finished, cancelled ones included (awaited by close)"""
        self.commands_sent = 0

    def renewing(self, node: str) -> bool:
        """Whether a renewal task runs for `node`."""
        return node in self._renewals

    def acquire(self, node: str) -> None:
        """A stream for `node` opened: start its renewal task if it is the first."""
        self.open += 1
        self._viewers[node] = self._viewers.get(node, 0) + 1
        if node not in self._renewals and self.ctx.send_command is not None:
            task = self.ctx.spawn(self._renew(node), f"installer-fast-{node}")
            self._renewals[node] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def release(self, node: str) -> None:
        """A stream for `node` closed: stop its renewal task if it was the last."""
        self.open -= 1
        left = self._viewers.get(node, 1) - 1
        if left > 0:
            self._viewers[node] = left
            return
        self._viewers.pop(node, None)
        task = self._renewals.pop(node, None)
        if task is not None:
            task.cancel()

    def shut_down(self) -> None:
        """Make every stream return (app shutdown)."""
        self.closing.set()
        for node in list(self._viewers):
            self.ctx.live.changed(node)

    async def close(self) -> None:
        """Cancel and await the renewal tasks (app cleanup)."""
        tasks = list(self._tasks)
        self._renewals.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _lagging(self, node: str) -> bool:
        state = self.ctx.topology.nodes.get(node)
        return (
            state is not None
            and state.last_report is not None
            and state.interval_s > self.ctx.config.installer.fast_interval_s + 1e-6
        )

    def _send(self, node: str, payload: bytes) -> None:
        send = self.ctx.send_command
        if send is None:
            return
        try:
            send(node, payload)
        except Exception:  # the broker being away must not end the page
            log.exception("sending fast to %s failed", node)
            return
        self.commands_sent += 1

    async def _renew(self, node: str) -> None:
        """Send `fast` now, then every half duration; sooner when the node lags behind."""
        cfg = self.ctx.config.installer
        period = cfg.fast_duration_s / 2
        payload = fast_command(cfg)
        wake = self.ctx.live.watch(node)
        last = -math.inf
        try:
            while True:
                now = time.monotonic()
                since = now - last
                if since >= period or (since >= CATCH_UP_AFTER_S and self._lagging(node)):
                    self._send(node, payload)
                    last = now
                wake.clear()
                await _wait(wake, last + period - time.monotonic())
        finally:
            self.ctx.live.unwatch(node, wake)


LIVE_STREAMS: web.AppKey[LiveStreams] = web.AppKey("meshmon_live_streams", LiveStreams)


def _event_for(ctx: WebContext, node: str) -> Json:
    return live_event(ctx.topology, node, ctx.config.installer, ctx.clock(), ctx.state_of,
                      fast_requested=ctx.send_command is not None)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def live(request: web.Request) -> web.StreamResponse:
    """`/api/v1/live/NODE`: Server-Sent Events with the node's live state."""
    app = request.app
    ctx, streams = app[CTX], app[LIVE_STREAMS]
    node = request.match_info["node"]
    if not _NODE_RE.fullmatch(node):
        return json_error(404, "invalid node id")
    if streams.closing.is_set():
        return json_error(503, "shutting down")
    if streams.open >= MAX_STREAMS:
        return json_error(503, "too many live views open; try again later")
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "Access-Control-Allow-Origin": "*",
            "X-Accel-Buffering": "no",  # nginx: pass events through at once
        }
    )
    await resp.prepare(request)
    wake = ctx.live.watch(node)
    streams.acquire(node)
    try:
        await _stream(request, resp, ctx, streams, node, wake)
    except ConnectionError:  # the client went away mid-write
        pass
    finally:
        ctx.live.unwatch(node, wake)
        streams.release(node)
    return resp


async def _stream(request: web.Request, resp: web.StreamResponse, ctx: WebContext,
                  streams: LiveStreams, node: str, wake: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    event = _event_for(ctx, node)
    await resp.write(b"retry: %d\n" % RETRY_MS + sse_event(event))
    sent_at = last_write = loop.time()
    shown = (event["state"], event["online"])
    while not streams.closing.is_set():
        if _gone(request):
            return
        timeout = min(POLL_S, last_write + HEARTBEAT_S - loop.time())
        woken = timeout > 0 and await _wait(wake, timeout)
        if streams.closing.is_set() or _gone(request):
            return
        if woken:
            # coalesce: what changes during the gap is in the one event sent after it
            gap = sent_at + MIN_EVENT_GAP_S - loop.time()
            if gap > 0:
                await asyncio.sleep(gap)
            wake.clear()
        else:
            now_shown = _shown(ctx, node)
            if now_shown == shown:
                if loop.time() - last_write >= HEARTBEAT_S:
                    await resp.write(b": heartbeat\n\n")
                    last_write = loop.time()
                continue
        event = _event_for(ctx, node)
        shown = (event["state"], event["online"])
        await resp.write(sse_event(event))
        sent_at = last_write = loop.time()


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Whether `event` was set within `timeout` seconds.

    `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a cancellation
    that arrives as the event is set, which left renewal tasks running after `cancel()`.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _shown(ctx: WebContext, node: str) -> tuple[str, bool]:
    state = ctx.topology.nodes.get(node)
    if state is None:
        return ("unknown", False)
    condition = ctx.state_of(node)
    return (condition, state.online)


# ---------------------------------------------------------------------- the page
def _asset_version() -> str:
    stamps = [
        int(p.stat().st_mtime)
        for p in (STATIC_DIR / "installer.js", STATIC_DIR / "installer.css")
        if p.exists()
    ]
    return str(max(stamps, default=0))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<link rel="icon" href="data:,">
<title>Install {node} — meshmon</title>
<link rel="stylesheet" href="/static/installer.css?v={version}">
</head>
<body data-node="{node}">
<header class="top">
  <h1><span class="muted">Installing</span> <span id="node-name">{node}</span></h1>
  <nav class="goto"><a id="to-history" href="/node/{path}">History</a>
    <a id="to-map" href="/#node={path}">On the map</a></nav>
  <p id="status" class="status" role="status" aria-live="polite">Connecting…</p>
  <p id="heard" class="heard"></p>
  <div class="controls">
    <button id="tone" type="button" aria-pressed="false">Tone off</button>
    <button id="reset" type="button">Reset min/peak</button>
    <button id="yesterday" type="button" aria-pressed="false">Same time yesterday</button>
  </div>
  <p class="legend">good ≥ {good} dBm · fair ≥ {fair} dBm · poor below
    <span class="other-scales">(batman TQ: good ≥ {good_tq}, fair ≥ {fair_tq} of 255;
    ETX: good ≤ {good_etx}, fair ≤ {fair_etx}) · each end grades what it hears, the worse
    end decides</span></p>
</header>
<main id="links" aria-live="off"></main>
<p id="unresolved" class="note" hidden></p>
<noscript><p class="status">This page needs JavaScript for the live view.</p></noscript>
<footer class="note" id="connection">meshmon installer view</footer>
<script src="/static/installer.js?v={version}"></script>
</body></html>
"""


async def page(request: web.Request) -> web.Response:
    """`/install/NODE`: the page; its script opens the live stream."""
    node = request.match_info["node"]
    if not _NODE_RE.fullmatch(node):
        return web.Response(
            status=404, content_type="text/html",
            text="<!doctype html><title>Not found</title><p>That is not a node id.</p>",
        )
    cfg = request.app[CTX].config.installer
    t = Thresholds(cfg.good_signal_dbm, cfg.marginal_signal_dbm)
    body = _PAGE.format(
        node=html.escape(node), path=quote(node, safe=""), version=request.app[_VERSION],
        good=_num(t.good_signal_dbm), fair=_num(t.fair_signal_dbm), good_tq=t.good_tq,
        fair_tq=t.fair_tq, good_etx=_num(t.good_etx), fair_etx=_num(t.fair_etx),
    )
    return web.Response(text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


_VERSION: web.AppKey[str] = web.AppKey("meshmon_installer_version", str)


def register(app: web.Application) -> None:
    """Add `/install/NODE` and `/api/v1/live/NODE`."""
    app[_VERSION] = _asset_version()
    app[LIVE_STREAMS] = LiveStreams(app[CTX])

    async def on_shutdown(app: web.Application) -> None:
        app[LIVE_STREAMS].shut_down()

    async def on_cleanup(app: web.Application) -> None:
        await app[LIVE_STREAMS].close()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/install/{node}", page, name="installer")
    app.router.add_get("/api/v1/live/{node}", live, name="api_live")
