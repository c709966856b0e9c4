"""`[[meshviewer]]`, `[[hopglass]]` and `[[openwifimap]]`: a community's published map
data, polled from a URL or a file on an interval (docs/freifunk.md, "Map import")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from meshmon_bridge.source import BridgeContext, NodeUpdate, Source
from meshmon_bridge.sources.freifunk import hopglass, meshviewer, openwifimap
from meshmon_bridge.sources.freifunk.fetch import read_json, resolve
from meshmon_bridge.sources.freifunk.ids_config import FreifunkTable, LazyIds
from meshmon_bridge.sources.freifunk.node_ids import PublicIds
from meshmon_bridge.sources.freifunk.owm_documents import DocumentCache
from meshmon_bridge.sources.freifunk.snapshot import Snapshot, SnapshotOptions, node_updates


class MapTable(FreifunkTable):
    """Keys shared by the map file kinds."""

    timeout_s: float = Field(default=30, gt=0, le=600)
    """how long a download may take"""
    offline_after_s: float = Field(default=900, gt=0)
    """a node the file does not call online or offline is offline when last seen longer
    ago than this before the file's own time"""


class MeshviewerTable(MapTable):
    """`[[meshviewer]]`: yanic's meshviewer.json."""

    url: str = Field(min_length=1)


class HopglassTable(MapTable):
    """`[[hopglass]]`: hopglass-server's nodes.json and graph.json."""

    nodes_url: str = Field(min_length=1)
    graph_url: str = Field(min_length=1)


class OpenWifiMapTable(MapTable):
    """`[[openwifimap]]`: OpenWiFiMap node documents (CouchDB rows)."""

    url: str = Field(min_length=1)
    offline_after_s: float = Field(default=86_400, gt=0)
    """OpenWiFiMap nodes must update at least once a day (its API's rule)"""


class MapFileSource:
    """One map file source: fetch, parse (in a thread: files are megabytes), convert."""

    kind = "meshviewer"

    def __init__(self, table: MapTable, context: BridgeContext, locations: list[str]) -> None:
        self.table = table
        self.interval_s = table.interval_s
        self.locations = [resolve(loc, context.base_dir) for loc in locations]
        self.name = f"{self.kind} {' + '.join(self.locations)}"
        self._ids = LazyIds(table, context)
        self.options = SnapshotOptions(interval_s=table.interval_s,
                                       offline_after_s=table.offline_after_s,
                                       public=table.public, tags=tuple(table.tags))

    @property
    def ids(self) -> PublicIds:
        """The public ids this source gives (made at first use)."""
        return self._ids.get()

    async def poll(self) -> list[NodeUpdate]:
        """Fetch the file(s) once; an update per node in them."""
        ids = self.ids
        docs = [await read_json(loc, self.table.timeout_s) for loc in self.locations]
        return await asyncio.to_thread(self._updates, docs, ids)

    def _updates(self, docs: list[Any], ids: PublicIds) -> list[NodeUpdate]:
        return node_updates(self.parse(docs, time.time()), ids, self.options)

    def parse(self, docs: list[Any], now: float) -> Snapshot:
        """The fetched documents as a snapshot."""
        return meshviewer.parse(docs[0], self.locations[0], now)

    async def close(self) -> None:
        """Nothing to release: every poll opens and closes its own connection."""


class MeshviewerSource(MapFileSource):
    """`[[meshviewer]]`."""

    kind = "meshviewer"


class HopglassSource(MapFileSource):
    """`[[hopglass]]`."""

    kind = "hopglass"

    def parse(self, docs: list[Any], now: float) -> Snapshot:
        """nodes.json + graph.json as a snapshot."""
        return hopglass.parse(docs[0], docs[1], " + ".join(self.locations), now)


class OpenWifiMapSource(MapFileSource):
    """`[[openwifimap]]`: the view, and the node documents of rows that carry no links."""

    kind = "openwifimap"

    def __init__(self, table: MapTable, context: BridgeContext, locations: list[str]) -> None:
        super().__init__(table, context, locations)
        self._documents = DocumentCache(self.locations[0], table.timeout_s)

    async def poll(self) -> list[NodeUpdate]:
        """Fetch the view, then the documents it does not carry; an update per node."""
        ids = self.ids
        view = await read_json(self.locations[0], self.table.timeout_s)
        fetched = await self._documents.documents(view)
        return await asyncio.to_thread(self._updates, [view, fetched], ids)

    def parse(self, docs: list[Any], now: float) -> Snapshot:
        """OpenWiFiMap rows (with the fetched node documents) as a snapshot."""
        fetched = docs[1] if len(docs) > 1 else None
        return openwifimap.parse(docs[0], self.locations[0], now, fetched)


def create_meshviewer(tables: Sequence[MeshviewerTable], ctx: BridgeContext) -> list[Source]:
    """A source per `[[meshviewer]]` table."""
    return [MeshviewerSource(t, ctx, [t.url]) for t in tables]


def create_hopglass(tables: Sequence[HopglassTable], ctx: BridgeContext) -> list[Source]:
    """A source per `[[hopglass]]` table."""
    return [HopglassSource(t, ctx, [t.nodes_url, t.graph_url]) for t in tables]


def create_openwifimap(tables: Sequence[OpenWifiMapTable], ctx: BridgeContext
                       ) -> list[Source]:
    """A source per `[[openwifimap]]` table."""
    return [OpenWifiMapSource(t, ctx, [t.url]) for t in tables]
