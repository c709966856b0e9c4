"""The `meshmon` command as a user runs it: start-up failures are messages, not tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def serve(tmp_path: Path, toml: str, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "meshmon.toml"
    cfg.write_text(toml + f'\n[storage]\npath = "{tmp_path}/m.sqlite"\n')
    return subprocess.run([sys.executable, "-m", "meshmon.cli", "serve", "-c", str(cfg), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("role", ["core", "writer"])
def test_roles_on_the_embedded_broker_say_they_need_an_external_one(
        tmp_path: Path, role: str) -> None:
    run = serve(tmp_path, "[mqtt.embedded]\nport = 0\n[influxdb]\nenabled = true", "--role", role)
    assert run.returncode == 1
    assert f"--role {role} needs an external MQTT 5 broker" in run.stderr
    assert "runs only --role all" in run.stderr and "Traceback" not in run.stderr


def test_a_writer_without_a_time_series_database_or_client_id_says_so(tmp_path: Path) -> None:
    external = '[mqtt]\nbroker = "external"\nport = 1\n'
    run = serve(tmp_path, external, "--role", "writer")
    assert run.returncode == 1 and "[influxdb] enabled = true" in run.stderr
    run = serve(tmp_path, external + "[influxdb]\nenabled = true", "--role", "writer")
    assert run.returncode == 1 and "unique [mqtt] client_id" in run.stderr


def test_embedded_broker_port_in_use_is_a_clear_error(tmp_path: Path, taken_port: int) -> None:
    run = serve(tmp_path, f"[mqtt.embedded]\nport = {taken_port}\n[http]\nport = {free_port()}")
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken_port}" in run.stderr
    assert 'broker = "external"' in run.stderr
    assert "Traceback" not in run.stderr


def test_http_port_in_use_is_a_clear_error(tmp_path: Path, taken_port: int) -> None:
    run = serve(tmp_path, f"[mqtt.embedded]\nport = 0\n[http]\nport = {taken_port}")
    assert run.returncode == 1
    assert f"HTTP cannot listen on 127.0.0.1:{taken_port}" in run.stderr
    assert "Traceback" not in run.stderr


def test_broken_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    run = serve(tmp_path, "[http]\nprot = 1")
    assert run.returncode == 2
    assert "http.prot" in run.stderr
