"""Load generation for benchmarks: a synthetic mesh and processes that publish its reports.

The mesh: N nodes at random positions, each linked to its 5 nearest neighbours (by
peer_mac, so the collector's MAC resolution is on the hot path). Each publisher process
owns a slice of the nodes and one paho client, and publishes pre-built report payloads at
QoS 1 with `ts` = the publish time, so the collector can measure publish-to-stored lag.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from scipy.spatial import cKDTree

LINKS_PER_NODE = 5
MAX_UNACKED = 20_000


@dataclass
class Mesh:
    ids: list[str]
    neighbours: np.ndarray  # (N, 5) indices

    @property
    def undirected_links(self) -> int:
        pairs = {(min(a, b), max(a, b)) for a, row in enumerate(self.neighbours) for b in row}
        return len(pairs)


def build_mesh(n: int, seed: int = 7) -> Mesh:
    rng = np.random.default_rng(seed)
    pts = rng.random((n, 2))
    _, idx = cKDTree(pts).query(pts, k=LINKS_PER_NODE + 1)
    return Mesh([f"n{i:05d}" for i in range(n)], idx[:, 1:])


def mac_of(i: int) -> str:
    b = i.to_bytes(4, "big")
    return "02:00:" + ":".join(f"{x:02x}" for x in b)


def info_payload(mesh: Mesh, i: int) -> bytes:
    return json.dumps({"v": 1, "node": mesh.ids[i], "hostname": mesh.ids[i],
                       "macs": [mac_of(i)], "gateway": i % 500 == 0,
                       "interval_s": 30}).encode()


def report_parts(mesh: Mesh, i: int) -> tuple[str, str]:
    """The report JSON split around `ts`/`seq`, so publishing only formats two numbers."""
    links = []
    for j, peer in enumerate(mesh.neighbours[i]):
        links.append({"peer_mac": mac_of(int(peer)), "iface": "wlan0", "kind": "wifi",
                      "signal_dbm": -55 - j * 3, "signal_avg_dbm": -56 - j * 3,
                      "chains_dbm": [-57 - j * 3, -59 - j * 3], "tx_rate_mbps": 144.4,
                      "rx_rate_mbps": 130.0, "expected_tput_mbps": 48.2, "tx_retries": 10 + j,
                      "tx_failed": j, "inactive_ms": 40 * j})
    tail = json.dumps({"interval_s": 30, "clients": i % 12,
                       "sys": {"uptime_s": 86400 + i, "load": [0.1, 0.2, 0.3],
                               "mem_total_kb": 124000, "mem_avail_kb": 60000},
                       "links": links})
    return '{"v":1,"node":"' + mesh.ids[i] + '",', "," + tail[1:]


def _publisher(port: int, mesh_n: int, lo: int, hi: int, rate: float, seconds: float,
               prefix: str, counter: mp.Value) -> None:  # type: ignore[valid-type]
    mesh = build_mesh(mesh_n)
    parts = [report_parts(mesh, i) for i in range(lo, hi)]
    topics = [f"{prefix}/v1/node/{mesh.ids[i]}/report" for i in range(lo, hi)]
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{lo}")
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    acked = 0

    def on_publish(*_args: object) -> None:
        nonlocal acked
        acked += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.monotonic()
    sent = 0
    seq = 0
    last: paho.MQTTMessageInfo | None = None
    chunk = 200
    while time.monotonic() - start < seconds:
        for _ in range(chunk):
            k = sent % len(parts)
            if k == 0:
                seq += 1
            head, tail = parts[k]
            payload = f'{head}"ts":{time.time():.4f},"seq":{seq}{tail}'
            last = client.publish(topics[k], payload, qos=1)
            sent += 1
        while sent - acked > MAX_UNACKED:  # message ids are 16 bit: keep them unique
            time.sleep(0.002)
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    assert last is not None
    # count only what the broker acknowledged: wait for the last PUBACK (sent in order)
    last.wait_for_publish(120)
    with counter.get_lock():
        counter.value += sent if last.is_published() else 0
    client.disconnect()
    client.loop_stop()


def publish_infos(port: int, mesh: Mesh, prefix: str) -> None:
    """Retained info for every node, so links resolve by MAC."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-info")
    client.max_inflight_messages_set(2000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    last = None
    for i in range(len(mesh.ids)):
        last = client.publish(f"{prefix}/v1/node/{mesh.ids[i]}/info", info_payload(mesh, i),
                              qos=1, retain=True)
    if last is not None:
        last.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def run_publishers(port: int, n: int, rate: float, seconds: float, procs: int = 2,
                   prefix: str = "meshmon") -> int:
    """Publish reports for `seconds` at `rate` per second in total (0 = as fast as possible)."""
    ctx = mp.get_context("fork")
    counter = ctx.Value("l", 0)
    bounds = [(n * k // procs, n * (k + 1) // procs) for k in range(procs)]
    workers = [
        ctx.Process(target=_publisher,
                    args=(port, n, lo, hi, rate / procs if rate else 0, seconds, prefix, counter))
        for lo, hi in bounds
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 120)
        if w.is_alive():
            w.kill()
    return int(counter.value)


def subscribe_session(port: int, client_id: str, prefix: str) -> None:
    """Create a persistent session subscribed to the reports, then leave: the broker queues."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(f"{prefix}/v1/node/+/report", qos=1)[1]
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()


def bare_drain(port: int, client_id: str, expected: int, timeout: float) -> tuple[int, float]:
    """Reconnect a persistent session and receive (json.loads) the queued reports.

    Returns (count, seconds from the first to the last message)."""
    count = 0
    first = last = 0.0

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        nonlocal count, first, last
        json.loads(msg.payload)
        now = time.monotonic()
        if count == 0:
            first = now
        last = now
        count += 1

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    deadline = time.monotonic() + timeout
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        if count and time.monotonic() - last > 10:
            break  # nothing more is coming
    client.disconnect()
    client.loop_stop()
    return count, last - first
