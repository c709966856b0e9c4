"""The four chaos cases, each a function that sets up real servers on loopback, runs agents
publishing numbered reports through the trouble, stops everything it started and returns
an `Outcome`: published / stored / counted as dropped / lost without a count.

(a) `collector_killed`: `meshmon serve` SIGKILLed and restarted (persistent session).
(b) `influx_down`: InfluxDB 1.6.7 stopped and started again.
(c) `broker_restarts`: Mosquitto (persistence on) restarted under the agents.
(d) `disk_full`: the filesystem of the SQLite file fills up, then has room again.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import servers
from tests.chaos.load import (
    POINTS_PER_REPORT,
    SAMPLES_PER_REPORT,
    NumberedAgents,
    Tally,
    influx_points,
    influx_tally,
    sqlite_tally,
)
from tests.collector_process import CollectorProcess, serve_config
from tests.integration.harness import metric


@dataclass
class Outcome:
    """What one case published, and where each report ended up."""

    case: str
    published: int
    stored: int
    """distinct (node, seq) found where the case looks (SQLite or InfluxDB)"""
    counted_dropped: int = 0
    """reports (or, for InfluxDB, points) counted as dropped"""
    uncounted: int = 0
    """published, neither stored nor counted: what must be 0"""
    duplicates: int = 0
    out_of_order: int = 0
    unit: str = "reports"
    notes: list[str] = field(default_factory=list)

    def row(self) -> str:
        """One line of the table in bench/README.md."""
        return (f"| {self.case} | {self.published:,} | {self.stored:,} | "
                f"{self.counted_dropped:,} | {self.uncounted:,} | {self.duplicates:,} | "
                f"{self.out_of_order:,} | {self.unit} | {'; '.join(self.notes)} |")


TABLE_HEAD = ("| case | published | stored | counted dropped | lost uncounted | duplicates | "
              "out of order | unit | notes |\n|---|---|---|---|---|---|---|---|---|")


async def wait_until(check: Callable[[], bool], timeout: float, what: str,
                     every: float = 0.2) -> float:
    """Poll `check` (in a thread) until true; seconds it took. TimeoutError names `what`."""
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def finish(agents: NumberedAgents, collector: CollectorProcess) -> None:
    """The agents stop; wait until the broker has what they queued and SQLite has all it
    will get."""
    agents.stop_publishing()
    assert await asyncio.to_thread(agents.wait_sent, 30), "agents could not send"
    await all_stored(agents, lambda: sqlite_tally(collector.sqlite_path, agents), 30)


async def all_stored(agents: NumberedAgents, tally: Callable[[], Tally], timeout: float) -> Tally:
    """Wait until every published report is found, or the count stops growing for 2 s."""
    last, last_change = -1, time.monotonic()
    while True:
        found = await asyncio.to_thread(tally)
        if found.stored >= agents.total:
            return found
        if found.stored != last:
            last, last_change = found.stored, time.monotonic()
        elif time.monotonic() - last_change > min(2.0, timeout):
            return found
        await asyncio.sleep(0.25)


def nodes(count: int, prefix: str) -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(count)]


# ------------------------------------------------------------------------------------ (a)
async def collector_killed(work: Path, *, agents_n: int = 5, rate: float = 5.0,
                           before_s: float = 3.0, down_s: float = 3.0, after_s: float = 3.0,
                           flush_interval_s: float = 1.0) -> Outcome:
    """SIGKILL `meshmon serve` while agents report; restart it after `down_s`. The broker
    keeps the collector's persistent session and queues what is published meanwhile."""
    mosquitto = servers.start_mosquitto()
    collector = CollectorProcess(work, serve_config(
        work, mosquitto.port, servers.free_port(),
        storage={"flush_interval_s": flush_interval_s}))
    agents = NumberedAgents(mosquitto.port, nodes(agents_n, "kill"), rate)
    try:
        await asyncio.to_thread(collector.start)
        agents.start()
        await asyncio.sleep(before_s)
        killed_at = time.time()
        collector.kill()
        await asyncio.sleep(down_s)
        await asyncio.to_thread(collector.start)
        back_at = time.time()
        await asyncio.sleep(after_s)
        await finish(agents, collector)
        missed = int(metric(collector.metrics(), "meshmon_reports_missed_total"))
        await asyncio.to_thread(collector.stop)
        tally = sqlite_tally(collector.sqlite_path, agents)
    finally:
        agents.close()
        collector.stop()
        mosquitto.stop()
    missing = tally.missing(agents)
    while_down = [(n, s) for n, seqs in missing.items() for s in seqs
                  if killed_at <= agents.ts_of(s) <= back_at]
    lost = sum(len(s) for s in missing.values())
    # how long before the kill each lost report was taken (its sample time)
    lost_before_kill_s = sorted(killed_at - agents.ts_of(s) for seqs in missing.values()
                                for s in seqs if agents.ts_of(s) < killed_at)
    counted = missed + agents.dropped_by_agents
    outcome = Outcome("(a) collector SIGKILLed, restarted", agents.total, tally.stored,
                      counted, lost - counted, tally.duplicates, tally.out_of_order())
    published_down = sum(1 for n in agents.nodes for s in range(agents.published[n])
                         if killed_at <= agents.ts_of(s) <= back_at)
    outcome.notes.append(f"{agents_n} agents × {rate:g}/s; down {back_at - killed_at:.1f} s: "
                         f"{published_down} published meanwhile, "
                         f"{published_down - len(while_down)} of them stored")
    if lost_before_kill_s:
        outcome.notes.append(
            f"{len(lost_before_kill_s)} lost, taken 0–{lost_before_kill_s[-1]:.2f} s before "
            f"the kill: received and acknowledged, not yet written (flush every "
            f"{flush_interval_s:g} s); the restarted collector counted {missed} missed "
            "(meshmon_reports_missed_total)")
    outcome.while_down_missing = while_down  # type: ignore[attr-defined]
    outcome.lost_before_kill_s = lost_before_kill_s  # type: ignore[attr-defined]
    return outcome


# ------------------------------------------------------------------------------------ (b)
SINK = "influxdb_v1"
"""the InfluxDB sink's label on /metrics"""


async def influx_down(work: Path, *, agents_n: int = 10, rate: float = 2.0,
                      before_s: float = 3.0, down_s: float = 6.0, after_s: float = 3.0,
                      buffer_max_points: int = 1000) -> Outcome:
    """Stop InfluxDB for `down_s` while agents report; points wait in the sink's buffer of
    `buffer_max_points` and go out when it is back; the overflow is counted as dropped."""
    mosquitto = servers.start_mosquitto()
    influx = servers.start_influxdb1()
    db = "chaos"
    collector = CollectorProcess(work, serve_config(
        work, mosquitto.port, servers.free_port(),
        influxdb={"enabled": True, "api": "v1", "url": influx.url, "database": db,
                  "buffer_max_points": buffer_max_points, "flush_interval_s": 0.5}))
    agents = NumberedAgents(mosquitto.port, nodes(agents_n, "influx"), rate)
    try:
        servers.influx_query(influx, db, f"CREATE DATABASE {db}")
        await asyncio.to_thread(collector.start)
        agents.start()
        await asyncio.sleep(before_s)
        stopped_at = time.monotonic()
        servers.pause(influx, hold_ports=True)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(servers.resume, influx)
        down_for = time.monotonic() - stopped_at
        await asyncio.sleep(after_s)
        await finish(agents, collector)

        snapshot: dict[str, Any] = {}

        def settled() -> bool:
            # one consistent reading once every agent's node is offline: both stores idle,
            # and the sink's counts and SQLite's events the same before and after InfluxDB
            # is read (after the agents stop come events: offline, then an outage alert;
            # each is an InfluxDB point too)
            if nodes_offline(collector) < agents_n:
                return False
            events = collector_events(collector)
            counts = sink_counts(collector)
            if counts is None:
                return False
            in_influx = influx_points(influx.url, db)
            reports = influx_tally(influx.url, db, agents)
            if sink_counts(collector) != counts or collector_events(collector) != events:
                return False
            snapshot.update(events=events, written=counts[0], dropped=counts[1],
                            in_influx=in_influx, reports=reports)
            return True

        waited = await wait_until(settled, 90, "every node offline, the sinks' buffers empty")
        written, dropped, events = snapshot["written"], snapshot["dropped"], snapshot["events"]
        in_influx, reports = snapshot["in_influx"], snapshot["reports"]
        in_sqlite = sqlite_tally(collector.sqlite_path, agents)
    finally:
        agents.close()
        collector.stop()
        influx.stop()
        mosquitto.stop()
    expected_points = in_sqlite.stored * POINTS_PER_REPORT + events
    outcome = Outcome("(b) InfluxDB stopped", expected_points, in_influx, dropped,
                      expected_points - in_influx - dropped, unit="points")
    outcome.notes.append(
        f"{agents_n} agents × {rate:g}/s, {POINTS_PER_REPORT} points a report; down "
        f"{down_for:.0f} s; buffer {buffer_max_points:,} points; every node offline and the "
        f"buffers empty {waited:.0f} s after the agents stopped; {reports.stored:,} of "
        f"{agents.total:,} reports "
        f"whole in InfluxDB (node points); the sink counted {written:,} written")
    outcome.reports_published = agents.total  # type: ignore[attr-defined]
    outcome.reports_in_sqlite = in_sqlite.stored  # type: ignore[attr-defined]
    return outcome


def sink_counts(collector: CollectorProcess) -> tuple[int, int] | None:
    """The InfluxDB sink's (written, dropped) points while both stores are idle, else None."""
    text = collector.metrics()
    if any(metric(text, "meshmon_sink_queue_depth", sink=sink) for sink in (SINK, "sqlite")):
        return None
    return (int(metric(text, "meshmon_sink_written_total", sink=SINK)),
            int(metric(text, "meshmon_sink_dropped_total", sink=SINK)))


def nodes_offline(collector: CollectorProcess) -> int:
    """Nodes whose latest online/offline event (in SQLite) says they went offline."""
    import sqlite3

    conn = sqlite3.connect(f"file:{collector.sqlite_path}?mode=ro", uri=True)
    try:
        return int(conn.execute(
            "SELECT count(*) FROM events e WHERE kind = 'offline' AND id = "
            "(SELECT max(id) FROM events WHERE node = e.node AND kind IN ('online', "
            "'offline'))").fetchone()[0])
    finally:
        conn.close()


def collector_events(collector: CollectorProcess) -> int:
    """Events the collector logged (in SQLite): they are InfluxDB points too."""
    import sqlite3

    conn = sqlite3.connect(f"file:{collector.sqlite_path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


# ------------------------------------------------------------------------------------ (c)
async def broker_restarts(work: Path, *, agents_n: int = 5, rate: float = 5.0,
                          before_s: float = 3.0, down_s: float = 3.0, after_s: float = 4.0,
                          restarts: int = 1) -> Outcome:
    """Restart Mosquitto (persistence on: sessions and queued messages are kept) while the
    agents report: each agent's Publisher queues its reports and sends them in order."""
    mosquitto = servers.start_mosquitto(persistence=True)
    collector = CollectorProcess(work, serve_config(work, mosquitto.port, servers.free_port()))
    agents = NumberedAgents(mosquitto.port, nodes(agents_n, "broker"), rate)
    try:
        await asyncio.to_thread(collector.start)
        agents.start()
        await asyncio.sleep(before_s)
        for _ in range(restarts):
            # SIGTERM: Mosquitto saves its sessions and queued messages
            await asyncio.to_thread(servers.pause, mosquitto)
            await asyncio.sleep(down_s)
            await asyncio.to_thread(servers.restart, mosquitto)
            await asyncio.sleep(after_s)
        await finish(agents, collector)
        await asyncio.to_thread(collector.stop)
        tally = sqlite_tally(collector.sqlite_path, agents)
    finally:
        agents.close()
        collector.stop()
        mosquitto.stop()
    lost = sum(len(s) for s in tally.missing(agents).values())
    outcome = Outcome("(c) Mosquitto restarted", agents.total, tally.stored,
                      agents.dropped_by_agents, lost - agents.dropped_by_agents,
                      tally.duplicates, tally.out_of_order())
    outcome.notes.append(f"{agents_n} real agent Publishers × {rate:g}/s; {restarts} restart(s), "
                         f"broker down {down_s:g} s each")
    return outcome


# ------------------------------------------------------------------------------------ (d)
class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answers as they are: a sign-in's 303 is the answer, not a page to fetch."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def http_while_full(collector: CollectorProcess) -> list[str]:
    """What the web answers while nothing can be written: reads work, a change is a 503
    that says why (never a 500)."""
    token = collector.config["http"]["admin_token"]
    assert collector.get("/api/v1/nodes")[0] == 200
    assert collector.get(f"/api/v1/alerts?token={token}")[0] == 200
    answers = {}
    opener = urllib.request.build_opener(NoRedirect)
    for name, path, body, headers in [
        ("silence", "/api/v1/silences", b'{"node": "disk-*", "duration_s": 600}',
         {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}),
        ("sign-in", "/admin/login", f"token={token}".encode(),
         {"Content-Type": "application/x-www-form-urlencoded"}),
    ]:
        req = urllib.request.Request(collector.url + path, data=body, method="POST",
                                     headers=headers)
        try:
            with opener.open(req, timeout=10) as response:
                answers[name] = response.status
        except urllib.error.HTTPError as exc:
            answers[name] = exc.code
    # 503 says why; a write may still fit in pages SQLite already has (201, 303)
    assert answers["silence"] in (201, 503) and answers["sign-in"] in (303, 503), answers
    return ["reads 200 while full; new silence " + str(answers["silence"]) + ", sign-in "
            + str(answers["sign-in"])]


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "16m") -> Any:
    """A tmpfs of `size` mounted at `path` (as root), unmounted whatever happens."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte; the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0")
    return filler


async def disk_full(work: Path, hook_url: str, received_outages: Callable[[], int], *,
                    agents_n: int = 5, rate: float = 5.0, before_s: float = 3.0,
                    full_s: float = 6.0, after_s: float = 3.0, queue_max: int = 200) -> Outcome:
    """Fill the filesystem of the SQLite file while agents report: the collector logs it,
    keeps serving HTTP and alerting (an agent that dies meanwhile reaches the webhook),
    counts the reports it cannot keep, and writes again when there is room."""
    mosquitto = servers.start_mosquitto()
    mount = work / "small-fs"
    with small_filesystem(mount):
        collector = CollectorProcess(mount, serve_config(
            mount, mosquitto.port, servers.free_port(),
            storage={"queue_max": queue_max},
            alerts={"retry_max_s": 1, "group_wait_s": 0.2},
            notifiers=[{"name": "hook", "type": "webhook", "url": hook_url, "timeout_s": 2}]))
        collector.work = work / "collector"  # its config and log stay off the small disk
        agents = NumberedAgents(mosquitto.port, nodes(agents_n, "disk"), rate)
        victim = NumberedAgents(mosquitto.port, ["disk-victim"], 1.0)
        notes: list[str] = []
        try:
            await asyncio.to_thread(collector.start)
            agents.start()
            victim.start()
            await asyncio.sleep(before_s)
            filler = await asyncio.to_thread(fill, mount)
            full_at = time.monotonic()
            outages_before = received_outages()
            victim.kill_one("disk-victim")  # its last will: an outage to alert on
            await wait_until(lambda: received_outages() > outages_before, 20,
                             "the outage alert reaches the webhook while the disk is full")
            notes.append("the outage alert reached the webhook while full")
            notes.extend(await asyncio.to_thread(http_while_full, collector))
            await asyncio.sleep(max(0.0, full_s - (time.monotonic() - full_at)))
            written = metric(collector.metrics(), "meshmon_sink_written_total", sink="sqlite")
            filler.unlink()
            # the write after the one that failed last succeeds: from then on, every report
            # is stored (those taken while it waited were stored or counted, as above)
            await wait_until(lambda: metric(collector.metrics(), "meshmon_sink_written_total",
                                            sink="sqlite") > written, 20,
                             "SQLite writes again once the disk has room")
            room_at = time.time()
            notes.append("SQLite wrote again once the disk had room")
            await asyncio.sleep(after_s)
            await finish(agents, collector)
            text = collector.metrics()
            dropped = int(metric(text, "meshmon_sink_dropped_total", sink="sqlite"))
            await asyncio.to_thread(collector.stop)
            tally = sqlite_tally(collector.sqlite_path, agents)
            victim_tally = sqlite_tally(collector.sqlite_path, victim)
            log = collector.log()
        finally:
            agents.close()
            victim.close()
            collector.stop()
            mosquitto.stop()
    # writing resumed: the reports taken once there was room again are all there
    after = [(n, s) for n in agents.published for s in range(agents.published[n])
             if agents.ts_of(s) > room_at]
    kept = {(n, s) for n, seqs in tally.order.items() for s in seqs}
    outcome_after = (sum(1 for r in after if r in kept), len(after))
    expected = agents.total + victim.total
    stored = tally.stored + victim_tally.stored
    outcome = Outcome("(d) SQLite filesystem full", expected, stored, dropped,
                      expected - stored - dropped)
    outcome.notes.append(f"{agents_n} agents × {rate:g}/s, {SAMPLES_PER_REPORT} samples a "
                         f"report; tmpfs of 16 MiB full for {full_s:g} s; queue_max "
                         f"{queue_max} (waiting samples); "
                         f"{tally.stored:,} of {agents.total:,} reports whole")
    outcome.notes.extend(notes)
    outcome.notes.append(f"{outcome_after[0]} of the {outcome_after[1]} reports taken after "
                         "SQLite wrote again stored")
    outcome.after_room = outcome_after  # type: ignore[attr-defined]
    outcome.log = log  # type: ignore[attr-defined]
    return outcome
