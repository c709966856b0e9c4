"""Agents that publish numbered reports at a known rate, and counting what arrived.

Each node is a real agent `Publisher` (`meshmon_agent.publisher`: QoS 1, its own bounded
queue, one report in flight, in order across broker outages) sending the real report of
`tests/data/wire/` with its own `seq` and `ts = t0 + seq / rate`: a stored sample's time
gives back its seq, in SQLite (the node's history samples, with their `seq`) as in
InfluxDB (`node.seq`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshmon_agent.config import MqttSettings
from meshmon_agent.publisher import Publisher

from meshmon.history import query
from meshmon.history.recorder import pending_buckets
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import HistoryTables
from meshmon.model.wire import Report
from meshmon.sinks.lineprotocol import report_lines

DATA = Path(__file__).parents[1] / "data" / "wire"
TEMPLATE: dict[str, Any] = json.loads((DATA / "report-lr-test-1.json").read_text())


def report_of(node: str, seq: int, ts: float, interval_s: float) -> dict[str, Any]:
    """The real report as `node`'s number `seq`."""
    return dict(TEMPLATE, node=node, seq=seq, ts=ts, interval_s=interval_s)


POINTS_PER_REPORT = len(report_lines(Report.model_validate(report_of("n", 0, 1.0, 1.0)), 1.0,
                                     [None] * len(TEMPLATE["links"])))
"""InfluxDB points one report makes: node, one per link, iface and radio"""
SAMPLES_PER_REPORT = 1 + len(TEMPLATE.get("ifaces", [])) + len(TEMPLATE.get("radios", [])) + len(
    TEMPLATE["links"])
"""history samples one report makes at most: the node's, one per interface, radio and
resolved link"""


@dataclass
class NumberedAgents:
    """`nodes` agents, each publishing `rate` reports a second from `start()` to `stop()`."""

    port: int
    nodes: list[str]
    rate: float
    queue_max: int = 100_000
    t0: float = 0.0
    published: Counter[str] = field(default_factory=Counter)
    """reports handed to each node's Publisher (seq 0 … n-1)"""
    _publishers: dict[str, Publisher] = field(default_factory=dict)
    _dead: list[Publisher] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.nodes = list(self.nodes)
        for node in self.nodes:
            settings = MqttSettings(port=self.port, client_id=f"chaos-{node}",
                                    queue_max=self.queue_max, reconnect_min_s=1,
                                    reconnect_max_s=2)
            publisher = Publisher(settings, node)
            publisher.start()
            self._publishers[node] = publisher
        deadline = time.monotonic() + 15
        while not all(p.connected for p in self._publishers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("agents did not connect")
            time.sleep(0.02)
        self.t0 = time.time()
        self._thread = threading.Thread(target=self._run, name="numbered-agents", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            due = self.t0 + seq / self.rate
            wait = due - time.time()
            if wait > 0 and self._stop.wait(wait):
                break
            for node in list(self.nodes):
                publisher = self._publishers.get(node)
                if publisher is None:  # killed meanwhile
                    continue
                publisher.publish_report(report_of(node, seq, due, 1.0 / self.rate))
                self.published[node] += 1
            seq += 1

    def stop_publishing(self) -> None:
        """No new reports; what is queued still goes out."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def wait_sent(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every queued report."""
        deadline = time.monotonic() + timeout
        return all(p.wait_idle(max(0.0, deadline - time.monotonic()))
                   for p in self._publishers.values())

    def kill_one(self, node: str) -> None:
        """`node` stops publishing, its last reports go out, then its agent dies without a
        word (the broker sends its last will: `online: false`)."""
        self.nodes = [n for n in self.nodes if n != node]
        publisher = self._publishers.pop(node)
        publisher.wait_idle(10)
        publisher.kill()
        self._dead.append(publisher)

    def close(self) -> None:
        self.stop_publishing()
        for publisher in self._publishers.values():
            publisher.stop()

    @property
    def dropped_by_agents(self) -> int:
        """Reports the agents' own queues dropped (counted by the agent)."""
        return sum(p.dropped for p in [*self._publishers.values(), *self._dead])

    def seq_of(self, ts: float) -> int:
        return round((ts - self.t0) * self.rate)

    def ts_of(self, seq: int) -> float:
        return self.t0 + seq / self.rate

    @property
    def total(self) -> int:
        return sum(self.published.values())


@dataclass
class Tally:
    """Reports found stored, by node and seq, in the order they were stored."""

    order: dict[str, list[int]]

    @property
    def stored(self) -> int:
        """Distinct (node, seq) stored."""
        return sum(len(set(seqs)) for seqs in self.order.values())

    @property
    def duplicates(self) -> int:
        """Stored more than once (QoS 1 may deliver twice)."""
        return sum(len(seqs) - len(set(seqs)) for seqs in self.order.values())

    def missing(self, agents: NumberedAgents) -> dict[str, list[int]]:
        """Published seqs not stored, by node."""
        out = {}
        for node in agents.published:
            gone = sorted(set(range(agents.published[node])) - set(self.order.get(node, [])))
            if gone:
                out[node] = gone
        return out

    def out_of_order(self) -> int:
        """Stored samples whose seq is lower than one stored before them (same node)."""
        count = 0
        for seqs in self.order.values():
            highest = -1
            for s in seqs:
                if s < highest:
                    count += 1
                highest = max(highest, s)
        return count


def sqlite_tally(path: Path, agents: NumberedAgents) -> Tally:
    """Node samples in the collector's SQLite file (its history), by node and seq, in time
    order (the sample time must be the one the seq was published with; a sample stored
    twice is kept once, at its time)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = HistoryTables(conn)
        pending = pending_buckets(tables)  # the running collector's open buckets
        rows = [(node, s["seq"], s["ts"]) for node in agents.published
                for s in query.samples(tables, pending, SeriesKey("node", node))]
    finally:
        conn.close()
    order: dict[str, list[int]] = {}
    for node, seq, ts in rows:
        assert agents.seq_of(ts) == seq, (node, seq, ts)
        order.setdefault(node, []).append(int(seq))
    return Tally(order)


def influx_query(url: str, db: str, query: str) -> list[list[Any]]:
    """The rows of the first series an InfluxQL query gives ([] when none)."""
    params = urllib.parse.urlencode({"db": db, "q": query, "epoch": "ns"})
    with urllib.request.urlopen(f"{url}/query?{params}", timeout=30) as response:
        result = json.loads(response.read())["results"][0]
    series = result.get("series") or []
    return [row for s in series for row in s["values"]]


def influx_tally(url: str, db: str, agents: NumberedAgents) -> Tally:
    """Node points in InfluxDB by node and seq (time order)."""
    order: dict[str, list[int]] = {}
    for node in agents.nodes:
        rows = influx_query(url, db, f"SELECT seq FROM node WHERE node = '{node}'")
        order[node] = [int(seq) for _t, seq in rows]
    return Tally(order)


INFLUX_COUNTS = {"node": "seq", "link": "inactive_ms", "iface": "rx_bytes",
                 "radio": "freq_mhz", "event": "summary"}
"""a field every point of each measurement has: counting it counts the points"""


def influx_points(url: str, db: str) -> int:
    """All points meshmon wrote, over every measurement."""
    total = 0
    for measurement, field_name in INFLUX_COUNTS.items():
        rows = influx_query(url, db, f"SELECT count({field_name}) FROM {measurement}")
        total += int(rows[0][1]) if rows else 0
    return total
