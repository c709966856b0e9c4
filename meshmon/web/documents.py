"""The whole-network JSON documents of the collector, and when they follow changes.

`/api/v1/nodes`, `/links`, `/topology` and `/map` each describe every node and link; their
renderers (`meshmon.web.incremental.Incremental`) keep encoded fragments up to date from
the core's change log, read at this object's own position. The collector calls
`catch_up()` after each ingest batch and each tick, so the encoding work is spread over
time instead of landing on a request; each request also catches up first, so it never
serves anything older than the topology. A document nobody asked for in `idle_s` drops
its fragments and stops following changes (a collector nobody looks at pays nothing);
the next request builds it from scratch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from meshmon.config import Config
from meshmon.model.changelog import Changes, Cursor
from meshmon.model.topology import Topology
from meshmon.web.incremental import Incremental
from meshmon.web.mapdata import MapRenderer
from meshmon.web.netjson import NetJsonRenderer
from meshmon.web.public import LinksRenderer, NodesRenderer, StateOf

log = logging.getLogger(__name__)

IDLE_S = 300.0
"""a document not requested for this long stops being kept up to date"""


class Documents:
    """The four whole-network documents of one topology, and when they follow changes."""

    def __init__(self, topology: Topology, cursor: Cursor, idle_s: float = IDLE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.topology = topology
        self.cursor = cursor
        self.idle_s = idle_s
        self.monotonic = monotonic
        self.nodes = NodesRenderer()
        self.links = LinksRenderer()
        self.netjson = NetJsonRenderer()
        self.map = MapRenderer()
        self._all: tuple[Incremental, ...] = (self.nodes, self.links, self.netjson, self.map)

    def catch_up(self) -> None:
        """Hand the changes logged since the last call to every document kept up to date."""
        if not any(renderer.built for renderer in self._all):
            self.cursor.skip()  # nobody asked for a document lately: nothing to follow
            return
        changes = Changes.of(self.cursor.read())
        oldest_use = self.monotonic() - self.idle_s
        for renderer in self._all:
            if renderer.built and renderer.used_at < oldest_use:
                renderer.clear()
            try:
                renderer.update(self.topology, changes)
            except Exception:  # a bug must not stop ingest nor leave a stale document
                log.exception("%s could not follow the changes; rebuilt on its next request",
                              type(renderer).__name__)
                renderer.clear()

    def nodes_json(self, grid: float, state_of: StateOf | None) -> bytes:
        """`/api/v1/nodes`."""
        self._use(self.nodes)
        return self.nodes.nodes_json(self.topology, grid, state_of)

    def links_json(self) -> bytes:
        """`/api/v1/links`."""
        self._use(self.links)
        return self.links.links_json(self.topology)

    def graph_json(self, grid: float) -> bytes:
        """`/api/v1/topology`."""
        self._use(self.netjson)
        return self.netjson.graph_json(self.topology, grid)

    def map_json(self, config: Config, state_of: StateOf | None, now: float) -> bytes:
        """`/api/v1/map`."""
        self._use(self.map)
        return self.map.map_json(self.topology, config, state_of, now)

    def _use(self, renderer: Incremental) -> None:
        self.catch_up()
        renderer.used_at = self.monotonic()
