"""Logging that repeats itself at most once per interval per key (a failing device polled
every 10 s must not fill the log), and says how many were held back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """`log.warning`-like calls that pass once per `every_s` for each key."""

    def __init__(self, logger: logging.Logger, every_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log `msg % args` unless `key` was logged less than `every_s` ago; True if logged."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg += f" ({held} more like it since the last time)"
        self._logger.log(level, msg, *args)
        return True

    def forget(self, key: str) -> None:
        """The next message for `key` is logged at once (e.g. after a recovery)."""
        self._last.pop(key, None)
        self._held.pop(key, None)
