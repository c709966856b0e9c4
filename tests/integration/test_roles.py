"""`meshmon serve --role core` plus two `--role writer` processes on a real Mosquitto
(MQTT 5 shared subscription) and a real InfluxDB 1: every report a program outside the
project publishes is stored exactly once (counted by series and timestamp); a writer
SIGKILLed mid-stream: the other carries on and, once the killed one's last will says it
is gone, stands in for it, so every report published meanwhile is stored without a
restart; back, the killed writer takes its session back and its share again; stopped
cleanly, a writer leaves the group, and the last one keeps its session so nothing
published while no writer runs is lost, whether it comes back or a writer with another
client id replaces it; only the core alerts; the writers run at a lower CPU priority
than the core (`[roles] writer_nice`)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from tests import servers
from tests.collector_process import CollectorProcess, serve_config
from tests.integration import report_counting
from tests.integration.report_counting import (
    ReportPublisher,
    received,
    standing_in_for,
    subscribed,
    until,
)
from tests.integration.scripted_mesh import ScriptedMesh, WebhookReceiver

DB = "roles_e2e"
T0 = float(int(time.time()))
"""report times: T0 + seq ms, one series point per (node, seq); near now (an agent's
clock off by more than storage.max_clock_skew_s is replaced by the receiving time)"""


def stored(influx: servers.Server) -> list[tuple[str, int]]:
    return report_counting.stored(influx, DB, T0)


def niceness(process: CollectorProcess) -> int:
    """A running process's CPU niceness (`nice`)."""
    assert process.proc is not None
    return os.getpriority(os.PRIO_PROCESS, process.proc.pid)


def _config(work: Path, mqtt: int, name: str, hook: WebhookReceiver,
            influx: servers.Server) -> dict[str, Any]:
    config = serve_config(
        work / name, mqtt, servers.free_port(),
        influxdb={"enabled": True, "api": "v1", "url": influx.url, "database": DB,
                  "flush_interval_s": 0.2},
        alerts={"retry_max_s": 1})
    config["notifiers"] = [{"name": "hook", "type": "webhook", "url": hook.url,
                            "timeout_s": 2}]
    config["mqtt"]["client_id"] = f"roles-{name}"
    return config


async def test_core_and_two_writers_store_every_report_once_and_survive_a_killed_writer(
        tmp_path: Path, mosquitto: servers.Server, influxdb1: servers.Server) -> None:
    servers.influx_query(influxdb1, DB, f"DROP DATABASE {DB}")
    servers.influx_query(influxdb1, DB, f"CREATE DATABASE {DB}")
    hook = WebhookReceiver()
    await hook.start()
    port = mosquitto.port
    core = CollectorProcess(tmp_path / "core", _config(tmp_path, port, "core", hook, influxdb1),
                            role="core")
    writers = [CollectorProcess(tmp_path / name, _config(tmp_path, port, name, hook, influxdb1),
                                role="writer") for name in ("writer-a", "writer-b")]
    procs = [core, *writers]
    mesh = ScriptedMesh(port, [("gw", "leaf")], {"gw"})
    publisher: ReportPublisher | None = None
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in procs))
        await until(lambda: subscribed(writers), 15, "writers subscribed")
        publisher = await asyncio.to_thread(ReportPublisher, port, T0)
        # the writers yield the CPU to the core ([roles] writer_nice, default 10)
        started_at = os.getpriority(os.PRIO_PROCESS, 0)
        assert niceness(core) == started_at
        assert [niceness(w) for w in writers] == [min(started_at + 10, 19)] * 2
        assert "CPU priority nice" in writers[0].log()

        # 1. 2,000 reports: each stored once, the writers share them
        await asyncio.to_thread(publisher.publish, 100)
        await until(lambda: len(stored(influxdb1)) >= 2000, 30, "2,000 points")
        points = stored(influxdb1)
        assert sorted(points) == sorted(publisher.sent), "each report exactly once"
        shares = [received(w) for w in writers]
        assert sum(shares) == 2000 and min(shares) > 0, shares

        # 2. only the core alerts: the leaf's power cut is one alert (three processes
        # with the same [[notifiers]])
        await mesh.start()
        await until(lambda: core.get("/api/v1/nodes")[0] == 200
                         and b'"leaf"' in core.get("/api/v1/nodes")[1], 15, "leaf known")
        mesh.drop("leaf")
        await until(lambda: len(hook.of("outage", "firing")) == 1, 10, "outage alert")

        # 3. 2,000 more at 400/s; writer B is SIGKILLed after 1 s
        stream = threading.Thread(target=publisher.publish, args=(100, 400.0))
        stream.start()
        await asyncio.sleep(1.0)
        writer_a, writer_b = writers
        writer_b.kill()
        await asyncio.to_thread(stream.join)
        assert len(publisher.sent) == 4000
        # Mosquitto 2.0 keeps giving the dead B its turn (queued in B's session); A sees
        # B's last will and takes B's session over: nothing waits for B to come back
        await until(lambda: len(stored(influxdb1)) >= 4000, 30, "all 4,000 points, B dead")
        await asyncio.sleep(1.0)  # anything stored twice would show now
        points = stored(influxdb1)
        assert sorted(points) == sorted(publisher.sent), "each report exactly once"
        assert standing_in_for(writer_a) == ["roles-writer-b"]
        assert "meshmon_writer_standing_in 1" in writer_a.metrics()
        assert "writer roles-writer-b is offline" in writer_a.log()

        # 4. B back with its client id: it takes its session back from A, and its share
        await asyncio.to_thread(writer_b.start)
        await until(lambda: "meshmon_writer_standing_in 0" in writer_a.metrics(), 15,
                    "A no longer stands in for B")
        await asyncio.to_thread(publisher.publish, 50, 400.0)
        await until(lambda: len(stored(influxdb1)) >= 5000, 30, "all 5,000 points")
        await asyncio.sleep(1.0)
        points = stored(influxdb1)
        assert sorted(points) == sorted(publisher.sent), "each report exactly once"
        b_since_restart = received(writer_b)
        print(f"\nafter B's restart: A decoded {received(writer_a)}, B (since restart) "
              f"{b_since_restart}; points {len(points)}")
        assert b_since_restart > 0, "B has its turn again"
        assert standing_in_for(writer_a) == []

        # 5. clean stops: A leaves the group (B is online), then B, the last one, keeps
        # its session: what is published while no writer runs waits for B's restart
        await asyncio.to_thread(writer_a.stop)
        assert "went on sending reports" not in writer_a.log()  # it left the group at once
        await asyncio.to_thread(writer_b.stop)
        await asyncio.to_thread(publisher.publish, 20)
        await asyncio.to_thread(writer_b.start)
        await until(lambda: len(stored(influxdb1)) >= 5400, 30, "all 5,400 points")
        await asyncio.sleep(1.0)
        assert sorted(stored(influxdb1)) == sorted(publisher.sent), "each report exactly once"
        # all 400 went to B's session (A had left the group; had it not, its share would
        # wait for A), plus what B had taken but not acknowledged before its stop, again
        assert received(writer_b) >= 400

        # 6. B stops again as the last one (its session kept, its status `offline`); a
        # writer with a new client id replaces it and stands in for B's session
        await asyncio.to_thread(writer_b.stop)
        await asyncio.to_thread(publisher.publish, 20)
        c_config = _config(tmp_path, port, "writer-c", hook, influxdb1)
        c_config["roles"] = {"writer_nice": 0}  # keeps the priority it was started with
        writer_c = CollectorProcess(tmp_path / "writer-c", c_config, role="writer")
        procs.append(writer_c)
        await asyncio.to_thread(writer_c.start)
        assert niceness(writer_c) == started_at
        await until(lambda: len(stored(influxdb1)) >= 5800, 30, "all 5,800 points")
        await asyncio.sleep(1.0)
        assert sorted(stored(influxdb1)) == sorted(publisher.sent), "each report exactly once"
        assert standing_in_for(writer_c) == ["roles-writer-b"]
        await asyncio.sleep(1.0)
        assert len(hook.received) == 1, [a.get("summary") for a in hook.received]
        for proc in procs:
            assert not proc.problems(), proc.problems()
    finally:
        if publisher is not None:
            publisher.close()
        await mesh.stop()
        for proc in procs:
            await asyncio.to_thread(proc.stop)
        await hook.stop()
