"""Reports published by a program outside the project (bare paho) and counted point by
point in InfluxDB: the roles' and writers' tests."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests import servers
from tests.collector_process import CollectorProcess

NODES = [f"pub-{i:02d}" for i in range(20)]


class ReportPublisher:
    """A bare paho client (not the project's code) publishing numbered reports, QoS 1: the
    report of round `seq` has the time t0 + seq ms, one series point per (node, seq)."""

    def __init__(self, port: int, t0: float, client_id: str = "roles-publisher",
                 setup: Callable[[paho.Client], None] | None = None) -> None:
        """`setup`: called before connecting (credentials, TLS)."""
        self.t0 = t0
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(200)
        if setup is not None:
            setup(self.client)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent: set[tuple[str, int]] = set()
        """(node, report time in ms since t0) of every report the broker acknowledged"""
        self.seq = 0

    def publish(self, rounds: int, per_s: float = 0.0) -> None:
        """`rounds` reports of every node; at most `per_s` reports a second if given."""
        started = time.monotonic()
        first = self.seq
        pending = []
        for _ in range(rounds):
            self.seq += 1
            for node in NODES:
                payload = json.dumps({"v": 1, "node": node, "ts": self.t0 + self.seq / 1000,
                                      "seq": self.seq, "interval_s": 30, "links": []})
                info = self.client.publish(f"meshmon/v1/node/{node}/report", payload, 1)
                pending.append((info, (node, self.seq)))
            if per_s:
                ahead = (self.seq - first) * len(NODES) / per_s - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        for info, key in pending:
            info.wait_for_publish(10)
            assert info.is_published()
            self.sent.add(key)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored(influx: servers.Server, db: str, t0: float) -> list[tuple[str, int]]:
    """(node, ms since t0) of every `node` point of the published nodes: its time is the
    report's `ts` (checked against the report's seq)."""
    query = urllib.parse.urlencode({
        "db": db, "epoch": "ms", "q": "SELECT seq FROM node WHERE node =~ /^pub-/ GROUP BY node"})
    with urllib.request.urlopen(f"{influx.url}/query?{query}", timeout=10) as response:
        result = json.loads(response.read())
    points: list[tuple[str, int]] = []
    for series in result["results"][0].get("series", []):
        node = series["tags"]["node"]
        for ms, seq in series["values"]:
            assert ms - int(t0 * 1000) == seq, (node, ms, seq)
            points.append((node, seq))
    return points


def received(writer: CollectorProcess) -> int:
    """Reports this writer decoded (its /metrics)."""
    for line in writer.metrics().splitlines():
        if line.startswith("meshmon_reports_received_total"):
            return int(float(line.split()[-1]))
    return 0


def subscribed(writers: list[CollectorProcess]) -> bool:
    """Whether every writer is connected to the broker: its subscriptions went out before
    (a report published earlier would find no one of the group and be dropped)."""
    for writer in writers:
        status, body = writer.get("/healthz")
        if status != 200 or not json.loads(body)["mqtt_connected"]:
            return False
    return True


def standing_in_for(writer: CollectorProcess) -> list[str]:
    """The dead writers whose sessions this writer holds (its /healthz)."""
    status, body = writer.get("/healthz")
    assert status == 200, (status, body)
    held: list[str] = json.loads(body)["standing_in_for"]
    return held


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until `check()` (blocking HTTP: run in a thread) is true."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
