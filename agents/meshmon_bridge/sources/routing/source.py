"""`[[routing]]`: a routing daemon's view of the mesh as meshmon nodes and links."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from meshmon_bridge.source import BridgeContext, NodeUpdate, Source, SourceError
from meshmon_bridge.sources.routing import babel, fetch, netdiff_views
from meshmon_bridge.sources.routing.config import RoutingConfig
from meshmon_bridge.sources.routing.naming import (
    NameBook,
    NamingError,
    default_key_file,
    load_or_create_key,
    read_hosts_file,
)
from meshmon_bridge.sources.routing.view import RoutingView, ViewPublisher

log = logging.getLogger(__name__)


class RoutingSource:
    """One `[[routing]]` table: reads the daemon each interval, publishes its view."""

    kind = "routing"

    def __init__(self, config: RoutingConfig, key_file: Path) -> None:
        """`config` with its paths resolved; `key_file`: the bridge's id key, unless the
        table has `id_key` or `id_key_file`."""
        self.config = config
        self.name = f"routing {config.kind} {config.location}"
        self.interval_s = config.interval_s
        self._key_file = config.id_key_file or key_file
        self._book: NameBook | None = None
        self._names_stamp: tuple[int, int] | None = None
        self._publisher: ViewPublisher | None = None
        self._monitor = (
            babel.BabelMonitor(config.url, config.timeout_s)
            if config.kind == "babel" and config.url
            else None
        )

    async def poll(self) -> list[NodeUpdate]:
        """Read the daemon once and return its view as NodeUpdates."""
        publisher = self._prepare()
        return publisher.updates(await self.view())

    def _prepare(self) -> ViewPublisher:
        # the key and the names are read at the first poll (a problem with them fails
        # this source, logged, not the bridge); the names file again when it changes
        # (olsrd's nameservice rewrites hosts_olsr as nodes come and go)
        config = self.config
        try:
            if self._book is None:
                key = config.id_key.encode() if config.id_key else load_or_create_key(
                    self._key_file)
                self._book = NameBook(key, config.id_prefix, self._names())
                self._publisher = ViewPublisher(self._book, config.remote_nodes,
                                                config.exclude, config.node)
            elif config.names_file is not None and self._names_changed():
                self._book.set_names(self._names())
        except NamingError as exc:
            raise SourceError(str(exc)) from None
        assert self._publisher is not None
        return self._publisher

    def _names_changed(self) -> bool:
        assert self.config.names_file is not None
        stamp = _stamp(self.config.names_file)
        return stamp is None or stamp != self._names_stamp

    def _names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        if self.config.names_file is not None:
            self._names_stamp = _stamp(self.config.names_file)
            names = read_hosts_file(self.config.names_file)
        return {**names, **self.config.names}

    async def view(self) -> RoutingView:
        """The daemon's view of the mesh now."""
        if self._monitor is not None:
            return babel.view_of(await self._monitor.table())
        data = await self._read()
        try:
            return await asyncio.to_thread(self._parse, data)
        except SourceError:
            raise
        except Exception as exc:  # netdiff and libcnml raise many kinds on bad input
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise SourceError(f"{self.name}: cannot read it as {self.config.kind}: {detail}")\
                from None

    async def close(self) -> None:
        """Close babeld's monitor connection, if any."""
        if self._monitor is not None:
            await self._monitor.close()

    async def _read(self) -> bytes:
        config = self.config
        if config.file is not None:
            return await fetch.read_file(config.file)
        if config.command is not None:
            return await fetch.run_command(config.command, config.timeout_s)
        assert config.url is not None
        return await fetch.read_url(config.url, config.timeout_s)

    def _parse(self, data: bytes) -> RoutingView:
        config = self.config
        if config.kind == "cnml":
            return self._parse_cnml(data)
        text = data.decode("utf-8", errors="replace")
        match config.kind:
            case "olsr1":
                return netdiff_views.olsr1_view(text)
            case "netjson":
                return netdiff_views.netjson_view(text, config.link_kind)
            case "batman-adv":
                return netdiff_views.batman_view(text)
            case "bmx6":
                return netdiff_views.bmx6_view(text)
            case "wireguard":
                # a saved dump is judged as of its newest handshake; a live one as of now
                as_of = None if config.file is not None else time.time()
                return netdiff_views.wireguard_view(text, as_of, config.handshake_timeout_s)
            case "openvpn":
                return netdiff_views.openvpn_view(text, config.duplicate_cn)
            case "babel":
                return babel.view_of(babel.table_of_dump(text))
        raise SourceError(f"unknown routing kind {config.kind!r}")

    def _parse_cnml(self, data: bytes) -> RoutingView:
        if self.config.file is not None:
            return netdiff_views.cnml_view(self.config.file)
        # libcnml reads files only
        with tempfile.NamedTemporaryFile(suffix=".cnml") as f:
            f.write(data)
            f.flush()
            return netdiff_views.cnml_view(Path(f.name))


def create_routing_sources(
    tables: Sequence[RoutingConfig], context: BridgeContext
) -> list[Source]:
    """The `[[routing]]` sources of one bridge: paths relative to the config's folder; one
    id key per bridge (kept in its state folder) unless a table names its own."""
    key_file = default_key_file(context.bridge_id)
    sources: list[Source] = []
    for table in tables:
        paths = {name: context.base_dir / value for name in PATH_KEYS
                 if (value := getattr(table, name)) is not None}  # fmt: skip
        sources.append(RoutingSource(table.model_copy(update=paths), key_file))
    return sources


PATH_KEYS = ("file", "names_file", "id_key_file")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)
