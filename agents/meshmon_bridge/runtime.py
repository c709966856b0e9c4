"""Polls every source on its own interval, concurrently, and sends what they learn.

A source that fails (raises, or hangs past its deadline) is logged, rate-limited, and
polled again at its next turn; it never stops the others. Time is read through `clock`
so tests can pin it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from meshmon_bridge.messages import MessageBuilder
from meshmon_bridge.publisher import MessageSink
from meshmon_bridge.ratelog import RateLimitedLog
from meshmon_bridge.source import Source, SourceError

log = logging.getLogger(__name__)


def poll_deadline_s(source: Source) -> float | None:
    """How long one poll may take before it counts as failed (a stuck poll is cancelled):
    the source's own `poll_deadline_s` if it has that attribute (None: it bounds itself),
    else max(3 × interval, 60 s)."""
    default = max(3 * source.interval_s, 60.0)
    deadline: float | None = getattr(source, "poll_deadline_s", default)
    return deadline


class Bridge:
    """One bridge run: its sources, the messages they turn into, and where those go."""

    def __init__(self, bridge_id: str, prefix: str, sources: Sequence[Source],
                 sink: MessageSink, clock: Callable[[], float] = time.time) -> None:
        self.sources = list(sources)
        self.sink = sink
        self.builder = MessageBuilder(bridge_id, prefix)
        self._clock = clock
        self._rate_log = RateLimitedLog(log)
        self._failing: set[str] = set()
        self.polls = 0
        self.failures = 0

    def announce(self, online: bool = True) -> None:
        """Send the bridge's own status (the MQTT publisher sends its own on connect)."""
        self.sink.send(self.builder.bridge_status(online, self._clock()))

    async def poll(self, source: Source) -> bool:
        """Poll one source once and send the messages; False if the poll failed."""
        self.polls += 1
        try:
            deadline = poll_deadline_s(source)
            polling = source.poll()
            updates = await (polling if deadline is None else asyncio.wait_for(polling, deadline))
        except Exception as exc:  # one failing source must never stop the bridge
            self.failures += 1
            self._failing.add(source.name)
            self._log_failure(source, exc)
            return False
        if source.name in self._failing:
            self._failing.discard(source.name)
            self._rate_log.forget(source.name)
            log.info("%s: answers again", source.name)
        now = self._clock()
        for update in updates:
            for message in self.builder.build(source.kind, update, source.interval_s, now):
                self.sink.send(message)
        return True

    def _log_failure(self, source: Source, exc: Exception) -> None:
        if isinstance(exc, SourceError):
            self._rate_log.log(logging.WARNING, source.name, "%s: %s", source.name, exc)
        elif isinstance(exc, TimeoutError):
            self._rate_log.log(logging.WARNING, source.name, "%s: poll took longer than %s s,"
                               " cancelled", source.name, poll_deadline_s(source))
        else:
            if self._rate_log.log(logging.ERROR, source.name, "%s: poll failed: %r",
                                  source.name, exc):
                log.debug("%s: traceback", source.name, exc_info=exc)

    async def run_once(self) -> bool:
        """Poll every source once, concurrently; True if none failed."""
        results = await asyncio.gather(*(self.poll(s) for s in self.sources))
        return all(results)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll each source every `interval_s` until `stop` is set, then cancel the polls."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._every(s, stop), name=s.name) for s in self.sources]
            await stop.wait()
            for task in tasks:
                task.cancel()

    async def _every(self, source: Source, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            await self.poll(source)
            next_at += source.interval_s
            # a poll that ran past its turn does not make up for the turns it missed
            next_at = max(next_at, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next_at - loop.time())

    async def close(self) -> None:
        """Close every source (errors are logged, not raised)."""
        for source in self.sources:
            try:
                await source.close()
            except Exception as exc:  # closing one must not keep the others open
                log.warning("%s: close failed: %r", source.name, exc)
