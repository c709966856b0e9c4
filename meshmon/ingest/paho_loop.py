"""Drive a paho-mqtt client from the asyncio loop instead of a thread of its own.

paho's external-loop callbacks register the client's socket with the asyncio loop
(epoll: no FD_SETSIZE limit, no thread, no GIL hand-over per message), and `tick()` does
paho's keepalive and reconnects. Only the blocking TCP connect runs in a worker thread.
Used by the collector's MQTT ingest and by the demo's simulated agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 3.0
MAX_PACKETS_PER_READ = 200


class LoopDriver:
    """Drives one paho client from an asyncio loop: sockets registered with the loop
    (epoll, no FD_SETSIZE limit, no thread), keepalive and reconnects in `tick()`.

    Everything except `_connect` (the blocking TCP connect, run in `connect_pool`) runs in
    the loop's thread.
    """

    def __init__(
        self, client: mqtt.Client, loop: asyncio.AbstractEventLoop, connect_pool: Executor,
        name: str, reconnect_delay_s: float = RECONNECT_DELAY_S,
    ) -> None:
        self.client = client
        self.reconnect_delay_s = reconnect_delay_s
        self.name = name
        self._aloop = loop
        self._loop_thread = threading.get_ident()
        self._connect_pool = connect_pool
        self._fd: int | None = None  # the descriptor registered with the loop
        self.dead = False  # killed or stopped: never reconnect
        self._last_attempt = 0.0
        self._connecting = False
        self._last_tls_error = ""
        self._write_scheduled = False
        self._poller = select.poll()
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def connect(self) -> None:
        """Connect in a worker thread (the client must have had `connect_async`)."""
        self._connecting = True
        self._last_attempt = time.monotonic()
        try:
            self._connect_pool.submit(self._connect)
        except RuntimeError:  # pool shut down: we are stopping
            self._connecting = False

    def flush(self) -> None:
        """Write what paho has queued, now."""
        with contextlib.suppress(Exception):
            self.client.loop_write()

    def tick(self) -> None:
        """Keepalive pings; reconnect after a lost connection. Call about once a second."""
        if self.dead:
            return
        if self.client.socket() is not None:
            with contextlib.suppress(Exception):
                self.client.loop_misc()
        elif (not self._connecting
              and time.monotonic() - self._last_attempt > self.reconnect_delay_s):
            self.connect()

    def _connect(self) -> None:
        try:
            if not self.dead:
                self.client.reconnect()
                self._last_tls_error = ""
        except ssl.SSLError as exc:
            # a wrong CA or certificate does not fix itself: say so (once per distinct error),
            # where a refused TCP connect (broker down) stays at debug
            message = str(exc)
            level = logging.WARNING if message != self._last_tls_error else logging.DEBUG
            self._last_tls_error = message
            log.log(level, "%s: TLS connection to %s:%s failed: %s", self.name,
                    self.client.host, self.client.port, message)
        except OSError as exc:
            log.debug("%s: connect failed: %s", self.name, exc)
        finally:
            self._connecting = False

    # -- paho external-loop callbacks ---------------------------------------------------

    def _in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        elif not self._aloop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._aloop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        self._in_loop(self._add_reader, sock)

    def _on_socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        self._in_loop(self._remove, sock)

    def _on_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._in_loop(self._schedule_write, sock)

    def _on_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._in_loop(self._remove_writer, sock)

    # Registrations use the descriptor number: paho may close the socket (in the pool
    # thread) before the hop reaches the loop, and a closed socket has no fileno().
    def _add_reader(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self.dead or fd < 0:
            return
        self.forget_socket()
        self._fd = fd
        self._poller = select.poll()  # poll, not select: descriptors may be above 1024
        self._poller.register(fd, select.POLLIN)
        self._aloop.add_reader(fd, self._read)

    def _schedule_write(self, sock: socket.socket) -> None:
        # Write once per loop iteration instead of registering a writer for every PUBACK:
        # the socket is nearly always writable; only a full send buffer needs the writer.
        if self._write_scheduled or self._fd is None or sock.fileno() != self._fd:
            return
        self._write_scheduled = True
        self._aloop.call_soon(self._write_soon)

    def _write_soon(self) -> None:
        self._write_scheduled = False
        if self._fd is None:
            return
        self._write()
        if self._fd is not None and self.client.want_write():
            self._aloop.add_writer(self._fd, self._write)

    def _remove_writer(self, sock: socket.socket) -> None:
        if self._fd is not None and sock.fileno() in (self._fd, -1):
            self._aloop.remove_writer(self._fd)

    def _remove(self, sock: socket.socket) -> None:
        if sock.fileno() in (self._fd, -1):
            self.forget_socket()

    def forget_socket(self) -> None:
        """Unregister the socket from the loop (before it is closed)."""
        fd, self._fd = self._fd, None
        if fd is not None and not self._aloop.is_closed():
            self._aloop.remove_reader(fd)
            self._aloop.remove_writer(fd)

    def _read(self) -> None:
        # paho reads one packet per call: keep reading while the socket has data, so a
        # backlog costs one loop iteration per batch rather than per message
        fd = self._fd
        try:
            for _ in range(MAX_PACKETS_PER_READ):
                self.client.loop_read()
                if fd is None or self._fd != fd or not self._more_to_read():
                    break
            else:  # let other work run, then go on (TLS-buffered data wakes no reader)
                self._aloop.call_soon(self._read)
        except Exception:
            log.exception("%s: MQTT read failed", self.name)

    def _more_to_read(self) -> bool:
        sock = self.client.socket()
        if sock is None:
            return False
        # TLS: decrypted bytes already buffered in the SSL object wake no reader
        pending = getattr(sock, "pending", None)
        if pending is not None and pending() > 0:
            return True
        return bool(self._poller.poll(0))

    def _write(self) -> None:
        try:
            self.client.loop_write()
        except Exception:
            log.exception("%s: MQTT write failed", self.name)
