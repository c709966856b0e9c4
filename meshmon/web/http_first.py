"""HTTP before ingest: while a request is on its way, the reports' slices wait.

From its connection to its answer a request takes about six turns of the event loop
(accept, the connection's set-up, its protocol, the bytes read, the handler, the
answer). While a backlog of reports drains, every turn also runs one slice of reports
(8 ms of work, twice that when the CPU is scarce), so an answer took ~100 ms even when
nothing else held the loop. `HttpFirst` tells the drain to wait while a request is
under way — from the moment its connection waits to be accepted (the listening socket
is readable) until its handler has answered — and the turns in between run at once. A
slice under way ends within about 2 ms when a connection comes (`knocking`).

Bounds keep ingest going whatever HTTP does: the drain waits at most `HOLD_MAX_S` at a
time (then one slice runs), at most `SHARE_MAX` of each second, and a connection that
sends no request holds it at most `NEW_CONNECTION_S`. A streamed answer (the
installer's live view) stops holding when its headers are sent. A request on a
kept-alive connection is seen from its handler on (its first two turns still run a
slice each). The collector's tick waits too, at most `HOLD_MAX_S` (`after_answers`).
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Callable, Iterable

from aiohttp import web

from meshmon.web.app import Handler

HOLD_MAX_S = 0.05
"""the drain waits for HTTP at most this long in a row; then a slice runs"""
KNOCK_CHECK_S = 0.002
"""between the batches of a slice, the listening sockets are looked at no more often
than this: the look is a system call, and the loop's thread gives up the GIL for it
(looked at after every batch, the loop's thread spent 15 % of a drain getting it back)"""
NEW_CONNECTION_S = 0.05
"""a connection accepted (or waiting to be) holds the drain at most this long before
its request reaches a handler"""
ANSWER_RECHECK_S = 0.002
"""`after_answers` looks again this often"""
SHARE_MAX = 0.5
"""the drain waits for HTTP at most this share of each `WINDOW_S`: a flood of requests
(a busy public map, or someone hammering it) cannot stop ingest"""
WINDOW_S = 1.0


class HttpFirst:
    """Whether the drain should wait for HTTP now (`holds`), fed by the site and the
    middleware below."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 hold_max_s: float = HOLD_MAX_S,
                 new_connection_s: float = NEW_CONNECTION_S,
                 share_max: float = SHARE_MAX) -> None:
        self._clock = clock
        self._hold_max_s = hold_max_s
        self._new_connection_s = new_connection_s
        self._share_max_s = share_max * WINDOW_S
        self._window_start = 0.0
        self._held_in_window = 0.0
        """time the drain waited for HTTP since `_window_start`"""
        self._held_at: float | None = None
        """the last `holds` said wait, at this time (its wait counts up to the next)"""
        self._answering: set[int] = set()
        """requests (ids) whose handler runs and has not answered"""
        self._connection_until = 0.0
        """a new connection holds the drain until then, or until its request starts"""
        self._since: float | None = None
        """when the current wait began"""
        self._forced = False
        """the last wait ran out (`hold_max_s`): this slice runs whole"""
        self._next_look = 0.0
        """`knocking` looks at the listening sockets again from then on"""
        self._listening = select.poll()
        self._listening_fds: list[int] = []
        self.waits = 0
        """times the drain waited for HTTP (a wait of several re-checks counts once)"""
        self.refused = 0
        """times HTTP was under way but the drain went on: it had waited its share"""

    def listen(self, sockets: Iterable[socket.socket]) -> None:
        """Watch these listening sockets: one readable has a connection to accept."""
        for sock in sockets:
            fd = sock.fileno()
            self._listening.register(fd, select.POLLIN)
            self._listening_fds.append(fd)

    def unlisten(self) -> None:
        """The site stopped: its sockets are closed (their numbers may be reused)."""
        for fd in self._listening_fds:
            self._listening.unregister(fd)
        self._listening_fds.clear()

    def opened(self) -> None:
        """A connection was accepted: it holds the drain until its request starts."""
        self._connection_until = self._clock() + self._new_connection_s

    def started(self, request: object) -> None:
        """A request reached its handler (the drain waits until it is answered)."""
        self._answering.add(id(request))
        self._connection_until = 0.0

    def answered(self, request: object) -> None:
        """Its answer is on its way (sent, or its headers for a streamed one)."""
        self._answering.discard(id(request))

    def answering(self) -> bool:
        """Whether a request is under way: its handler runs, or a connection accepted has
        not reached one yet (read only: the drain's waits are `holds`')."""
        return self._under_way(self._clock())

    def _under_way(self, now: float) -> bool:
        return bool(self._answering) or now < self._connection_until

    async def after_answers(self, max_wait_s: float = HOLD_MAX_S) -> float:
        """Wait while a request is under way, at most `max_wait_s`; how long it waited.
        The collector's tick waits so: its work (the degraded-link detector judges up to
        20 ms of samples) would otherwise stretch the answers under way."""
        start = time.monotonic()
        waited = 0.0
        while waited < max_wait_s and self.answering():
            await asyncio.sleep(ANSWER_RECHECK_S)
            waited = time.monotonic() - start
        return waited

    def holds(self) -> bool:
        """True: HTTP is under way, the next slice should wait (ask again shortly)."""
        now = self._clock()
        self._forced = False
        self._next_look = now + KNOCK_CHECK_S  # (it looks now)
        if now - self._window_start >= WINDOW_S:
            self._window_start, self._held_in_window = now, 0.0
        if self._held_at is not None:
            self._held_in_window += now - self._held_at
            self._held_at = None
        busy = self._under_way(now) or self._knocked(now)
        if not busy:
            self._since = None
            return False
        if self._held_in_window >= self._share_max_s:
            self._since = None
            self._forced = True  # this slice runs whole
            self.refused += 1
            return False
        if self._since is None:
            self._since = now
            self.waits += 1
        elif now - self._since >= self._hold_max_s:
            self._since = None  # one slice now; HTTP may hold again after it
            self._forced = True
            return False
        self._held_at = now
        return True

    def knocking(self) -> bool:
        """Between the batches of a slice: True when a connection waits to be accepted
        (the slice should end now), unless the slice runs because a wait ran out."""
        if self._forced:
            return False
        now = self._clock()
        if now < self._next_look:
            return False
        self._next_look = now + KNOCK_CHECK_S
        return self._knocked(now)

    def _knocked(self, now: float) -> bool:
        if not self._listening_fds or not any(
                events & select.POLLIN for _, events in self._listening.poll(0)):
            return False
        self._connection_until = now + self._new_connection_s
        return True


HTTP_FIRST: web.AppKey[HttpFirst] = web.AppKey("http_first", HttpFirst)


@web.middleware
async def http_first_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Mark the request under way while its handler runs (the drain waits)."""
    gate = request.app[HTTP_FIRST]
    gate.started(request)
    try:
        return await handler(request)
    finally:
        gate.answered(request)


async def _headers_sent(request: web.Request, _response: web.StreamResponse) -> None:
    # a streamed answer (server-sent events) runs its handler for minutes: it stops
    # holding the drain once its headers are out
    request.app[HTTP_FIRST].answered(request)


def install(app: web.Application, gate: HttpFirst) -> None:
    """Give `app` the gate: its middleware first, and the prepare signal."""
    app[HTTP_FIRST] = gate
    app.middlewares.insert(0, http_first_middleware)
    app.on_response_prepare.append(_headers_sent)


class HttpFirstSite(web.BaseSite):
    """`web.TCPSite` whose connections tell the gate they were accepted."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int,
                 gate: HttpFirst) -> None:
        super().__init__(runner)
        self._host, self._port, self._gate = host, port, gate

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def sockets(self) -> list[socket.socket]:
        server = self._server
        return list(getattr(server, "sockets", None) or [])

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        gate = self._gate

        def connection() -> asyncio.Protocol:
            gate.opened()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(connection, self._host, self._port)
        gate.listen(self.sockets)

    async def stop(self) -> None:
        self._gate.unlisten()
        await super().stop()
