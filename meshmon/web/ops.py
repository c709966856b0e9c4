"""Routes for operators: liveness (`/healthz`) and Prometheus metrics (`/metrics`).

The topology gauges (`meshmon_nodes`, `meshmon_nodes_online`, `meshmon_links`) are
registered by the service next to the other collector metrics; this module only adds
`meshmon_http_requests_total` (in app.py) and serves whatever the registry holds.
"""

from __future__ import annotations

from aiohttp import web

from meshmon.web.context import CTX, json_response
from meshmon.web.public import count_online

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests, with a few numbers; 503 once a task of the
    collector failed (it stopped collecting: `failure` says why)."""
    ctx = request.app[CTX]
    nodes = ctx.topology.nodes
    failure = ctx.failure()
    response = json_response(
        {
            "ok": not failure,
            **({"failure": failure} if failure else {}),
            "uptime_s": round(ctx.clock() - ctx.started_at, 3),
            "nodes": len(nodes),
            "nodes_online": count_online(nodes, ctx.topology.bridges.held),
            "links": len(ctx.topology.links),
        },
        status=503 if failure else 200,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition format, version 0.0.4."""
    text = request.app[CTX].metrics.render()
    response = web.Response(body=text.encode())
    # set the header whole: aiohttp's content_type= would drop the version parameter
    response.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response


def register(app: web.Application) -> None:
    """Add /healthz and /metrics."""
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/metrics", metrics, name="metrics")
