"""The public JSON API (`/api/v1/...`): thin handlers over `meshmon.web.public` and the
whole-network documents (`meshmon.web.documents`)."""

from __future__ import annotations

import re

from aiohttp import web

from meshmon.model.wire import NODE_ID_RE
from meshmon.web import public
from meshmon.web.context import CTX, json_error, json_response

_NODE_RE = re.compile(NODE_ID_RE)


async def nodes(request: web.Request) -> web.Response:
    """All nodes, public summary."""
    ctx = request.app[CTX]
    grid = ctx.config.privacy.coarsen_grid_deg
    body = ctx.cached("nodes", lambda: ctx.documents.nodes_json(grid, ctx.state_of))
    return json_response(body)


async def node(request: web.Request) -> web.Response:
    """One node with its links both ways, latest sys, radios and interfaces."""
    ctx = request.app[CTX]
    node_id = request.match_info["node"]
    if not _NODE_RE.fullmatch(node_id):
        return json_error(404, "invalid node id")
    detail = public.node_detail(ctx.topology, node_id, ctx.config.privacy.coarsen_grid_deg,
                                ctx.state_of)
    if detail is None:
        return json_error(404, "unknown node")
    return json_response(detail)


async def bridges(request: web.Request) -> web.Response:
    """The meshmon-bridges that speak for nodes without an agent: online state and counts."""
    ctx = request.app[CTX]
    return json_response({"bridges": public.bridges_list(ctx.topology, ctx.state_of)})


async def links(request: web.Request) -> web.Response:
    """All resolved directed links with their metrics."""
    ctx = request.app[CTX]
    body = ctx.cached("links", ctx.documents.links_json)
    return json_response(body)


async def topology(request: web.Request) -> web.Response:
    """The topology as a NetJSON NetworkGraph."""
    ctx = request.app[CTX]
    grid = ctx.config.privacy.coarsen_grid_deg
    body = ctx.cached("topology", lambda: ctx.documents.graph_json(grid))
    return json_response(body)


async def map_data(request: web.Request) -> web.Response:
    """Everything the public map draws, in one response (`meshmon.web.mapdata`).

    Gzipped when the client takes it: a few thousand nodes are about half a megabyte of
    JSON, polled every few seconds by phones on mobile data; it compresses ~7:1 and the
    compressed body is kept as long as the cached one."""
    ctx = request.app[CTX]
    docs = ctx.documents
    body = ctx.cached("map", lambda: docs.map_json(ctx.config, ctx.state_of, ctx.clock()))
    if len(body) < 1024 or "gzip" not in request.headers.get("Accept-Encoding", ""):
        response = json_response(body)
    else:
        response = json_response(await docs.map.gzipped(body))
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    return response


def register(app: web.Application) -> None:
    """Add the /api/v1 routes (outages and weak points: `alerts_api`)."""
    app.router.add_get("/api/v1/nodes", nodes, name="api_nodes")
    app.router.add_get("/api/v1/nodes/{node}", node, name="api_node")
    app.router.add_get("/api/v1/links", links, name="api_links")
    app.router.add_get("/api/v1/bridges", bridges, name="api_bridges")
    app.router.add_get("/api/v1/topology", topology, name="api_topology")
    app.router.add_get("/api/v1/map", map_data, name="api_map")
