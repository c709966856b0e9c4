"""Both agents say clearly when the broker cannot be reached, and keep retrying (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests import servers
from tests.agent.mqtt_helpers import Recorder
from tests.agent.router import ROOT, Router
from tests.agent_process import start_agent, stop


def test_once_without_a_broker_fails_fast_naming_host_and_port(tmp_path: Path) -> None:
    port = servers.free_port()
    config = tmp_path / "agent.toml"
    config.write_text(f'node = "lonely-1"\n[mqtt]\nport = {port}\n')
    want = f"meshmon-agent: cannot connect to 127.0.0.1:{port}: connection refused"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "agents"), PATH="/nonexistent")
    started = time.monotonic()
    python = subprocess.run([sys.executable, "-m", "meshmon_agent.main", "-c", str(config),
                             "--once"], env=env, capture_output=True, text=True, timeout=30)
    python_s = time.monotonic() - started
    started = time.monotonic()
    sh = Router(tmp_path / "router").sh("-c", str(config), "--once")
    sh_s = time.monotonic() - started
    for done, took in ((python, python_s), (sh, sh_s)):
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1] == want, done.stderr
        assert took < 5


def test_python_agent_logs_failed_connections_and_connects_when_the_broker_comes(
    tmp_path: Path,
) -> None:
    port = servers.free_port()
    agent = start_agent(tmp_path, port, "patient-1", interval_s=1)
    log = tmp_path / "agent-patient-1.log"
    mosquitto = None
    try:
        deadline = time.monotonic() + 15
        want = f"cannot connect to 127.0.0.1:{port}: connection refused (attempt 2), retrying"
        while want not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        mosquitto = servers.start_mosquitto(port=port)
        rec = Recorder(port, "meshmon/v1/node/patient-1/report")
        try:
            rec.wait_for(lambda m: True, timeout=15, what="a report once the broker is up")
        finally:
            rec.close()
        assert f"connected to 127.0.0.1:{port}" in log.read_text()
    finally:
        stop(agent)
        if mosquitto is not None:
            mosquitto.stop()
