"""A respondd responder for tests: real UDP sockets answering `GET nodeinfo statistics
neighbours` the way Gluon's respondd does (one raw-deflate compressed JSON object), and
answers built from a meshviewer snapshot's nodes.

In-process: `Responder([(address, payload), …])` serves each payload on its own socket
from one thread. In a network namespace: `python -m tests.bridge.respondd_responder
--port P --iface IF --answer FILE` joins Gluon's groups on IF and answers there.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUEST = b"GET nodeinfo statistics neighbours"
GROUPS = ("ff02::2:1001", "ff05::2:1001")
"""Gluon's respondd listens on the link-local group of its mesh interfaces and the
site-wide group"""


def deflate(document: dict[str, Any]) -> bytes:
    """Raw deflate (no zlib header), as respondd compresses its answers."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(json.dumps(document).encode()) + packer.flush()


@dataclass
class Request:
    """One request a responder socket received."""

    index: int
    sender: tuple[Any, ...]
    local: str
    """the multicast group it was sent to, or `unicast`"""


@dataclass
class Responder:
    """Sockets that answer requests with fixed payloads, served by one thread."""

    answers: list[tuple[tuple[Any, ...], bytes]]
    """(bind address, payload) per socket: `("::1", 0)` or `("127.0.0.5", 1001)`"""
    groups: tuple[str, ...] = ()
    iface: str | None = None
    """join `groups` on this interface (multicast tests)"""
    requests: list[Request] = field(default_factory=list)
    silent: set[int] = field(default_factory=set)
    """socket indexes that do not answer now"""
    drop_next: dict[int, int] = field(default_factory=dict)
    """socket index → how many of its next requests go unanswered"""
    multicast_answers: int | None = None
    """answer only this many multicast requests (then unicast only); None: all"""

    def __post_init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        for index, (address, _) in enumerate(self.answers):
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            sock.bind(address)
            for group in self.groups if self.iface is not None else ():
                if_index = struct.pack("@I", socket.if_nametoindex(self.iface or ""))
                mreq = socket.inet_pton(socket.AF_INET6, group) + if_index
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            self._sockets.append(sock)
            self._selector.register(sock, selectors.EVENT_READ, index)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="respondd", daemon=True)

    @property
    def addresses(self) -> list[tuple[Any, ...]]:
        """The bound address of each socket (with the port chosen)."""
        return [s.getsockname() for s in self._sockets]

    def start(self) -> Responder:
        """Serve in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets."""
        self._stop.set()
        self._thread.join(5)
        for sock in self._sockets:
            self._selector.unregister(sock)
            sock.close()
        self._selector.close()

    def taken(self) -> list[Request]:
        """The requests received so far (and forget them)."""
        with self._lock:
            out, self.requests = self.requests, []
        return out

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                self._answer(key.fileobj, key.data)  # type: ignore[arg-type]

    def _answer(self, sock: socket.socket, index: int) -> None:
        if sock.family == socket.AF_INET6:
            data, ancillary, _, sender = sock.recvmsg(2048, socket.CMSG_SPACE(20))
            local = "unicast"
            for level, kind, value in ancillary:
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                    destination = socket.inet_ntop(socket.AF_INET6, value[:16])
                    local = destination if value[0] == 0xFF else "unicast"
        else:
            data, sender = sock.recvfrom(2048)
            local = "unicast"
        if data != REQUEST:
            return
        with self._lock:
            self.requests.append(Request(index, sender, local))
            if index in self.silent:
                return
            if local != "unicast" and self.multicast_answers is not None:
                if self.multicast_answers <= 0:
                    return
                self.multicast_answers -= 1
            if self.drop_next.get(index, 0) > 0:
                self.drop_next[index] -= 1
                return
        sock.sendto(self.answers[index][1], sender)


def gluon_answers(snapshot: dict[str, Any], contact: str = "owner@example.org"
                  ) -> dict[str, dict[str, Any]]:
    """A respondd answer (nodeinfo, statistics, neighbours) for each online node of a
    meshviewer snapshot, as the node's Gluon would give it: its links' interface MACs
    become its mesh interfaces, each link its batman-adv neighbour with the TQ it saw."""
    nodes = {n["node_id"]: n for n in snapshot["nodes"]}
    kinds = {"wifi": "wireless", "vpn": "tunnel"}
    ifaces: dict[str, dict[str, list[str]]] = {k: {} for k in nodes}
    neighbours: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in nodes}
    for lk in snapshot["links"]:
        kind = kinds.get(lk["type"], "other")
        for here, addr, there_addr, fraction in (
                (lk["source"], lk["source_addr"], lk["target_addr"], lk["source_tq"]),
                (lk["target"], lk["target_addr"], lk["source_addr"], lk["target_tq"])):
            macs = ifaces[here].setdefault(kind, [])
            if addr not in macs:
                macs.append(addr)
            table = neighbours[here].setdefault(addr, {"neighbours": {}})["neighbours"]
            table[there_addr] = {"tq": round(fraction * 255), "lastseen": 0.52}
    out = {}
    for key, n in nodes.items():
        if not n["is_online"]:
            continue
        nodeinfo: dict[str, Any] = {
            "node_id": key, "hostname": n["hostname"],
            "hardware": {"model": n.get("model", ""), "nproc": n.get("nproc", 1)},
            "software": {"firmware": n["firmware"]},
            "network": {"mac": n["mac"], "mesh": {"bat0": {"interfaces": ifaces[key]}}},
            "owner": {"contact": contact},
        }
        if n.get("location"):
            nodeinfo["location"] = n["location"]
        if n["is_gateway"]:
            nodeinfo["vpn"] = True
        statistics = {"node_id": key, "uptime": 3600.5, "loadavg": n["loadavg"],
                      "rootfs_usage": n["rootfs_usage"],
                      "clients": {"total": n["clients"], "wifi": n["clients"]}}
        out[key] = {"nodeinfo": nodeinfo, "statistics": statistics,
                    "neighbours": {"node_id": key, "batadv": neighbours[key]}}
    return out


def main(argv: list[str] | None = None) -> None:
    """Serve one answer on `--iface` (multicast group joined) until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--iface", required=True)
    parser.add_argument("--answer", type=Path, required=True, help="JSON document to send")
    parser.add_argument("--multicast-answers", type=int, default=None,
                        help="answer only this many multicast requests (default: all)")
    args = parser.parse_args(argv)
    responder = Responder([(("::", args.port), deflate(json.loads(args.answer.read_text())))],
                          groups=GROUPS, iface=args.iface,
                          multicast_answers=args.multicast_answers)
    responder.start()
    print("ready", flush=True)
    while True:  # until killed; say what came in, for the test's log
        for request in responder.taken():
            print(f"request to {request.local} from {request.sender[0]}", flush=True)
        threading.Event().wait(0.05)


if __name__ == "__main__":
    main()
