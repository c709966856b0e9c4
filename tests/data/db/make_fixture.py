"""Make `meshmon-c21697b.sqlite`: a collector database written by one release of meshmon.

Run it with the meshmon of the release the file should come from (the checkout on
PYTHONPATH is imported, not this worktree's code), e.g. for the release before schema
versions (commit c21697b):

    git worktree add /tmp/meshmon-c21697b c21697b
    PYTHONPATH=/tmp/meshmon-c21697b .venv/bin/python tests/data/db/make_fixture.py \
        tests/data/db/meshmon-c21697b.sqlite

It starts a real collector (`Service`: embedded MQTT broker, SQLite, HTTP) and drives it
only through its public surfaces, the way deployments do:

- five nodes over MQTT, each its own client with the agent's last will: retained status
  and info, then three rounds of reports (wifi links with signal, SNR, rates and chains,
  a batman link with TQ) -> node and link state, node and link samples, online events;
- maintainer silences over the HTTP API: one active for 30 days, one ended early, one
  that runs out by itself;
- leaf2 loses power and comes back -> an outage alert and its recovery;
- then b, leaf1 and leaf2 lose power -> an outage with cause b that stays open (saved
  engine state), its alert in the log (and leaf2, down a second time, is flapping);
- every notification goes to a webhook that is down, so the deliveries stay pending.

Next to the database it writes `<name>.json`: what the collector answered through its
APIs and stores just before it stopped (nodes, links, samples, events, outages, alert log,
silences, pending deliveries). Tests compare what the new code reads with that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

import meshmon
from meshmon.config import Config
from meshmon.service import Service

TOKEN = "fixture-maintainer-token"
PREFIX = "meshmon"
INTERVAL_S = 60.0
"""the nodes' report interval: they count as online for 3 intervals after the last one"""
EDGES = [("gw", "r1"), ("r1", "b"), ("b", "leaf1"), ("b", "leaf2"), ("leaf1", "leaf2")]
NODES = ["gw", "r1", "b", "leaf1", "leaf2"]
LOCATIONS = {
    "gw": (52.5200, 13.4050), "r1": (52.5231, 13.4112), "b": (52.5262, 13.4170),
    "leaf1": (52.5281, 13.4215), "leaf2": (52.5249, 13.4233),
}  # fmt: skip


def mac(node: str, radio: int) -> str:
    return f"02:{NODES.index(node) + 1:02x}:00:00:00:{radio:02x}"


def info(node: str) -> dict[str, Any]:
    lat, lon = LOCATIONS[node]
    return {
        "v": 1, "node": node, "hostname": f"{node}-roof", "model": "Ubiquiti NanoStation M5",
        "firmware": "OpenWrt 23.05.2", "agent": "meshmon-agent 0.1.0",
        "location": {"lat": lat, "lon": lon, "alt_m": 30.0}, "macs": [mac(node, 1), mac(node, 2)],
        "gateway": node == "gw", "owner": {"contact": f"owner-of-{node}@example.org"},
        "public": node != "leaf2", "tags": ["backbone"] if node in ("gw", "r1", "b") else [],
    }  # fmt: skip


def report(node: str, seq: int, up: set[str]) -> dict[str, Any]:
    links = []
    for a, b in EDGES:
        if node not in (a, b):
            continue
        peer = b if a == node else a
        if peer not in up:
            continue
        signal = -58 - 3 * NODES.index(peer) - seq
        links.append({
            "peer": peer, "peer_mac": mac(peer, 1), "iface": "wlan0", "kind": "wifi",
            "signal_dbm": signal, "signal_avg_dbm": signal + 1,
            "chains_dbm": [signal - 2, signal - 3],
            "noise_dbm": -95, "snr_db": 95 + signal, "tx_rate_mbps": 144.4, "rx_rate_mbps": 130.0,
            "expected_tput_mbps": 62.5, "tx_retries": 10 * seq, "tx_failed": seq,
            "inactive_ms": 40,
        })  # fmt: skip
        if {node, peer} == {"leaf1", "leaf2"}:
            links.append({"peer": peer, "peer_mac": mac(peer, 2), "iface": "bat0",
                          "kind": "batman", "tq": 230 - seq})
    return {
        "v": 1, "node": node, "ts": time.time(), "seq": seq, "interval_s": INTERVAL_S,
        "sys": {"uptime_s": 86_400 + 60 * seq, "load": [0.31, 0.22, 0.18],
                "mem_total_kb": 60_000, "mem_avail_kb": 31_000 - seq, "rootfs_used_pct": 41},
        "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": 10_000 * seq,
                    "tx_bytes": 20_000 * seq, "rx_packets": 90 * seq, "tx_packets": 80 * seq,
                    "rx_errors": 0, "tx_errors": 1}],
        "radios": [{"iface": "wlan0", "freq_mhz": 5180, "channel": 36, "width_mhz": 40,
                    "noise_dbm": -95, "txpower_dbm": 20, "busy_pct": 23, "clients": 2}],
        "clients": 2,
        "links": links,
    }  # fmt: skip


class Node:
    """One node's MQTT client, with the agent's last will."""

    def __init__(self, port: int, node: str) -> None:
        self.node = node
        self.base = f"{PREFIX}/v1/node/{node}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fixture-{node}")
        self.client.will_set(f"{self.base}/status",
                             json.dumps({"v": 1, "node": node, "online": False}), 1, True)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def publish(self, what: str, payload: dict[str, Any], retain: bool = False) -> None:
        message = self.client.publish(f"{self.base}/{what}", json.dumps(payload), 1, retain)
        message.wait_for_publish(5)
        assert message.is_published(), f"no PUBACK for {self.node}/{what}"

    def status(self, online: bool) -> None:
        self.publish("status", {"v": 1, "node": self.node, "online": online, "ts": time.time()},
                     retain=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def closed_port() -> int:
    """A loopback port nobody listens on (the webhook that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"make_fixture: {what} not reached within {timeout}s")
        await asyncio.sleep(0.1)


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with aiohttp.ClientSession() as s, s.request(
            method, self.base + path, json=body, headers=self.headers
        ) as r:
            assert r.status == status, (method, path, r.status, await r.text())
            return await r.json()


async def make(out: Path) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    config = Config.model_validate({
        "mqtt": {"broker": "embedded", "embedded": {"port": 0}},
        "http": {"host": "127.0.0.1", "port": 0, "admin_token": TOKEN},
        "storage": {"path": str(out), "flush_interval_s": 0.2},
        "alerts": {"retry_max_s": 2},
        "notifiers": [{"name": "hook", "type": "webhook", "timeout_s": 1,
                       "url": f"http://127.0.0.1:{closed_port()}/hook"}],
    })  # fmt: skip
    service = Service(config)
    await service.start()
    assert service.broker is not None and service.store is not None
    api = Api(service.http_url)
    store, alert_store = service.store, service.alerting.store
    nodes = {n: await asyncio.to_thread(Node, service.broker.port, n) for n in NODES}
    up = set(NODES)
    seq = dict.fromkeys(NODES, 0)

    def report_round() -> None:
        for n in sorted(up):
            seq[n] += 1
            nodes[n].publish("report", report(n, seq[n], up))

    try:
        for n in NODES:  # (paho waits for the PUBACK: off the loop that runs the broker)
            await asyncio.to_thread(nodes[n].status, True)
            await asyncio.to_thread(nodes[n].publish, "info", info(n), True)
        for _ in range(3):
            await asyncio.to_thread(report_round)
            await asyncio.sleep(0.3)

        async def all_online() -> bool:
            topo = service.topology
            return sum(n.online for n in topo.nodes.values()) == 5 and len(topo.links) >= 10

        await until(all_online, "five nodes online with their links")

        # silences: active (30 days), ended early, and one that runs out by itself
        await api.call("POST", "/api/v1/silences", {
            "node": "hill-*", "duration_s": 30 * 86_400, "reason": "antenna swap on the hill",
            "created_by": "fixture"}, status=201)  # fmt: skip
        early = await api.call("POST", "/api/v1/silences", {
            "node": "r1", "tag": "backbone", "duration_s": 3600, "reason": "cable check",
            "created_by": "fixture"}, status=201)  # fmt: skip
        await api.call("DELETE", f"/api/v1/silences/{early['id']}")
        await api.call("POST", "/api/v1/silences", {
            "node": "gw", "duration_s": 1, "reason": "reboot", "created_by": "fixture"},
            status=201)  # fmt: skip

        # leaf2 loses power and comes back: an outage and its recovery
        up.discard("leaf2")
        await asyncio.to_thread(nodes["leaf2"].status, False)

        async def alerts(count: int) -> bool:
            return len((await api.call("GET", "/api/v1/alerts"))["log"]) >= count

        await until(lambda: alerts(1), "leaf2 outage alert")
        up.add("leaf2")
        await asyncio.to_thread(nodes["leaf2"].status, True)
        await asyncio.to_thread(report_round)
        await until(lambda: alerts(2), "leaf2 recovery alert")

        # b and the leaves behind it lose power: an outage that stays open
        for n in ("b", "leaf1", "leaf2"):
            up.discard(n)
            await asyncio.to_thread(nodes[n].status, False)
        await asyncio.to_thread(report_round)
        await until(lambda: alerts(3), "b outage alert")

        async def failed_twice() -> bool:
            # in order: the first one, failing, holds the others back
            logged = (await api.call("GET", "/api/v1/alerts"))["log"]
            pending = await alert_store.pending_deliveries()
            return len(pending) == len(logged) and pending[0].attempts >= 2

        await until(failed_twice, "every alert's delivery pending, the first tried twice")
        await asyncio.sleep(1.5)  # the engine state and the samples are saved
        await store.flush()
        expected = {
            "nodes": await api.call("GET", "/api/v1/nodes"),
            "links": await api.call("GET", "/api/v1/links"),
            "outages": await api.call("GET", "/api/v1/outages"),
            "alerts": (await api.call("GET", "/api/v1/alerts"))["log"],
            "silences": await api.call("GET", "/api/v1/silences?all=1"),
            "node_history": {n: await store.node_history(n, 0) for n in NODES},
            "link_history": {f"{a}>{b}": await store.link_history(a, b, 0)
                             for a, b in EDGES + [(b, a) for a, b in EDGES]},
            "events": await store.events(0),
            "pending_deliveries": [
                {"id": p.id, "notifier": p.notifier, "alert_id": p.payload["id"],
                 "status": p.payload["status"], "attempts": p.attempts}
                for p in await alert_store.pending_deliveries()
            ],
        }
    finally:
        for node in nodes.values():
            await asyncio.to_thread(node.close)
        await service.stop()
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .sqlite file to write")
    args = parser.parse_args()
    source = Path(meshmon.__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "meshmon"],
                           check=True, capture_output=True, text=True).stdout.strip()
    if dirty:
        sys.exit(f"make_fixture: {source}/meshmon has uncommitted changes; use a clean checkout")
    expected = asyncio.run(make(args.out))
    made_at = time.time()
    manifest = {"commit": commit, "made_at": made_at, "token": TOKEN, **expected}
    args.out.with_suffix(".json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"{args.out}: {args.out.stat().st_size} bytes, made by meshmon {commit[:7]}")


if __name__ == "__main__":
    main()
