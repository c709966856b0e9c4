"""The agent as a real process against a real Mosquitto, fed with captured command outputs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshmon.model import wire
from tests import servers
from tests.agent.mqtt_helpers import Recorder
from tests.agent_process import start_agent

ROOT = Path(__file__).resolve().parents[2]
NODE = "e2e-node"
BASE = f"meshmon/v1/node/{NODE}/"


def _start_agent(tmp_path: Path, port: int, interval_s: float) -> subprocess.Popen[bytes]:
    return start_agent(tmp_path, port, NODE, interval_s)


@pytest.fixture
def stop_agent() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def _valid_report(payload: dict) -> wire.Report:
    report = wire.decode("meshmon", BASE + "report", json.dumps(payload).encode())
    assert isinstance(report, wire.Report)
    return report


def _reports_after(rec: Recorder, seq: int, count: int, timeout: float) -> list[dict]:
    rec.wait_for(
        lambda m: m.topic.endswith("/report") and m.payload["seq"] >= seq + count - 1,
        timeout=timeout,
        what=f"report seq {seq + count - 1}",
    )
    return [m.payload for m in rec.where("/report") if m.payload["seq"] >= seq][:count]


def test_agent_process_end_to_end(
    mosquitto: servers.Server, tmp_path: Path, stop_agent: list
) -> None:
    rec = Recorder(mosquitto.port, BASE + "#")
    agent = _start_agent(tmp_path, mosquitto.port, interval_s=2)
    stop_agent.append(agent)
    try:
        # retained status and info, seen by a client that subscribes afterwards
        rec.wait_for(lambda m: m.topic.endswith("/info"), what="info")
        late = Recorder(mosquitto.port, BASE + "+")
        try:
            status = late.wait_for(lambda m: m.topic.endswith("/status"), what="status")
            info = late.wait_for(lambda m: m.topic.endswith("/info"), what="retained info")
        finally:
            late.close()
        assert status.retain and status.payload["online"] is True
        assert info.retain and isinstance(
            wire.decode("meshmon", BASE + "info", json.dumps(info.payload).encode()), wire.Info
        )

        # normal reports: valid, every 2 s, seq counting from 0
        first = rec.wait_for(lambda m: m.topic.endswith("/report"), what="first report")
        normal = _reports_after(rec, first.payload["seq"], 3, timeout=10)
        for payload in normal:
            report = _valid_report(payload)
            assert report.interval_s == 2 and len(report.links) == 7
        gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(normal)]
        assert all(1.7 < g < 2.5 for g in gaps), gaps

        # installer mode: 1-second reports at once
        rec.publish(BASE + "cmd", {"cmd": "fast", "interval_s": 1, "duration_s": 600})
        switched = rec.wait_for(
            lambda m: m.topic.endswith("/report") and m.payload["interval_s"] == 1, what="fast"
        )
        fast = _reports_after(rec, switched.payload["seq"], 3, timeout=6)
        gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(fast)]
        assert all(0.7 < g < 1.4 for g in gaps), gaps

        # broker outage: reports made meanwhile arrive later, in order, with their own ts
        mosquitto.proc.terminate()
        mosquitto.proc.wait(10)
        down_at = time.time()
        time.sleep(3.5)
        before = [m.payload for m in rec.where("/report")]
        rec.close()
        servers.restart(mosquitto)
        up_at = time.time()
        rec = Recorder(mosquitto.port, BASE + "#")
        last = rec.wait_for(
            lambda m: m.topic.endswith("/report") and m.payload["ts"] > up_at + 1,
            timeout=10,
            what="a live report after the outage",
        )
        after = [m.payload for m in rec.where("/report") if m.payload["seq"] <= last.payload["seq"]]
        made_in_outage = [r for r in after if down_at < r["ts"] < up_at]
        assert len(made_in_outage) >= 2, after
        seqs = [r["seq"] for r in after]
        assert seqs == sorted(seqs), "out of order"  # QoS 1 may repeat the in-flight one
        everything = sorted({r["seq"] for r in before + after})
        assert everything == list(range(everything[0], everything[-1] + 1)), "a report was lost"
        assert everything[0] == first.payload["seq"]
        for r in after:
            _valid_report(r)

        # a crash: the broker publishes the retained last will
        agent.send_signal(signal.SIGKILL)
        agent.wait(5)
        will = rec.wait_for(
            lambda m: m.topic.endswith("/status") and m.payload["online"] is False, what="will"
        )
        assert will.payload == {"v": 1, "node": NODE, "online": False}
    finally:
        rec.close()


def test_sigterm_stops_cleanly(mosquitto: servers.Server, tmp_path: Path, stop_agent: list) -> None:
    rec = Recorder(mosquitto.port, BASE + "#")
    agent = _start_agent(tmp_path, mosquitto.port, interval_s=30)
    stop_agent.append(agent)
    try:
        # a running agent: connected and its first report sent (a SIGTERM within ~3 ms of
        # connecting can still lose the clean status to the will; see the closing note)
        rec.wait_for(lambda m: m.topic == BASE + "report", what="first report")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(5) == 0
        off = rec.wait_for(lambda m: m.topic == BASE + "status" and m.payload["online"] is False,
                           what="online false")
        assert off.payload["ts"] > 0  # sent by the agent itself, not the will
    finally:
        rec.close()


def test_once_print_works_without_tools() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "agents"), PATH="/nonexistent")
    done = subprocess.run(
        [sys.executable, "-m", "meshmon_agent.main", "--once", "--print"],
        capture_output=True,
        env=env,
        timeout=30,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["seq"] == 0 and report["links"] == [] and report["sys"]["uptime_s"] > 0
    assert b"iw not found" in done.stderr and b"batctl not found" in done.stderr
    assert wire.Report.model_validate(report).node  # the sanitised host name
