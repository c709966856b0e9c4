"""Reading routing daemons' local interfaces: an HTTP URL (olsrd's info plugins) and
babeld's local configuration socket (TCP `[::1]:PORT`, `HOST:PORT` or a UNIX socket path)."""

from __future__ import annotations

import socket
import urllib.request

MAX_ANSWER_BYTES = 4 * 1024 * 1024


def http_get(url: str, timeout_s: float) -> str:
    """The body of a GET (any status olsrd sends); raises OSError when it cannot be read."""
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:
        return str(answer.read(MAX_ANSWER_BYTES).decode("utf-8", "replace"))


def _connect(address: str, timeout_s: float) -> socket.socket:
    if address.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        sock.connect(address)
        return sock
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise OSError(f"babel_socket {address!r} is not HOST:PORT, [::1]:PORT or a path")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)


def babel_dump(address: str, timeout_s: float) -> str:
    """babeld's answer to `dump` (the lines up to its closing `ok`); raises OSError."""
    with _connect(address, timeout_s) as sock:
        sock.sendall(b"dump\nquit\n")
        chunks: list[bytes] = []
        size = 0
        while size < MAX_ANSWER_BYTES:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
