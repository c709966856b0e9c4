"""`meshmon serve` as a separate process, as it runs for real: a TOML config file, an
external broker, its own log file; stopped cleanly, or killed with SIGKILL and restarted.

Used by the fuzz tests through a real broker, the chaos tests and `bench/chaos.py`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from tests import servers

LOG_PROBLEMS = ("Traceback", " ERROR ", " CRITICAL ")
"""what a collector log must not show after hostile input (it is logged as WARNING)"""


def serve_config(work: Path, mqtt_port: int, http_port: int,
                     **sections: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """A collector on an external broker with a persistent session and SQLite in `work`;
    `sections` are merged in (tables) or set (arrays of tables)."""
    config: dict[str, Any] = {
        "log_level": "info",
        "mqtt": {"broker": "external", "host": "127.0.0.1", "port": mqtt_port,
                 "client_id": f"collector-{work.name}"[:60], "persistent_session": True},
        "http": {"host": "127.0.0.1", "port": http_port, "admin_token": "chaos-token"},
        "storage": {"path": str(work / "meshmon.sqlite"), "flush_interval_s": 0.2},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            config.setdefault(name, {}).update(values)
        else:
            config[name] = values
    return config


@dataclass
class CollectorProcess:
    """One `meshmon serve -c FILE` process; `start()` again after `kill()` or `stop()`."""

    work: Path
    config: dict[str, Any]
    role: str = "all"
    """`meshmon serve --role`"""
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config['http']['port']}"

    @property
    def sqlite_path(self) -> Path:
        return Path(self.config["storage"]["path"])

    def start(self, timeout: float = 60.0) -> None:
        """Write the config, start the process, wait until /healthz answers."""
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / "meshmon.toml"
        path.write_text(tomli_w.dumps(self.config))
        self.starts += 1
        log_path = self.work / f"collector-{self.starts}.log"
        self.logs.append(log_path)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshmon.cli", "serve", "-c", str(path),
                 "--role", self.role],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            servers.wait_for_http(self.url + "/healthz", timeout=timeout)
        except Exception:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"collector exited with {self.proc.returncode}:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut would: nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (the collector flushes and closes); SIGKILL after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        """Everything every run of this collector logged."""
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def problems(self) -> list[str]:
        """Log lines that show an exception or an error."""
        return [line for line in self.log().splitlines()
                if any(mark in line for mark in LOG_PROBLEMS)]

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET one URL of the collector: (status, body)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> str:
        """The /metrics text."""
        status, body = self.get("/metrics")
        assert status == 200, status
        return body.decode()
