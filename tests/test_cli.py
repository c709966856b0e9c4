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


def serve(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "meshmon.toml"
    cfg.write_text(toml + f'\n[storage]\npath = "{tmp_path}/m.sqlite"\n')
    return subprocess.run([sys.executable, "-m", "meshmon.cli", "serve", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)


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
