"""Babel, from babeld's local interface (`babeld -g PORT|PATH`, or `local-port` /
`local-path` in babeld.conf: read-only).

The bridge connects, sends `monitor` (a full dump, then every change as it happens) and
keeps the connection, so each poll sees the table as of now. A saved `dump` transcript
(`file`) or a command that prints one (`command = "echo dump | nc ::1 33123"`) works too.

What becomes what:
- the local node is babeld's `my-id`; its hostname is `host`; its prefixes (`xroute`)
  are its addresses for `names` lookups.
- each neighbour with a finite cost is a `babel` link from the local node on its
  interface, with `cost`, `rxcost`, `txcost` and `lq` = the share of the last 16 hellos
  heard (`reach`). A neighbour at cost infinity (65535, its interface down or hellos lost)
  is a link that is down: it is left out. The neighbour's node is the router id of the
  routes it originates (`refmetric 0` via its address). A neighbour that originates no
  route (yet: its updates follow its first hellos) has no router id to name it by: its
  link is left out until it does.
- every router id with an installed route of finite metric is a node that is reachable
  now; its route prefixes are its addresses for `names` lookups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.routing.view import RoutingView, ViewLink

log = logging.getLogger(__name__)
INFINITY = 0xFFFF
MAX_LINE = 4096
_OBJECTS = {"interface": "interfaces", "neighbour": "neighbours", "route": "routes",
            "xroute": "xroutes"}  # fmt: skip


@dataclass
class BabelTable:
    """babeld's state as its local interface shows it."""

    host: str | None = None
    my_id: str | None = None
    interfaces: dict[str, dict[str, str]] = field(default_factory=dict)
    neighbours: dict[str, dict[str, str]] = field(default_factory=dict)
    routes: dict[str, dict[str, str]] = field(default_factory=dict)
    xroutes: dict[str, dict[str, str]] = field(default_factory=dict)

    def apply(self, line: str) -> None:
        """Take one line of a dump or of monitor output; lines it does not know are
        skipped (newer babeld versions add some)."""
        words = line.split()
        if len(words) == 2 and words[0] in ("host", "my-id"):
            if words[0] == "host":
                self.host = words[1]
            else:
                self.my_id = words[1].lower()
            return
        if len(words) < 3 or words[0] not in ("add", "change", "flush"):
            return
        table: dict[str, dict[str, str]] | None = getattr(self, _OBJECTS.get(words[1], ""), None)
        if table is None:
            return
        if words[0] == "flush":
            table.pop(words[2], None)
        else:
            rest = words[3:]
            table[words[2]] = dict(zip(rest[::2], rest[1::2], strict=False))


def table_of_dump(text: str) -> BabelTable:
    """The table a `dump` transcript shows."""
    table = BabelTable()
    for line in text.splitlines():
        table.apply(line)
    return table


def _metric(fields: dict[str, str], name: str) -> int | None:
    try:
        value = int(fields[name])
    except (KeyError, ValueError):
        return None
    return value if 0 <= value < INFINITY else None


def view_of(table: BabelTable) -> RoutingView:
    """The routing view of one babeld's table."""
    if table.my_id is None:
        raise SourceError("no `my-id` line: not babeld's local interface?")
    local = table.my_id
    view = RoutingView(nodes={}, links=[], local=local)
    me = view.node(local)
    me.hostname = table.host
    me.aliases = [x["prefix"] for x in table.xroutes.values() if "prefix" in x]
    originator: dict[tuple[str, str], str] = {}
    for route in table.routes.values():
        router, metric = route.get("id", "").lower(), _metric(route, "metric")
        if not router or metric is None:
            continue
        if route.get("refmetric") == "0":
            originator[(route.get("via", ""), route.get("if", ""))] = router
        if route.get("installed") == "yes" and router != local:
            node = view.node(router)
            if "prefix" in route and route["prefix"] not in node.aliases:
                node.aliases.append(route["prefix"])
    for neighbour in table.neighbours.values():
        cost = _metric(neighbour, "cost")
        address, iface = neighbour.get("address", ""), neighbour.get("if", "")
        if cost is None or not address:
            continue
        peer = originator.get((address, iface))
        if peer is None:  # not named yet: its routes arrive a moment after its hellos
            continue
        view.node(peer)
        metrics = {"cost": float(cost)}
        for name in ("rxcost", "txcost"):
            value = _metric(neighbour, name)
            if value is not None:
                metrics[name] = float(value)
        reach = neighbour.get("reach", "")
        if reach:
            with contextlib.suppress(ValueError):
                metrics["lq"] = (int(reach, 16) & 0xFFFF).bit_count() / 16
        view.links.append(ViewLink(local, peer, iface[:64] or "babel", "babel", metrics))
    return view


class BabelMonitor:
    """A kept connection to babeld's local interface in `monitor` mode."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._table: BabelTable | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def table(self) -> BabelTable:
        """The table as of now; (re)connects first when there is no live connection."""
        if self._table is None or self._reader is None or self._reader.done():
            await self.close()
            try:
                await asyncio.wait_for(self._connect(), self._timeout_s)
            except TimeoutError:
                await self.close()
                raise SourceError(f"{self.url}: no full dump within {self._timeout_s:g} s")\
                    from None
            except (OSError, EOFError, ValueError) as exc:
                await self.close()
                raise SourceError(f"{self.url}: {exc}") from None
        assert self._table is not None
        return self._table

    async def _connect(self) -> None:
        reader, self._writer = await _open(self.url)
        table = BabelTable()
        await _read_until_ok(reader, table)  # greeting: BABEL 1.0, version, host, my-id
        self._writer.write(b"monitor\n")
        await self._writer.drain()
        await _read_until_ok(reader, table)  # the full dump that monitor starts with
        self._table = table
        self._reader = asyncio.create_task(self._follow(reader, table), name=f"babel {self.url}")

    async def _follow(self, reader: asyncio.StreamReader, table: BabelTable) -> None:
        try:
            while line := await reader.readline():
                table.apply(line.decode(errors="replace"))
        except (OSError, ValueError) as exc:
            log.warning("%s: monitor connection lost: %s", self.url, exc)
        else:
            log.warning("%s: babeld closed the monitor connection", self.url)

    async def close(self) -> None:
        """Stop following and close the connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None
        self._table = None


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return await asyncio.open_unix_connection(parts.path, limit=MAX_LINE)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        return await asyncio.open_connection(parts.hostname, parts.port, limit=MAX_LINE)
    raise ValueError("babel url must be unix:/PATH or tcp://HOST:PORT")


async def _read_until_ok(reader: asyncio.StreamReader, table: BabelTable) -> None:
    while True:
        raw = await reader.readline()
        if not raw:
            raise EOFError("babeld closed the connection")
        line = raw.decode(errors="replace").strip()
        if line == "ok":
            return
        if line in ("no", "bad"):
            raise ValueError(f"babeld answered {line!r}")
        table.apply(line)
