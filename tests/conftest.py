"""Shared fixtures: real servers on free loopback ports, started and stopped by the tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests import servers

DATA = Path(__file__).parent / "data"

# Property tests and fuzzing (hypothesis). "ci", the default, is a bounded budget with a
# fixed seed so CI runs the same examples every time; `HYPOTHESIS_PROFILE=long` explores
# with fresh random examples and 50 times as many (minutes, for a local run).
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large,
         HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True,
                          database=None, suppress_health_check=_SLOW, print_blob=True,
                          phases=[p for p in Phase if p is not Phase.explain])
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
