"""The aiohttp application: context, middlewares, and route registration per module.

Each page or API module has a `register(app)` that adds its routes; handlers read the
shared `WebContext` from `app[CTX]`. The map, installer and admin pages add their own
modules (and files under `web/static/`) the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from meshmon.config import Config
from meshmon.history.recorder import Reader
from meshmon.history.tables import Retention
from meshmon.metrics import Metrics
from meshmon.model.core import Core
from meshmon.model.topology import Topology
from meshmon.storage.database import StorageError
from meshmon.storage.sessions import SessionStore
from meshmon.web.documents import Documents
from meshmon.web.live import LiveHub
from meshmon.web.public import dump

if TYPE_CHECKING:
    from meshmon.alerts.runtime import Alerting

log = logging.getLogger(__name__)
T = TypeVar("T")
STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/"
HTTP_REQUESTS = "meshmon_http_requests_total"


class HistoryStore(Protocol):
    """What the web reads from the SQLite store: the history of nodes and links."""

    @property
    def history_retention(self) -> Retention: ...

    async def read_history(self, fn: Reader[T]) -> T: ...


@dataclass
class WebContext:
    """Everything the handlers need; built by the service, by hand in tests."""

    core: Core
    """the collector's model: topology, health, and the change log the web follows"""
    config: Config
    metrics: Metrics
    clock: Callable[[], float] = time.time
    store: HistoryStore | None = None
    send_command: Callable[[str, bytes], None] | None = None
    """publish a command to one agent (installer mode); None when there is no broker"""
    alerting: Alerting | None = None
    """outages, weak points, alert log and silences; None in tests of the plain API"""
    admin_token: Callable[[], str] = lambda: ""
    """the maintainer token (empty: maintainer pages and APIs refuse everyone)"""
    sessions: SessionStore | None = None
    """maintainer sessions of /admin (None: signing in is off; a Bearer token still works)"""
    live: LiveHub = field(init=False, repr=False)
    """wakes live views (installer) when a node's links change"""
    cache_ttl_s: float = 1.0
    """how long whole-network responses (nodes, links, topology, map) are reused; 0
    disables. A response that took d seconds to build is reused for at least 10·d, so
    polling maps cannot keep the event loop busy more than ~10 %."""
    started_at: float = 0.0
    """set by create_app from `clock`"""
    documents: Documents = field(init=False, repr=False)
    """the whole-network JSON documents, kept up to date (the service calls catch_up)"""
    _cache: dict[str, tuple[float, float, bytes]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        log = self.core.log
        self.documents = Documents(self.core.topology, log.follow())
        self.live = LiveHub(log.follow())

    @property
    def topology(self) -> Topology:
        """The core's topology (read only: changes go through the core)."""
        return self.core.topology

    @property
    def state_of(self) -> Callable[[str], str]:
        """node id → online/offline/silent/unreachable/flapping."""
        return self.core.health.node_condition

    def catch_up(self) -> None:
        """Follow the change log: documents re-encode, live views wake (after each ingest
        batch and tick)."""
        self.documents.catch_up()
        self.live.catch_up()

    def cached(self, name: str, build: Callable[[], bytes]) -> bytes:
        """The JSON body `build()` gives, reused for the TTL (measured by `clock`)."""
        now = self.clock()
        hit = self._cache.get(name)
        if hit is not None and 0 <= now - hit[0] < hit[1]:
            return hit[2]
        started = time.perf_counter()
        body = build()
        if self.cache_ttl_s > 0:
            took = time.perf_counter() - started
            self._cache[name] = (now, max(self.cache_ttl_s, 10 * took), body)
        return body


CTX: web.AppKey[WebContext] = web.AppKey("meshmon_ctx", WebContext)


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


def json_response(body: bytes | Any, status: int = 200) -> web.Response:
    """A JSON response from prebuilt bytes or a value."""
    data = body if isinstance(body, bytes) else dump(body)
    return web.Response(body=data, status=status, content_type="application/json")


def json_error(status: int, message: str) -> web.Response:
    """`{"error": …}` with the status; API errors are JSON, never HTML."""
    return json_response({"error": message, "status": status}, status=status)


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
