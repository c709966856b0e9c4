"""`[[respondd]]`: ask Gluon nodes what yanic asks them, over UDP (docs/freifunk.md).

Each round: `GET nodeinfo statistics neighbours` to the multicast groups on each mesh
interface (`ff02::2:1001` link-local, `ff05::2:1001` site-wide; port 1001) and to the
configured unicast `addresses`; answers are collected for `timeout_s`. Nodes heard within
`forget_after_s` that did not answer are then asked by unicast at the address they last
answered from, up to `unicast_retries` times. Answers become node updates
(`respondd_data`); a node not heard for `offline_after_s` is published offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator, model_validator

from meshmon_bridge.ratelog import RateLimitedLog
from meshmon_bridge.source import BridgeContext, NodeUpdate, Source, SourceError
from meshmon_bridge.sources.freifunk import respondd_data as data
from meshmon_bridge.sources.freifunk.ids_config import FreifunkTable, LazyIds
from meshmon_bridge.sources.freifunk.node_ids import Candidate, PublicIds
from meshmon_bridge.sources.freifunk.snapshot import as_dict, text

log = logging.getLogger(__name__)

DEFAULT_GROUP = "ff02::2:1001"
MAX_PENDING = 65_536
"""answers kept between two polls at most (more are counted and dropped)"""
MULTICAST_HOPS = 8
RECEIVE_BUFFER = 8 << 20
"""hundreds of nodes answer a multicast request at once: the default socket buffer
(~200 kB) holds about a hundred answers, the rest would be dropped by the kernel"""
UNICAST_BURST = 32
"""unicast requests sent before letting answers in (yanic waits 10 ms after each)"""
"""enough for `ff05::2:1001` to cross a site's routers; link scope stays on the link"""


class ResponddTable(FreifunkTable):
    """`[[respondd]]`."""

    interfaces: list[str] = Field(default_factory=list)
    """mesh interfaces to ask by multicast (e.g. `["bat0"]`)"""
    multicast_groups: list[str] = Field(default_factory=lambda: [DEFAULT_GROUP])
    port: int = Field(default=1001, ge=1, le=65535)
    addresses: list[str] = Field(default_factory=list)
    """nodes asked by unicast every round: `fe80::1%bat0`, `[2001:db8::1]:1001`, `host`"""
    timeout_s: float = Field(default=3, gt=0, le=60)
    """how long answers are awaited after each request"""
    unicast_retries: int = Field(default=1, ge=0, le=10)
    forget_after_s: float = Field(default=600, gt=0)
    """a node not heard for this long is no longer asked by unicast (yanic: 10 minutes)"""
    offline_after_s: float = Field(default=0, ge=0)
    """a node not heard for this long is published offline; 0: 3 × interval_s"""

    @field_validator("multicast_groups")
    @classmethod
    def _multicast(cls, groups: list[str]) -> list[str]:
        for group in groups:
            try:
                if not socket.inet_pton(socket.AF_INET6, group)[0] == 0xFF:
                    raise ValueError
            except (OSError, ValueError):
                raise ValueError(f"{group!r} is not an IPv6 multicast group") from None
        return groups

    @model_validator(mode="after")
    def _something_to_ask(self) -> ResponddTable:
        if not self.interfaces and not self.addresses:
            raise ValueError("give `interfaces` (multicast) or `addresses` (unicast)")
        return self

    @property
    def offline_after(self) -> float:
        """`offline_after_s`, or 3 × `interval_s` when unset."""
        return self.offline_after_s or 3 * self.interval_s


@dataclass(slots=True)
class Known:
    """What the source remembers of one node (by Gluon node id)."""

    answer: data.Answer
    address: tuple[Any, ...]
    heard_at: float


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, source: ResponddSource) -> None:
        self.source = source

    def datagram_received(self, payload: bytes, addr: tuple[Any, ...]) -> None:
        self.source.received(payload, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("respondd socket: %s", exc)


class ResponddSource:
    """One `[[respondd]]` table: one UDP socket, asked every `interval_s`."""

    kind = "respondd"

    def __init__(self, table: ResponddTable, context: BridgeContext) -> None:
        self.table = table
        self.interval_s = table.interval_s
        where = ", ".join(table.interfaces + table.addresses)
        self.name = f"respondd {where}"
        self._ids = LazyIds(table, context)
        self.known: dict[str, Known] = {}
        self.directory = data.Directory()
        self.bad_answers = 0
        self.dropped_answers = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._inbox: dict[str, tuple[data.Answer, tuple[Any, ...], float]] = {}
        self._answered: set[str] = set()
        """nodes that answered in the current round"""
        self._arrived = asyncio.Event()
        self._rate_log = RateLimitedLog(log, every_s=60.0)

    @property
    def ids(self) -> PublicIds:
        """The public ids this source gives (made at first use)."""
        return self._ids.get()

    async def poll(self) -> list[NodeUpdate]:
        """One round of requests; an update per node heard or gone silent."""
        self._ids.get()  # a key that cannot be had fails the poll before anything is sent
        transport = await self._open()
        round_start = time.time()
        sent = await self._ask_all(transport, await self._static_targets())
        if not sent:
            raise SourceError(f"{self.name}: no request could be sent (interfaces missing?)")
        await self._collect(self.table.timeout_s, set())
        for _ in range(self.table.unicast_retries):
            missing = self._missing(round_start)
            if not missing:
                break
            await self._ask(transport, [self.known[node_id].address for node_id in missing])
            await self._collect(self.table.timeout_s, set(missing))
        return self._updates(round_start, time.time())

    def received(self, payload: bytes, addr: tuple[Any, ...]) -> None:
        """A datagram arrived (called by the socket's protocol)."""
        try:
            answer = data.decode(payload)
        except data.BadAnswer as exc:
            self.bad_answers += 1
            self._rate_log.log(logging.WARNING, "bad", "%s: dropped an answer from %s: %s "
                               "(%d so far)", self.name, addr[0], exc, self.bad_answers)
            return
        if answer.node_id not in self._inbox and len(self._inbox) >= MAX_PENDING:
            self.dropped_answers += 1
            return
        self._inbox[answer.node_id] = (answer, addr, time.time())
        self._arrived.set()

    async def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def _open(self) -> asyncio.DatagramTransport:
        if self._transport is not None and not self._transport.is_closing():
            return self._transport
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, MULTICAST_HOPS)
            _grow_receive_buffer(sock)
            sock.bind(("::", 0))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise SourceError(f"{self.name}: cannot open a UDP socket: {exc}") from None
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), sock=sock)
        self._transport = transport
        return transport

    async def _static_targets(self) -> list[tuple[Any, ...]]:
        targets: list[tuple[Any, ...]] = []
        for address in self.table.addresses:
            try:
                targets.append(await asyncio.to_thread(resolve, address, self.table.port))
            except (OSError, ValueError) as exc:
                log.warning("%s: cannot resolve %r: %s", self.name, address, exc)
        return targets

    async def _ask_all(self, transport: asyncio.DatagramTransport,
                       targets: list[tuple[Any, ...]]) -> int:
        sent = 0
        sock = transport.get_extra_info("socket")
        for iface in self.table.interfaces:
            try:
                index = socket.if_nametoindex(iface)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            except OSError as exc:
                log.warning("%s: interface %s: %s", self.name, iface, exc)
                continue
            for group in self.table.multicast_groups:
                sent += self._send(transport, (group, self.table.port, 0, index))
        sent += await self._ask(transport, targets)
        return sent

    async def _ask(self, transport: asyncio.DatagramTransport,
                   targets: list[tuple[Any, ...]]) -> int:
        """Unicast requests, in bursts with a pause for the answers to be read."""
        sent = 0
        for i, target in enumerate(targets):
            if i and i % UNICAST_BURST == 0:
                await asyncio.sleep(0.002)
            sent += self._send(transport, target)
        return sent

    def _send(self, transport: asyncio.DatagramTransport, address: tuple[Any, ...]) -> int:
        try:
            transport.sendto(data.REQUEST, address)
        except OSError as exc:
            log.warning("%s: cannot send to %s: %s", self.name, address[0], exc)
            return 0
        return 1

    async def _collect(self, timeout_s: float, awaited: set[str]) -> None:
        """Take answers for `timeout_s`, or until every node in `awaited` answered."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._take_inbox()
            if awaited and awaited <= self._answered:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def _take_inbox(self) -> None:
        inbox, self._inbox = self._inbox, {}
        for node_id, (answer, addr, at) in inbox.items():
            previous = self.known.get(node_id)
            if previous is not None:  # a partial answer keeps what the last one had
                answer.nodeinfo = answer.nodeinfo or previous.answer.nodeinfo
            self.known[node_id] = Known(answer, addr, at)
            self.directory.learn(answer)
            self._answered.add(node_id)

    def _missing(self, round_start: float) -> list[str]:
        recent = round_start - self.table.forget_after_s
        return [node_id for node_id, k in self.known.items()
                if recent <= k.heard_at < round_start]

    def _updates(self, round_start: float, now: float) -> list[NodeUpdate]:
        answered, self._answered = self._answered, set()
        named = {nid: k for nid, k in self.known.items() if k.answer.nodeinfo is not None}
        ids = self.ids.assign(
            Candidate(nid, text(as_dict(k.answer.nodeinfo).get("hostname")))
            for nid, k in named.items())
        updates: list[NodeUpdate] = []
        for node_id, k in named.items():
            if node_id in answered:
                updates.append(self._heard(ids[node_id], k, ids))
            elif now - k.heard_at > self.table.offline_after:
                updates.append(NodeUpdate(node=ids[node_id], online=False))
        for node_id in [n for n, k in self.known.items() if now - k.heard_at > max(
                self.table.forget_after_s, self.table.offline_after) * 10]:
            del self.known[node_id]  # long gone: stop carrying it (its id stays reserved)
        return updates

    def _heard(self, node: str, k: Known, ids: dict[str, str]) -> NodeUpdate:
        answer = k.answer
        assert answer.nodeinfo is not None
        info = data.info_fields(answer.nodeinfo, answer.statistics)
        info.update(public=self.table.public, interval_s=self.table.interval_s)
        if self.table.tags:
            info["tags"] = [*self.table.tags, *info.get("tags", ())]
        report: dict[str, Any] | None = None
        if answer.statistics is not None or answer.neighbours is not None:
            report = {"interval_s": self.table.interval_s,
                      **data.report_fields(answer.statistics, answer.nodeinfo)}
            mediums = data.mesh_interfaces(answer.nodeinfo)
            report["links"] = data.links(answer, mediums, self.directory, ids.get)
        return NodeUpdate(node=node, info=info, online=True, report=report, ts=k.heard_at)


def _grow_receive_buffer(sock: socket.socket) -> None:
    # SO_RCVBUFFORCE passes net.core.rmem_max when allowed (root, CAP_NET_ADMIN)
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    for option in (force, socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            return
        except OSError:
            continue


def resolve(address: str, default_port: int) -> tuple[Any, ...]:
    """An IPv6 socket address for `host`, `host:port`, `[v6]:port` or `fe80::1%iface`."""
    host, port = address.strip(), default_port
    if host.startswith("["):
        end = host.index("]")
        rest, host = host[end + 1:], host[1:end]
        if rest.startswith(":"):
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = int(number)
    infos = socket.getaddrinfo(host, port, socket.AF_INET6, socket.SOCK_DGRAM, 0,
                               socket.AI_V4MAPPED)
    return infos[0][4]


def create_respondd(tables: Sequence[ResponddTable], ctx: BridgeContext) -> list[Source]:
    """A source (one UDP socket) per `[[respondd]]` table."""
    return [ResponddSource(t, ctx) for t in tables]
