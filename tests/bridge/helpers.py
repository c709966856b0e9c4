"""Shared by the bridge tests: a recorder that is subscribed before a test publishes, the
bridge as a subprocess, and checks of what the bridge publishes against the wire models."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from meshmon.model import wire
from tests.agent.mqtt_helpers import Received, Recorder

PREFIX = "meshmon"


def subscribed_recorder(port: int, topic_filter: str, probe_topic: str) -> Recorder:
    """A Recorder whose subscription is in place (a probe on `probe_topic`, which
    `topic_filter` must match, came back)."""
    rec = Recorder(port, topic_filter)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rec.client.publish(probe_topic, b'{"probe": true}', qos=1)
        try:
            rec.wait_for(lambda m: m.topic == probe_topic, timeout=0.3, what="probe")
        except AssertionError:
            continue
        with rec._cond:
            rec.messages = [m for m in rec.messages if m.topic != probe_topic]
        return rec
    rec.close()
    raise AssertionError("the recorder never got its own probe back")


def decode(message: Received | dict[str, Any]) -> wire.Message | wire.BridgeStatus:
    """Validate one published message (a Recorder's or a `--print` line) like the collector."""
    if isinstance(message, Received):
        topic, payload = message.topic, message.payload
    else:
        topic, payload = message["topic"], message["payload"]
    if "/v1/bridge/" in topic:
        status = wire.BridgeStatus.model_validate(payload)
        assert topic == f"{PREFIX}/v1/bridge/{status.bridge}/status"
        return status
    return wire.decode(PREFIX, topic, json.dumps(payload).encode())


def write_config(path: Path, bridge_id: str, port: int, body: str = "", mqtt: str = "") -> Path:
    """A bridge config file: `[bridge]`, `[mqtt]` on 127.0.0.1:`port`, then `body`."""
    path.write_text(
        f'[bridge]\nid = "{bridge_id}"\n'
        f"[mqtt]\nport = {port}\nreconnect_min_s = 1\nreconnect_max_s = 2\n{mqtt}\n{body}"
    )
    return path


def start_bridge(config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`meshmon-bridge -c CONFIG ARGS…` as a process (python -m, the venv's interpreter)."""
    out = open(log, "wb")  # noqa: SIM115 - lives with the process
    return subprocess.Popen([sys.executable, "-m", "meshmon_bridge.main", "-c", str(config),
                             *args], stdout=out, stderr=subprocess.STDOUT)


def run_print(config: Path, *args: str, timeout: float = 120) -> tuple[int, list[dict], str]:
    """`meshmon-bridge -c CONFIG --once --print`: exit code, the printed messages, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "meshmon_bridge.main", "-c", str(config), "--once", "--print",
         *args], capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, lines, done.stderr


def print_tables(tmp_path: Path, bridge_id: str, body: str) -> list[dict]:
    """`--once --print` of a bridge with these source tables: the printed messages (the
    run must succeed)."""
    config = write_config(tmp_path / "bridge.toml", bridge_id, 1883, body=body)
    code, lines, stderr = run_print(config)
    assert code == 0, stderr
    return lines
