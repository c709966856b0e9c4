"""`/`: the public coverage map (Leaflet, drawn by `static/map.js` from `/api/v1/map`),
and `/nodes`, the list of every node (`meshmon.web.nodelist`).

The HTML carries what the script needs before its first fetch — tiles, refresh interval,
coverage radius, quality thresholds, the words for the node states — as JSON in a
`<script type="application/json">`, and it already shows the summary line and the legend,
so the page says something useful without JavaScript (and to the tools that only read
HTML). `/#node=ID` opens a node's details (map.js): a link that can be shared.
"""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web

from meshmon import __version__
from meshmon.config import Config
from meshmon.web.context import CTX
from meshmon.web.mapdata import Thresholds, quality_thresholds
from meshmon.web.nodelist import node_list
from meshmon.web.page_head import public_head
from meshmon.web.public import count_online, count_pairs
from meshmon.web.states import STATES

_DATA_LINKS = (
    ("/api/v1/map", "map"),
    ("/api/v1/nodes", "nodes"),
    ("/api/v1/links", "links"),
    ("/api/v1/topology", "NetJSON"),
    ("/api/v1/outages", "outages"),
)


def summary_line(online: int, total: int, links: int, unmonitored: int = 0) -> str:
    """`N of M nodes online, K links` (map.js writes the same words on every refresh);
    K counts node pairs with a link, each pair once (`/api/v1/map` `summary.links`), and
    `, U unmonitored` follows while a bridge is silent."""
    line = f"{online} of {total} nodes online, {links} links"
    return line + (f", {unmonitored} unmonitored" if unmonitored else "")


def page_config(config: Config, outages: bool = True) -> dict[str, Any]:
    """What map.js reads before its first fetch (`outages`: /api/v1/outages answers)."""
    m = config.map
    return {
        "outages": outages,
        "tile_url": m.tile_url,
        "attribution": m.attribution,
        "max_zoom": m.max_zoom,
        "refresh_s": m.refresh_s,
        "coverage_radius_m": m.coverage_radius_m,
        "thresholds": quality_thresholds(config).as_json(),
        "states": [[state, word] for state, word, _ in STATES],
    }


def script_json(value: Any) -> str:
    """JSON that is safe inside `<script>`: no `<`, `>` or `&` can end or comment it."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _fmt(value: float) -> str:
    # −65 rather than -65.0; a true minus sign reads better in the legend
    text = f"{value:g}"
    return text.replace("-", "\N{MINUS SIGN}")


def legend_html(t: Thresholds) -> str:
    """The legend: node states (problems first, as the map stacks them), the rings, link
    quality with its thresholds, and what a link count counts."""
    states = "".join(
        f'<li><span class="dot state-{name}"></span><span><b>{html.escape(word)}</b>'
        f' – <span class="why">{html.escape(meaning)}</span></span></li>'
        for name, word, meaning in STATES
    )
    sig, tq, etx = (
        (t.good_signal_dbm, t.fair_signal_dbm), (t.good_tq, t.fair_tq), (t.good_etx, t.fair_etx)
    )
    rows = (
        ("good", "good", f"signal ≥ {_fmt(sig[0])} dBm, TQ ≥ {tq[0]}, ETX ≤ {_fmt(etx[0])}"),
        ("fair", "fair", f"≥ {_fmt(sig[1])} dBm, TQ ≥ {tq[1]}, ETX ≤ {_fmt(etx[1])}"),
        ("poor", "poor", "below fair"),
        ("unknown", "no data", ""),
    )
    quality = "".join(
        f'<li><span class="line q-{name}"></span><b>{label}</b> {html.escape(text)}</li>'
        for name, label, text in rows
    )
    data = " · ".join(f'<a href="{path}">{label}</a>' for path, label in _DATA_LINKS)
    return f"""<details id="legend" class="legend" open>
<summary>Legend</summary>
<ul class="legend-list">{states}
<li><span class="dot ring"></span>gateway (uplink to the internet)</li>
<li><span class="dot ring cause"></span>cause of an outage</li></ul>
<p class="legend-head">Links (best direction; wider = more throughput)</p>
<ul class="legend-list">{quality}
<li><span class="line dashed"></span>VPN tunnel</li></ul>
<p class="legend-note">A link is a pair of nodes that hear each other, counted once
per pair.</p>
<p class="legend-note" id="unlocated"></p>
<p class="legend-data">Open data: {data}</p>
</details>"""


async def index(request: web.Request) -> web.Response:
    """The map page, with the current summary already in it."""
    ctx = request.app[CTX]
    topo = ctx.topology
    held = topo.bridges.held
    line = summary_line(count_online(topo.nodes, held), len(topo.nodes),
                        count_pairs(topo.graph), len(held))
    config = script_json(page_config(ctx.config, outages=ctx.alerting is not None))
    head = public_head("Mesh network map", "map.css",
                       vendor_css="/static/vendor/leaflet/leaflet.css",
                       description="Live map of the mesh network: nodes, links, coverage.")
    body = f"""{head}
<body>
<header class="top">
  <div class="title"><h1>Mesh network map</h1>
  <p id="summary" class="summary" aria-live="polite">{html.escape(line)}</p>
  <a class="list-link" href="/nodes">All nodes</a></div>
  <form class="search" role="search" autocomplete="off">
    <label class="sr-only" for="search">Find a node by name or id</label>
    <input id="search" type="search" placeholder="Find a node by name or id…"
      enterkeyhint="search"
      aria-controls="search-results" aria-autocomplete="list">
    <ul id="search-results" class="search-results" role="listbox" hidden></ul>
  </form>
</header>
<div id="outages" class="outages" role="status" hidden></div>
<main class="stage">
  <div id="map" class="map" aria-label="Map of the mesh network"></div>
  <aside id="details" class="details" hidden aria-label="Node details">
    <button type="button" class="close" aria-label="Close details">×</button>
    <div class="details-body"></div>
  </aside>
  {legend_html(quality_thresholds(ctx.config))}
  <noscript><p class="noscript">The map needs JavaScript; the data is open:
  <a href="/api/v1/nodes">nodes</a>, <a href="/api/v1/topology">NetJSON</a>.</p></noscript>
</main>
<script type="application/json" id="map-config">{config}</script>
<script src="/static/vendor/leaflet/leaflet.js"></script>
<script src="/static/map.js?v={html.escape(__version__)}"></script>
</body></html>"""
    return web.Response(text=body, content_type="text/html")


def register(app: web.Application) -> None:
    """Add `/` and `/nodes`."""
    app.router.add_get("/", index, name="index")
    app.router.add_get("/nodes", node_list, name="node_list")
