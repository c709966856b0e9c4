"""Three `--role writer` processes on a real Mosquitto and InfluxDB 1, no restart of the
dead: writer C is SIGKILLed mid-stream and A (the lowest client id online) stands in for
it; then A stops cleanly while it holds C's session and hands it on: B stands in for C.
Every report a program outside the project published is stored exactly once, although
the killed writer never came back."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from tests import servers
from tests.collector_process import CollectorProcess, serve_config
from tests.integration import report_counting
from tests.integration.report_counting import ReportPublisher, standing_in_for, subscribed, until

DB = "standin_e2e"
T0 = float(int(time.time()))


def stored(influx: servers.Server) -> list[tuple[str, int]]:
    return report_counting.stored(influx, DB, T0)


def _writer(work: Path, mqtt: int, name: str, influx: servers.Server) -> CollectorProcess:
    config = serve_config(
        work / name, mqtt, servers.free_port(),
        influxdb={"enabled": True, "api": "v1", "url": influx.url, "database": DB,
                  "flush_interval_s": 0.2})
    config["mqtt"]["client_id"] = f"standin-{name}"
    return CollectorProcess(work / name, config, role="writer")


async def test_a_killed_writer_is_stood_in_for_and_handed_on_when_its_stand_in_stops(
        tmp_path: Path, mosquitto: servers.Server, influxdb1: servers.Server) -> None:
    servers.influx_query(influxdb1, DB, f"DROP DATABASE {DB}")
    servers.influx_query(influxdb1, DB, f"CREATE DATABASE {DB}")
    a, b, c = (_writer(tmp_path, mosquitto.port, name, influxdb1) for name in "abc")
    publisher: ReportPublisher | None = None
    try:
        await asyncio.gather(*(asyncio.to_thread(w.start) for w in (a, b, c)))
        await until(lambda: subscribed([a, b, c]), 15, "writers subscribed")
        publisher = await asyncio.to_thread(ReportPublisher, mosquitto.port, T0,
                                            "standin-publisher")
        await asyncio.to_thread(publisher.publish, 20)
        await until(lambda: len(stored(influxdb1)) >= 400, 30, "the first 400 points")

        # 3,000 reports at 300/s; C is killed after 1 s and never comes back
        stream = threading.Thread(target=publisher.publish, args=(150, 300.0))
        stream.start()
        await asyncio.sleep(1.0)
        c.kill()
        await until(lambda: standing_in_for(a) == ["standin-c"], 15, "A standing in for C")
        assert standing_in_for(b) == []

        # A stops cleanly while it holds C's session: B takes it on
        await asyncio.to_thread(a.stop)
        await until(lambda: standing_in_for(b) == ["standin-c"], 15, "B standing in for C")
        await asyncio.to_thread(stream.join)
        assert len(publisher.sent) == 3400

        await until(lambda: len(stored(influxdb1)) >= 3400, 30, "all 3,400 points")
        await asyncio.sleep(1.0)  # anything stored twice would show now
        assert sorted(stored(influxdb1)) == sorted(publisher.sent), "each report exactly once"
        log_a = a.log()
        assert "standing in for it" in log_a and "standin-c" in log_a
        assert "went on sending reports" not in log_a  # it left the group at once
        assert "meshmon_writer_stand_ins_total 1" in b.metrics()
        for writer in (a, b):
            assert not writer.problems(), writer.problems()
    finally:
        if publisher is not None:
            publisher.close()
        for writer in (a, b, c):
            await asyncio.to_thread(writer.stop)
