"""A node's and a link's history: the pages `/node/NODE` and `/link/A/B` (public, charts by
`static/history.js` with uPlot) and the API behind them.

    GET /api/v1/nodes/NODE/history?metrics=…&from=…&to=…&range=…&step=…&stats=…&format=csv
    GET /api/v1/links/A/B/history?…            (both directions of every link A–B)

`meshmon.history.query` says what the parameters mean and what the answer holds; a bad
one is a 400 with a message, never a 500. The node answer also lists the outages the node
was part of in the window (`outages`, from the alert log), the link answer has none.
`format=csv` gives the same numbers as a download a spreadsheet opens as it is.

Public like the map: node ids, peer ids and interface names that show no address; no
location, no contact. Text from the network is escaped here and set with textContent by
the script.
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any

from aiohttp import web

from meshmon import __version__
from meshmon.history.chunks import BucketsInMemory
from meshmon.history.export import csv_text
from meshmon.history.query import (
    RANGES,
    BadRequest,
    link_series,
    metric_names,
    node_series,
    read,
    stat_names,
    window,
)
from meshmon.history.tables import HistoryTables
from meshmon.model.addresses import safe_text
from meshmon.model.wire import NODE_ID_RE
from meshmon.web.context import CTX, WebContext, json_error, json_response
from meshmon.web.index import script_json
from meshmon.web.page_head import public_head
from meshmon.web.states import state_word

_NODE_RE = re.compile(NODE_ID_RE)
DEFAULT_RANGE = "24h"
NODE_METRICS = (
    "availability", "clients", "load1", "mem_used_pct", "rx_bps", "tx_bps",
    "signal_dbm", "snr_db", "tq", "etx", "cost", "tx_rate_mbps", "rx_rate_mbps",
    "expected_tput_mbps",
)  # fmt: skip
"""what a node's page charts (and its API answers without `metrics`)"""
FORMATS = ("json", "csv")


class Unknown(LookupError):
    """Neither the topology nor the history knows it."""


# ---------------------------------------------------------------------- API
def _query(request: web.Request) -> tuple[dict[str, str], str]:
    query = dict(request.query)
    fmt = query.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest("format must be json or csv")
    return query, fmt


def _reader(ctx: WebContext, query: dict[str, str], kind: str, ids: tuple[str, ...],
            known: bool, now: float) -> Any:
    """What a request reads in the store's worker (a `functools.partial` of
    `_answer`: it is pickled there); a bad window or stat raises BadRequest here."""
    store = ctx.store
    assert store is not None
    win = window(query, now, store.history_retention)
    stats = stat_names(query.get("stats"))
    return functools.partial(_answer, kind, ids, known, query, win, stats, now)


def _series_of(tables: HistoryTables, kind: str, ids: tuple[str, ...]) -> Any:
    """The series of a node (`kind` "node", its id) or of the links between two nodes."""
    return node_series(tables, *ids) if kind == "node" else link_series(tables, *ids)


def _answer(kind: str, ids: tuple[str, ...], known: bool, query: dict[str, str], win: Any,
            stats: Any, now: float, tables: HistoryTables, in_memory: BucketsInMemory
            ) -> dict[str, Any] | None:
    """The answer (None: neither the history nor the topology knows the node or link)."""
    series = _series_of(tables, kind, ids)
    if not series and not known:
        return None
    default = NODE_METRICS if kind == "node" else sorted(tables.metrics)
    metrics = metric_names(query.get("metrics"), default, tables.metrics)
    return read(tables, in_memory, series, metrics, win, stats, now)


def _exists(kind: str, ids: tuple[str, ...], tables: HistoryTables,
            _in_memory: BucketsInMemory) -> bool:
    return bool(_series_of(tables, kind, ids))


async def _respond(request: web.Request, name: str, answer: dict[str, Any], fmt: str
                   ) -> web.StreamResponse:
    if fmt == "json":
        return json_response(answer)
    response = web.Response(text=csv_text(answer), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


async def node_history(request: web.Request) -> web.StreamResponse:
    """One node's history as JSON or CSV."""
    ctx = request.app[CTX]
    node = request.match_info["node"]
    if not _NODE_RE.fullmatch(node):
        return json_error(404, "invalid node id")
    if ctx.store is None:
        return json_error(503, "the history is not available (no SQLite store)")
    now = ctx.clock()
    try:
        query, fmt = _query(request)
        known = node in ctx.topology.nodes
        answer = await ctx.store.read_history(_reader(ctx, query, "node", (node,), known,
                                                      now))
    except BadRequest as exc:
        return json_error(400, str(exc))
    if answer is None:
        return json_error(404, "unknown node")
    answer = {"node": node, **answer}
    if ctx.alerting is not None:
        answer["outages"] = await ctx.alerting.store.outages_of(node, answer["from"],
                                                                answer["to"])
    return await _respond(request, f"{node}-history", answer, fmt)


async def link_history(request: web.Request) -> web.StreamResponse:
    """The history of the links between two nodes, both directions, as JSON or CSV."""
    ctx = request.app[CTX]
    a, b = request.match_info["a"], request.match_info["b"]
    if not (_NODE_RE.fullmatch(a) and _NODE_RE.fullmatch(b)) or a == b:
        return json_error(404, "invalid node ids")
    if ctx.store is None:
        return json_error(503, "the history is not available (no SQLite store)")
    now = ctx.clock()
    try:
        query, fmt = _query(request)
        known = _linked_now(ctx, a, b)
        answer = await ctx.store.read_history(_reader(ctx, query, "link", (a, b), known,
                                                      now))
    except BadRequest as exc:
        return json_error(400, str(exc))
    if answer is None:
        return json_error(404, "no link between these nodes")
    return await _respond(request, f"{a}-{b}-history", {"a": a, "b": b, **answer}, fmt)


def _linked_now(ctx: WebContext, a: str, b: str) -> bool:
    ends = {(a, b), (b, a)}
    return any((ls.key.src, ls.dst) in ends for ls in ctx.topology.node_links(a))


# ---------------------------------------------------------------------- pages
def _name(ctx: WebContext, node: str) -> str:
    state = ctx.topology.nodes.get(node)
    info = state.info if state is not None else None
    return (safe_text(info.hostname) if info is not None else None) or node


def _state(ctx: WebContext, node: str) -> str:
    if node not in ctx.topology.nodes:
        return "unknown"
    state_of = ctx.state_of
    return state_of(node) if state_of is not None else (
        "online" if ctx.topology.nodes[node].online else "offline")


def _range(request: web.Request) -> str:
    chosen = request.query.get("range", DEFAULT_RANGE)
    if chosen not in RANGES:
        raise web.HTTPBadRequest(text=f"Bad query: range must be one of {', '.join(RANGES)}\n")
    return chosen


RANGE_LABELS = {"1h": "1 h", "24h": "24 h", "7d": "7 d", "30d": "30 d", "1y": "1 y"}


def _ranges_nav(chosen: str) -> str:
    current = ' aria-current="page"'
    links = "".join(
        f'<a href="?range={r}" data-range="{r}"{current if r == chosen else ""}>'
        f"{RANGE_LABELS.get(r, r)}</a>"
        for r in RANGES)
    return f'<nav class="ranges" aria-label="Time range">{links}</nav>'


def _page(title: str, heading: str, facts: str, config: dict[str, Any], chosen: str) -> str:
    esc = html.escape
    version = esc(__version__)
    return f"""{public_head(title, "history.css", vendor_css="/static/vendor/uplot/uPlot.min.css")}
<body>
<header class="top">
  <a class="back" href="/">← map</a>
  <h1>{heading}</h1>
  {facts}
</header>
<main>
{_ranges_nav(chosen)}
<p id="status" class="status" role="status" aria-live="polite">Loading…</p>
<div id="history"></div>
<p class="downloads"><a id="csv" href="#" download>Download CSV</a>
 · <a id="json" href="#">JSON</a></p>
<noscript><p>The charts need JavaScript; the numbers are in the
<a href="{esc(config["api"])}?range={chosen}">JSON</a> and
<a href="{esc(config["api"])}?range={chosen}&amp;format=csv">CSV</a>.</p></noscript>
</main>
<script type="application/json" id="history-config">{script_json(config)}</script>
<script src="/static/vendor/uplot/uPlot.iife.min.js"></script>
<script src="/static/history.js?v={version}"></script>
</body></html>"""


def _not_found(text: str) -> web.Response:
    return web.Response(status=404, text=text + "\n", content_type="text/plain")


async def _has_series(ctx: WebContext, kind: str, ids: tuple[str, ...]) -> bool:
    if ctx.store is None:
        return False
    return await ctx.store.read_history(functools.partial(_exists, kind, ids))


async def node_page(request: web.Request) -> web.Response:
    """`/node/NODE`: the node's history."""
    ctx = request.app[CTX]
    node = request.match_info["node"]
    chosen = _range(request)
    if not _NODE_RE.fullmatch(node):
        return _not_found("No such node.")
    if node not in ctx.topology.nodes and not await _has_series(ctx, "node", (node,)):
        return _not_found("This collector knows no node of that id.")
    esc = html.escape
    name, state = _name(ctx, node), _state(ctx, node)
    ident = f'<span class="id">{esc(node)}</span>' if name != node else ""
    facts = (f'<span class="pill state-{esc(state)}">{esc(state_word(state))}</span>{ident}'
             f'<nav class="also"><a href="/#node={esc(node)}">on the map</a>'
             f'<a href="/install/{esc(node)}">installer view</a></nav>')
    config = {"kind": "node", "node": node, "name": name, "range": chosen,
              "ranges": {r: s for r, s in RANGES.items()},
              "api": f"/api/v1/nodes/{node}/history", "metrics": list(NODE_METRICS)}
    return web.Response(text=_page(f"{name} – history", esc(name), facts, config, chosen),
                        content_type="text/html")


async def link_page(request: web.Request) -> web.Response:
    """`/link/A/B`: both ends' view of the links between A and B."""
    ctx = request.app[CTX]
    a, b = request.match_info["a"], request.match_info["b"]
    chosen = _range(request)
    if not (_NODE_RE.fullmatch(a) and _NODE_RE.fullmatch(b)) or a == b:
        return _not_found("No such link.")
    if not _linked_now(ctx, a, b) and not await _has_series(ctx, "link", (a, b)):
        return _not_found("This collector knows no link between these nodes.")
    esc = html.escape
    names = (_name(ctx, a), _name(ctx, b))
    heading = (f'<a href="/node/{esc(a)}">{esc(names[0])}</a> ↔ '
               f'<a href="/node/{esc(b)}">{esc(names[1])}</a>')
    config = {"kind": "link", "a": a, "b": b, "names": list(names), "range": chosen,
              "ranges": dict(RANGES), "api": f"/api/v1/links/{a}/{b}/history"}
    return web.Response(
        text=_page(f"{names[0]} ↔ {names[1]} – history", heading, "", config, chosen),
        content_type="text/html")


def register(app: web.Application) -> None:
    """Add the pages and the history API."""
    app.router.add_get("/node/{node}", node_page, name="node_page")
    app.router.add_get("/link/{a}/{b}", link_page, name="link_page")
    app.router.add_get("/api/v1/nodes/{node}/history", node_history, name="api_node_history")
    app.router.add_get("/api/v1/links/{a}/{b}/history", link_history, name="api_link_history")

