"""Adapters that send data out: SQLite (always) and InfluxDB (optional), one Protocol.

`build_sinks(config)` picks the backends by name from the config; adding a backend is one
module and one entry in `INFLUX_BACKENDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from meshmon.config import Config, InfluxConfig
from meshmon.sinks.base import Event, Sink, sample_time
from meshmon.sinks.influx_v1 import InfluxV1Sink
from meshmon.sinks.influx_v2 import InfluxV2Sink
from meshmon.sinks.sqlite import SqliteStore

__all__ = [
    "INFLUX_BACKENDS", "Event", "InfluxV1Sink", "InfluxV2Sink", "Sink", "SqliteStore",
    "build_influx_sink", "build_sinks", "sample_time",
]  # fmt: skip


def _v1(cfg: InfluxConfig, max_skew_s: float) -> Sink:
    return InfluxV1Sink(
        cfg.url, cfg.database, username=cfg.username, password=cfg.password,
        timeout_s=cfg.timeout_s, batch_size=cfg.batch_size,
        flush_interval_s=cfg.flush_interval_s, buffer_max_points=cfg.buffer_max_points,
        max_clock_skew_s=max_skew_s,
    )  # fmt: skip


def _v2(cfg: InfluxConfig, max_skew_s: float) -> Sink:
    return InfluxV2Sink(
        cfg.url, cfg.bucket, org=cfg.org, token=cfg.token, timeout_s=cfg.timeout_s,
        batch_size=cfg.batch_size, flush_interval_s=cfg.flush_interval_s,
        buffer_max_points=cfg.buffer_max_points, max_clock_skew_s=max_skew_s,
    )  # fmt: skip


INFLUX_BACKENDS: dict[str, Callable[[InfluxConfig, float], Sink]] = {"v1": _v1, "v2": _v2}
"""InfluxDB backends by `[influxdb] api`."""


def build_influx_sink(cfg: InfluxConfig, max_clock_skew_s: float) -> Sink:
    """The InfluxDB sink named by `cfg.api`."""
    return INFLUX_BACKENDS[cfg.api](cfg, max_clock_skew_s)


def build_sinks(config: Config, clock: Callable[[], float] = time.time) -> list[Sink]:
    """SQLite always (first), InfluxDB when `[influxdb] enabled`; not started yet. `clock`
    is the collector's (SQLite measures its history's retention by it)."""
    st = config.storage
    sinks: list[Sink] = [
        SqliteStore(
            st.path, sample_retention_h=st.sample_retention_h,
            history_5min_days=st.history_5min_days, history_1h_days=st.history_1h_days,
            flush_interval_s=st.flush_interval_s, queue_max=st.queue_max,
            max_clock_skew_s=st.max_clock_skew_s, clock=clock, worker=st.worker,
        )
    ]
    if config.influxdb.enabled:
        sinks.append(build_influx_sink(config.influxdb, st.max_clock_skew_s))
    return sinks
