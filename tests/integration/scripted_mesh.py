"""A mesh of scripted nodes speaking the v1 contract over real MQTT, and a webhook receiver.

Each `ScriptedNode` is its own paho client with the agent's last will, so a node can lose
power for real: `drop()` closes its TCP connection without DISCONNECT and the broker
publishes the will. `hang()` keeps the connection (keepalives go on) but stops reports:
a hung agent on a router whose radio still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Any

import paho.mqtt.client as paho
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import free_port

LEAVES = [f"l{i}" for i in range(10)]


def backbone_edges() -> list[tuple[str, str]]:
    """gw — r1 — b — 10 leaves (a star plus a chain): b is the leaves' only way out."""
    edges = [("gw", "r1"), ("r1", "b")]
    edges += [("b", leaf) for leaf in LEAVES]
    edges += [(LEAVES[i], LEAVES[i + 1]) for i in range(9)]
    return edges


class ScriptedNode:
    """One node's MQTT connection: retained status + info, a last will, reports."""

    def __init__(self, port: int, node: str, info: dict[str, Any], prefix: str = "meshmon") -> None:
        self.node = node
        self.base = f"{prefix}/v1/node/{node}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"scripted-{node}")
        self.client.will_set(f"{self.base}/status",
                             json.dumps({"v": 1, "node": node, "online": False}), 1, True)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self._publish("status", {"v": 1, "node": node, "online": True, "ts": time.time()}, True)
        self._publish("info", {"v": 1, "node": node, **info}, True)
        self.seq = 0

    def _publish(self, what: str, payload: dict[str, Any], retain: bool = False) -> None:
        info = self.client.publish(f"{self.base}/{what}", json.dumps(payload), 1, retain)
        info.wait_for_publish(5)

    def report(self, links: list[dict[str, Any]], interval_s: float) -> None:
        self.seq += 1
        self.client.publish(f"{self.base}/report", json.dumps({
            "v": 1, "node": self.node, "ts": time.time(), "seq": self.seq,
            "interval_s": interval_s, "links": links,
        }), 1)

    def drop(self) -> None:
        """Power cut: the connection dies without DISCONNECT (the broker sends the will).

        Not loop_stop() first: it joins paho's network thread, which sits in a 1 s select,
        and would block the caller's event loop (the collector's too) that long. Telling
        the thread to end (what loop_stop sets: no reconnect) and killing the socket ends
        it by itself."""
        self.client._thread_terminate = True
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Clean stop (no will)."""
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


class ScriptedMesh:
    """Nodes wired by `edges`, each reporting its live neighbours every `interval_s`."""

    def __init__(self, port: int, edges: list[tuple[str, str]], gateways: set[str],
                 interval_s: float = 1.0, external: frozenset[str] = frozenset()) -> None:
        self.port = port
        self.interval_s = interval_s
        self.gateways = gateways
        self.adj: dict[str, set[str]] = {}
        for a, b in edges:
            self.adj.setdefault(a, set()).add(b)
            self.adj.setdefault(b, set()).add(a)
        self.nodes: dict[str, ScriptedNode] = {}
        self.radio_up: set[str] = set()
        """nodes whose radio works (neighbours list them)"""
        self.reporting: set[str] = set()
        """nodes whose agent sends reports"""
        self.hidden_links: set[tuple[str, str]] = set()
        """(src, dst) pairs src leaves out of its reports"""
        self.external = external
        """nodes with a real agent of their own: only heard by their neighbours here"""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.radio_up.update(self.external)
        for node in sorted(set(self.adj) - self.external):
            await self.revive(node, report=False)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for node in self.nodes.values():
            await asyncio.to_thread(node.close)

    async def revive(self, node: str, report: bool = True) -> None:
        """Connect (again) and report at once."""
        old = self.nodes.pop(node, None)
        if old is not None:
            await asyncio.to_thread(old.close)
        info = {"gateway": node in self.gateways, "interval_s": self.interval_s,
                "owner": {"contact": f"owner-of-{node}@example.org"}, "tags": ["test"]}
        self.nodes[node] = await asyncio.to_thread(ScriptedNode, self.port, node, info)
        self.radio_up.add(node)
        self.reporting.add(node)
        if report:
            self.report(node)

    def drop(self, node: str) -> None:
        """Power cut: last will now, radio gone."""
        self.radio_up.discard(node)
        self.reporting.discard(node)
        self.nodes[node].drop()

    def hang(self, node: str) -> None:
        """The agent stops reporting; connection and radio stay up."""
        self.reporting.discard(node)

    def links_of(self, node: str) -> list[dict[str, Any]]:
        return [
            {"peer": peer, "iface": "wlan0", "kind": "wifi", "signal_dbm": -60,
             "inactive_ms": 40}
            for peer in sorted(self.adj[node])
            if peer in self.radio_up and (node, peer) not in self.hidden_links
        ]

    def report(self, node: str) -> None:
        self.nodes[node].report(self.links_of(node), self.interval_s)

    def report_all(self) -> None:
        for node in sorted(self.reporting):
            self.report(node)

    async def _run(self) -> None:
        while True:
            self.report_all()
            await asyncio.sleep(self.interval_s)


class WebhookReceiver:
    """A real HTTP server that records what webhooks POST (and can be down)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.times: list[float] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.times.append(time.time())
        return web.Response(text="ok")

    def of(self, kind: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.received
                if (kind is None or a.get("kind") == kind)
                and (status is None or a.get("status") == status)]
