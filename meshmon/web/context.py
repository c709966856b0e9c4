"""What every page and API handler shares: the `WebContext` (at `app[CTX]`) and JSON
answers. Route modules import this, never `app.py` (which imports them to register their
routes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import web

from meshmon.config import Config
from meshmon.history.recorder import Reader
from meshmon.history.tables import Retention
from meshmon.metrics import Metrics
from meshmon.model.core import Core
from meshmon.model.topology import Topology
from meshmon.storage.sessions import SessionStore
from meshmon.tasks import Spawn, plain_task
from meshmon.web.documents import Documents
from meshmon.web.live import LiveHub
from meshmon.web.public import dump

if TYPE_CHECKING:
    from meshmon.alerts.runtime import Alerting

log = logging.getLogger(__name__)
T = TypeVar("T")
STATIC_DIR = Path(__file__).parent / "static"


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
    spawn: Spawn = plain_task
    """starts background tasks (the service's task group)"""
    failure: Callable[[], str] = lambda: ""
    """why the collector stopped working (a task failed), or empty: /healthz says it"""
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


def json_response(body: bytes | Any, status: int = 200) -> web.Response:
    """A JSON response from prebuilt bytes or a value."""
    data = body if isinstance(body, bytes) else dump(body)
    return web.Response(body=data, status=status, content_type="application/json")


def json_error(status: int, message: str) -> web.Response:
    """`{"error": …}` with the status; API errors are JSON, never HTML."""
    return json_response({"error": message, "status": status}, status=status)
