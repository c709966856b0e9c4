"""Shared fixtures: real servers on free loopback ports, started and stopped by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture
def mosquitto() -> Iterator[servers.Server]:
    """A fresh Mosquitto for one test (tests may restart or stop it)."""
    server = servers.start_mosquitto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb1() -> Iterator[servers.Server]:
    """One InfluxDB 1.6.7 for the session; tests use their own database names."""
    server = servers.start_influxdb1()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria() -> Iterator[servers.Server]:
    """One VictoriaMetrics for the session; tests use their own measurement/tag values."""
    server = servers.start_victoria_metrics()
    yield server
    server.stop()
