"""Reliable delivery: every alert handed to a notifier is sent at once and persisted
meanwhile, retried with backoff while the receiver is down, and resent after a restart.

Sending does not wait for the store: SQLite may be busy with a large write of samples
(under load a last will's alert waited up to 3 s for the file's write lock). An alert
exists only in memory until persisted either way; if it is sent before it is persisted,
it is marked delivered as soon as its row exists.

One worker task per notifier, so a dead webhook never holds up email. Within a notifier
alerts go out in submit order: a failing alert blocks those behind it (head-of-line) until
it is delivered or given up. Delivery is at-least-once: an alert sent just before a crash
but not yet marked delivered is sent again by the next process.

Rate limit (per notifier, `rate` a minute): a token bucket of `rate` tokens refilling
rate/60 per second. While tokens last each alert goes out alone; when the bucket is empty
the worker waits for one token and sends everything due in one `send([...])` (a digest),
so a storm costs one message per token and nothing waits longer than one token interval.

Times (ages, `next_at`, the bucket) come from the injected `clock`; waiting is real
`asyncio.sleep`, cut into slices of at most `MAX_SLEEP_S` so a clock that jumps (NTP,
tests) is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshmon.alerts.model import Alert
from meshmon.alerts.notifiers.base import DeliveryError, Notifier
from meshmon.alerts.store import AlertStore
from meshmon.storage.database import StorageError
from meshmon.tasks import spawn

log = logging.getLogger(__name__)

MAX_SLEEP_S = 1.0
INBOX_MAX = 10_000
"""submitted alerts waiting to be persisted; more are dropped (and counted)"""


@dataclass(slots=True)
class _Item:
    """One queued delivery, in memory."""

    id: int | None
    """the store's delivery id; None when persisting failed (sent, but not across restarts)"""
    alert: Alert
    recipient: str | None
    created_at: float
    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""
    outcome: str = ""
    """"sent" or the reason it was given up, once it is (its row may come later)"""


class TokenBucket:
    """`rate` tokens a minute, at most `rate` saved up; times are the caller's clock."""

    def __init__(self, rate: int, now: float) -> None:
        self.rate = rate
        self.tokens = float(rate)
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)  # a clock stepping back refills nothing
        self.tokens = min(float(self.rate), self.tokens + elapsed * self.rate / 60.0)
        self.updated = now

    def available(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        """Use one token if there is one."""
        if not self.available(now):
            return False
        self.tokens -= 1.0
        return True

    def wait_s(self, now: float) -> float:
        """Seconds until one token is available."""
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) * 60.0 / self.rate)


@dataclass(slots=True)
class _Lane:
    """One notifier's queue, worker and counters."""

    name: str
    notifier: Notifier
    bucket: TokenBucket | None
    items: deque[_Item] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    incoming: int = 0
    """submitted, not yet persisted (already in `items`)"""
    task: asyncio.Task[None] | None = None
    delivered: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    digests: int = 0


class Dispatcher:
    """Persists, sends, retries and rate-limits notifications, one worker per notifier.

    The store and the notifiers belong to the caller (started before, closed after)."""

    def __init__(
        self,
        store: AlertStore,
        notifiers: Mapping[str, Notifier],
        rates: Mapping[str, int],
        clock: Callable[[], float] = time.time,
        retry_base_s: float = 1.0,
        retry_max_s: float = 300.0,
        give_up_after_s: float = 72 * 3600,
    ) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.rates = dict(rates)
        self.clock = clock
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.give_up_after_s = give_up_after_s
        now = clock()
        self._lanes: dict[str, _Lane] = {}
        for name, notifier in self.notifiers.items():
            rate = self.rates.get(name, 0)
            bucket = TokenBucket(rate, now) if rate > 0 else None
            self._lanes[name] = _Lane(name, notifier, bucket)
        self._inbox: asyncio.Queue[tuple[_Lane, _Item, dict[str, Any] | None]] = (
            asyncio.Queue(maxsize=INBOX_MAX)
        )
        """alerts to write to the delivery queue (their payload), and sent ones (None)"""
        self._row_updates = 0
        """sent alerts whose row is not yet marked"""
        self._persister: asyncio.Task[None] | None = None
        self._closed = False
        self._unknown: dict[str, int] = {}
        """drops for notifier names that are not configured"""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Queue what an earlier process left undelivered, then start the workers."""
        now = self.clock()
        kept: dict[str, int] = {}
        for row in await self.store.pending_deliveries():
            lane = self._lanes.get(row.notifier)
            if lane is None and now - row.created_at < self.give_up_after_s:
                # its notifier may come back with the next config: keep the row until then
                kept[row.notifier] = kept.get(row.notifier, 0) + 1
                continue
            try:
                if lane is None:
                    raise LookupError(f"notifier {row.notifier!r} is not configured")
                alert = Alert.from_payload(row.payload)
            except Exception as exc:
                log.warning("delivery %d via %s dropped at start: %s", row.id, row.notifier, exc)
                self._count_drop(row.notifier)
                await self.store.drop_delivery(row.id, f"cannot resend: {exc}")
                continue
            lane.items.append(
                _Item(row.id, alert, row.recipient, row.created_at, row.attempts, row.next_at)
            )
        for name, n in kept.items():
            log.warning("%d undelivered alerts for unconfigured notifier %s kept", n, name)
        for lane in self._lanes.values():
            lane.task = spawn(self._work(lane), f"notify-{lane.name}")
            if lane.items:
                lane.wake.set()
        self._persister = spawn(self._persist(), "notify-persist")

    def submit(self, notifier: str, alert: Alert, recipient: str | None = None) -> None:
        """Queue `alert` for `notifier` (never blocks, never raises; drops are counted)."""
        try:
            lane = self._lanes.get(notifier)
            if lane is None or self._closed:
                reason = "dispatcher is closed" if self._closed else "unknown notifier"
                log.warning("alert %s for %s dropped: %s", alert.id, notifier, reason)
                self._count_drop(notifier)
                return
            payload = alert.to_payload()
            now = self.clock()
            item = _Item(None, alert, recipient, now, 0, now)
            try:
                self._inbox.put_nowait((lane, item, payload))
            except asyncio.QueueFull:
                log.warning("alert %s for %s dropped: delivery inbox full", alert.id, notifier)
                lane.dropped += 1
                return
            lane.incoming += 1
            lane.items.append(item)
            lane.wake.set()
        except Exception:
            log.exception("alert for %s dropped: cannot queue", notifier)

    async def close(self) -> None:
        """Stop the workers; what is not delivered stays in the store for the next start."""
        self._closed = True
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lane in self._lanes.values():
            lane.task = None
        if self._persister is not None:
            # alerts submitted but not yet persisted are written before we stop (unless
            # the persister is gone: its owner stopped after a failure)
            if not self._persister.done():
                await self._inbox.join()
            self._persister.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._persister
            self._persister = None

    async def drain(self, timeout: float) -> bool:
        """Wait until nothing is pending or in flight; False on timeout (for tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._row_updates or any(lane.items or lane.incoming
                                       for lane in self._lanes.values()):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def stats(self) -> dict[str, dict[str, float]]:
        """Per notifier: pending, delivered, failed_attempts, dropped, digests."""
        out = {
            name: {
                "pending": float(len(lane.items)),
                "delivered": float(lane.delivered),
                "failed_attempts": float(lane.failed_attempts),
                "dropped": float(lane.dropped),
                "digests": float(lane.digests),
            }
            for name, lane in self._lanes.items()
        }
        for name, n in self._unknown.items():
            out[name] = {
                "pending": 0.0, "delivered": 0.0, "failed_attempts": 0.0,
                "dropped": float(n), "digests": 0.0,
            }  # fmt: skip
        return out

    # ------------------------------------------------------------------ internals
    def _count_drop(self, notifier: str) -> None:
        lane = self._lanes.get(notifier)
        if lane is not None:
            lane.dropped += 1
        else:
            self._unknown[notifier] = self._unknown.get(notifier, 0) + 1

    def _backoff_s(self, attempts: int) -> float:
        return float(min(self.retry_max_s, self.retry_base_s * 2 ** (attempts - 1)))

    async def _persist(self) -> None:
        """Write submitted alerts to the store in submit order, and what happened to them
        (sent, failed, given up) to their row; a lane never waits for the store to send
        the next alert (SQLite may be busy with a second of samples)."""
        while True:
            lane, item, payload = await self._inbox.get()
            try:
                if payload is not None:  # (None: sent, only its row to mark)
                    item.id = await self.store.enqueue_delivery(
                        lane.name, payload, item.recipient, item.created_at)
                await self._catch_up_row(item)
            except StorageError as exc:  # e.g. the disk is full: send it all the same
                what = ("sent, but its row is not marked (a restart sends it again)"
                        if payload is None else
                        "not persisted: sent from memory, but not again after a restart")
                log.warning("alert %s for %s %s: %s", item.alert.id, lane.name, what, exc)
            except Exception:
                # still sent from memory: better once than never; only a restart loses it
                log.exception("alert %s for %s not persisted", item.alert.id, lane.name)
            finally:
                if payload is None:
                    self._row_updates -= 1
                else:
                    lane.incoming -= 1
                self._inbox.task_done()

    async def _catch_up_row(self, item: _Item) -> None:
        """A row written after its alert was sent, failed or given up: say so in it."""
        assert item.id is not None
        if item.outcome == "sent":
            await self.store.mark_delivered([item.id], self.clock())
        elif item.outcome:
            await self.store.drop_delivery(item.id, item.outcome)
        elif item.attempts:
            await self.store.mark_failed(item.id, item.attempts, item.next_at, item.last_error)

    async def _work(self, lane: _Lane) -> None:
        while True:
            try:
                await self._step(lane)
            except asyncio.CancelledError:
                raise
            except StorageError as exc:
                # the rows are still queued in memory: try again a little later
                log.warning("delivery via %s: cannot update the delivery queue: %s",
                            lane.name, exc)
                await asyncio.sleep(max(self.retry_base_s, 0.1))
            except Exception:
                log.exception("delivery worker for %s", lane.name)
                await asyncio.sleep(max(self.retry_base_s, 0.1))

    async def _step(self, lane: _Lane) -> None:
        """One decision: wait, give up on the head, or send the head (or a digest)."""
        if not lane.items:
            lane.wake.clear()
            await lane.wake.wait()
            return
        head = lane.items[0]
        now = self.clock()
        if now - head.created_at >= self.give_up_after_s:
            await self._give_up(lane, head, now)
            return
        if head.next_at > now:
            # a clock stepped back must not stretch a retry past the longest backoff
            head.next_at = min(head.next_at, now + self.retry_max_s)
            await asyncio.sleep(min(head.next_at - now, MAX_SLEEP_S))
            return
        bucket = lane.bucket
        if bucket is None or bucket.take(now):
            await self._send(lane, [head])
            return
        while not bucket.take(self.clock()):
            await asyncio.sleep(min(bucket.wait_s(self.clock()), MAX_SLEEP_S))
        # a digest goes to one addressee: the head's (order is kept per addressee)
        now = self.clock()
        behind = itertools.islice(lane.items, 1, None)
        batch = [head]
        batch += (i for i in behind if i.next_at <= now and i.recipient == head.recipient)
        await self._send(lane, batch)

    async def _send(self, lane: _Lane, batch: list[_Item]) -> None:
        try:
            await lane.notifier.send([item.alert for item in batch], batch[0].recipient)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(lane, batch, exc)
            return
        if len(batch) == 1:
            lane.items.popleft()
        else:
            sent = {id(item) for item in batch}
            lane.items = deque(item for item in lane.items if id(item) not in sent)
        lane.delivered += len(batch)
        if len(batch) > 1:
            lane.digests += 1
        for item in batch:
            item.outcome = "sent"
            if item.id is not None:  # (a row not yet written says so when it is)
                self._row_updates += 1
                try:
                    self._inbox.put_nowait((lane, item, None))
                except asyncio.QueueFull:
                    self._row_updates -= 1
                    log.warning("delivery via %s: alert %s sent, but its row is not marked "
                                "(a restart sends it again)", lane.name, item.alert.id)

    async def _failed(self, lane: _Lane, batch: list[_Item], exc: Exception) -> None:
        error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        now = self.clock()
        head = batch[0]
        head.attempts += 1
        delay = self._backoff_s(head.attempts)
        lane.failed_attempts += 1
        log.warning(
            "delivery via %s failed: alert %s, attempt %d: %s (retry in %.1fs)",
            lane.name, ", ".join(item.alert.id for item in batch), head.attempts, error, delay,
        )  # fmt: skip
        for item in batch:
            if item is not head:
                item.attempts += 1
            item.next_at = now + delay
            item.last_error = error
            if item.id is not None:
                await self.store.mark_failed(item.id, item.attempts, item.next_at, error)

    async def _give_up(self, lane: _Lane, item: _Item, now: float) -> None:
        age_h = (now - item.created_at) / 3600
        reason = f"gave up after {item.attempts} attempts in {age_h:.1f}h: {item.last_error}"
        log.warning("delivery via %s dropped: alert %s, %s", lane.name, item.alert.id, reason)
        item.outcome = reason
        lane.items.popleft()
        lane.dropped += 1
        if item.id is not None:
            await self.store.drop_delivery(item.id, reason)
