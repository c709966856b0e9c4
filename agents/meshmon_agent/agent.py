"""The agent loop: info on start and on change, a report every interval, `fast` mode on command."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from meshmon_agent.collect import Collector
from meshmon_agent.config import AgentConfig
from meshmon_agent.info import build_info, host_facts

log = logging.getLogger(__name__)

FAST_MAX_DURATION_S = 3600.0
FAST_MIN_INTERVAL_S = 0.5
INFO_CHECK_EVERY_S = 60.0


class Sink(Protocol):
    """Where the agent sends its messages (the Publisher, or a fake in tests)."""

    def publish_info(self, info: dict[str, Any]) -> None: ...
    def publish_report(self, report: dict[str, Any]) -> None: ...


class Agent:
    """Periodically collects and publishes; `handle_command` may be called from any thread."""

    def __init__(
        self,
        cfg: AgentConfig,
        collector: Collector,
        sink: Sink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.collector = collector
        self.sink = sink
        self.clock = clock
        self.seq = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._fast_interval_s = 1.0
        self._fast_until = 0.0  # monotonic
        self._info: dict[str, Any] | None = None
        self._info_checked = 0.0

    def interval_s(self) -> float:
        """The current report interval: the fast one while installer mode lasts."""
        with self._lock:
            if time.monotonic() < self._fast_until:
                return min(self._fast_interval_s, self.cfg.interval_s)
        return self.cfg.interval_s

    def handle_command(self, command: dict[str, Any]) -> None:
        """Apply a collector command; unknown or malformed commands are logged and ignored."""
        if command.get("cmd") != "fast":
            log.warning("unknown command %r ignored", str(command.get("cmd"))[:40])
            return
        try:
            interval = float(command.get("interval_s", 1))
            duration = float(command.get("duration_s", 600))
        except (TypeError, ValueError):
            log.warning("malformed fast command ignored: %r", command)
            return
        if not (interval > 0 and duration > 0):
            log.warning("malformed fast command ignored: %r", command)
            return
        duration = min(duration, FAST_MAX_DURATION_S)
        with self._lock:
            self._fast_interval_s = max(FAST_MIN_INTERVAL_S, interval)
            self._fast_until = time.monotonic() + duration
        log.info("fast mode: every %.1f s for %.0f s", max(FAST_MIN_INTERVAL_S, interval), duration)
        self._wake.set()

    def build_info(self) -> dict[str, Any]:
        """The current info payload."""
        return build_info(self.cfg, self.collector.macs(), host_facts(self.collector.root))

    def maybe_publish_info(self, force: bool = False) -> None:
        """Publish info on start and whenever it differs from the last one sent."""
        now = time.monotonic()
        if not force and now - self._info_checked < INFO_CHECK_EVERY_S:
            return
        self._info_checked = now
        info = self.build_info()
        if info != self._info:
            self._info = info
            self.sink.publish_info({**info, "ts": round(self.clock(), 3)})

    def build_report(self, interval_s: float) -> dict[str, Any]:
        """One report with the next `seq` and the current time."""
        report: dict[str, Any] = {
            "v": 1,
            "node": self.cfg.node,
            "ts": round(self.clock(), 3),
            "seq": self.seq,
            "interval_s": interval_s,
        }
        report.update(self.collector.report_fields())
        self.seq += 1
        return report

    def tick(self) -> dict[str, Any]:
        """Collect and publish one report (and info if it changed); returns the report."""
        self.maybe_publish_info()
        report = self.build_report(self.interval_s())
        self.sink.publish_report(report)
        return report

    def stop(self) -> None:
        """Make `run` return soon; safe from signal handlers and other threads."""
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Report every interval until `stop()`; a `fast` command takes effect at once."""
        stop = self._stop
        self.maybe_publish_info(force=True)
        due = time.monotonic()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                # a collector bug must not end monitoring of the node
                log.exception("report failed")
            due += self.interval_s()
            now = time.monotonic()
            if due < now:
                due = now  # fell behind (suspend, slow tool): do not burst
            while not stop.is_set():
                wait = due - time.monotonic()
                if wait <= 0:
                    break
                self._wake.wait(wait)
                if self._wake.is_set():
                    self._wake.clear()
                    due = min(due, time.monotonic() + self.interval_s())
