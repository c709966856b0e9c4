"""The aiohttp application: context, middlewares, and route registration per module.

Each page or API module has a `register(app)` that adds its routes; handlers read the
shared `WebContext` from `app[CTX]`. The map, installer and admin pages add their own
modules (and files under `web/static/`) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from meshmon.storage.database import StorageError
from meshmon.web.context import CTX, STATIC_DIR, WebContext, json_error

log = logging.getLogger(__name__)
API_PREFIX = "/api/"
HTTP_REQUESTS = "meshmon_http_requests_total"


class RequestLog(logging.LoggerAdapter):
    """aiohttp's server log, where a request that is not even valid HTTP (answered 400
    before any handler runs) is one debug line: scanners and broken clients on a public
    map would otherwise fill the log with tracebacks that are no fault of ours. Exceptions
    in our handlers (a 500) stay errors with their traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError) and 400 <= exc_info.code < 500:
            self.debug("%s: %s", str(msg) % args, exc_info.message or type(exc_info).__name__)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner the collector serves `app` with (no access log; quiet bad requests)."""
    return web.AppRunner(app, access_log=None,
                         logger=RequestLog(logging.getLogger("aiohttp.server"), {}))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors (503 when the database cannot be written), `Cache-Control: no-store` and
    open CORS on /api/, request counting."""
    is_api = request.path.startswith(API_PREFIX)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if not is_api or exc.status < 400:
            _count(request, exc.status)
            raise
        response = json_error(exc.status, exc.reason)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "GET")
    except StorageError as exc:  # e.g. a silence while the disk is full: not a bug of ours
        log.warning("%s %s: %s", request.method, request.path, exc)
        response = json_error(503, "the collector cannot write its database right now (is "
                                   "its disk full?); try again later")
    if is_api:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Access-Control-Allow-Origin"] = "*"
    _count(request, response.status)
    return response


def _count(request: web.Request, status: int) -> None:
    route = "other"
    info = request.match_info
    if info.http_exception is None and info.route.resource is not None:
        route = info.route.resource.canonical
    request.app[CTX].metrics.inc(HTTP_REQUESTS, route=route, code=str(status))


def create_app(ctx: WebContext) -> web.Application:
    """The collector's web application over `ctx` (routes from api and ops modules)."""
    from meshmon.web import (
        admin,
        alerts_api,
        api,
        exports,
        history,
        index,
        installer,
        ops,
        security,
    )

    ctx.started_at = ctx.clock()
    ctx.metrics.describe(HTTP_REQUESTS, "counter", "HTTP requests answered, by route and code")
    app = web.Application(middlewares=[api_middleware])
    app[CTX] = ctx
    security.register(app, ctx.config)
    ops.register(app)
    api.register(app)
    alerts_api.register(app)
    installer.register(app)
    admin.register(app)
    index.register(app)
    exports.register(app)
    history.register(app)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR, name="static")
    return app
