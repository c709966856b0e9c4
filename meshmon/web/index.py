"""`/`: a plain start page with the network's summary and the API's addresses.

The public map replaces it (issue: public coverage map); until then a person who opens
the URL the collector prints sees that it works and where the data is.
"""

from __future__ import annotations

import html

from aiohttp import web

from meshmon import __version__
from meshmon.web.app import CTX
from meshmon.web.public import count_online

_ENDPOINTS = (
    ("/api/v1/nodes", "every node: state, model, uptime, clients, location"),
    ("/api/v1/links", "every link with its latest metrics, both directions"),
    ("/api/v1/topology", "the network as a NetJSON NetworkGraph"),
    ("/healthz", "liveness"),
    ("/metrics", "Prometheus metrics of the collector"),
)


def summary_line(online: int, total: int, links: int) -> str:
    """`N of M nodes online, K links` (the wording the map will use too)."""
    return f"{online} of {total} nodes online, {links} links"


async def index(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    topo = ctx.topology
    pairs = topo.graph.number_of_edges()
    line = summary_line(count_online(topo.nodes), len(topo.nodes), pairs)
    rows = "\n".join(
        f'<li><a href="{path}"><code>{path}</code></a> — {html.escape(text)}</li>'
        for path, text in _ENDPOINTS
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshmon</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}
.summary{{font-size:1.5em;font-weight:600}}</style></head>
<body><h1>meshmon</h1>
<p class="summary" id="summary">{html.escape(line)}</p>
<ul>{rows}</ul>
<p><small>meshmon {__version__}</small></p>
</body></html>"""
    return web.Response(text=body, content_type="text/html")


def register(app: web.Application) -> None:
    """Add `/`."""
    app.router.add_get("/", index, name="index")
