"""`[[routing]]`: a routing daemon's view of the mesh as meshmon nodes and links."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path

from meshmon_bridge.source import NodeUpdate, SourceError
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

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        self.name = f"routing {config.kind} {config.location}"
        self.interval_s = config.interval_s
        try:
            book = NameBook(_key(config), config.id_prefix, _names(config))
        except NamingError as exc:
            raise SourceError(str(exc)) from None
        self._publisher = ViewPublisher(
            book, config.interval_s, config.remote_nodes, config.exclude, config.node
        )
        self._monitor = (
            babel.BabelMonitor(config.url, config.timeout_s)
            if config.kind == "babel" and config.url
            else None
        )

    async def poll(self) -> list[NodeUpdate]:
        """Read the daemon once and return its view as NodeUpdates."""
        return self._publisher.updates(await self.view())

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


def _key(config: RoutingConfig) -> bytes:
    if config.id_key is not None:
        return config.id_key.encode()
    return load_or_create_key(config.id_key_file or default_key_file())


def _names(config: RoutingConfig) -> dict[str, str]:
    names = read_hosts_file(config.names_file) if config.names_file is not None else {}
    return {**names, **config.names}
