"""Dispatcher against a real aiohttp receiver on loopback: order, retries, restarts, rates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from meshmon.alerts.delivery import Dispatcher
from meshmon.alerts.model import Alert
from meshmon.alerts.notifiers.base import DeliveryError, Notifier
from meshmon.alerts.store import AlertStore
from tests.integration.scripted_mesh import WebhookReceiver

NOW = 1_700_000_000.0
FAST: dict[str, Any] = {"retry_base_s": 0.02, "retry_max_s": 0.1}


def alert(name: str) -> Alert:
    return Alert(
        id=name,
        status="firing",
        kind="outage",
        severity="critical",
        summary=f"{name}: node down, SECRET-SUMMARY",
        started_at=NOW - 600,
        cause_nodes=[name],
        sent_at=NOW,
    )


class Receiver(WebhookReceiver):
    """The integration tests' webhook receiver, recording what HttpNotifier posts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        """alert ids of each POST, in arrival order"""
        self.recipients: list[str | None] = []

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append([a["id"] for a in body["alerts"]])
        self.recipients.append(body["recipient"])
        return web.json_response({"ok": True})


class HttpNotifier:
    """Like the webhook notifier: one POST per send, the payloads of all alerts in it."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alerts: Sequence[Alert], recipient: str | None = None) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                timeout=aiohttp.ClientTimeout(total=5),
            )
        body = {"recipient": recipient, "alerts": [a.to_payload() for a in alerts]}
        try:
            async with self._session.post(self.url, json=body) as r:
                if r.status >= 300:
                    raise DeliveryError(f"HTTP {r.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class BuggyNotifier(HttpNotifier):
    """Raises a non-DeliveryError for the first `failures` sends (a bug, not an outage)."""

    def __init__(self, name: str, url: str, failures: int) -> None:
        super().__init__(name, url)
        self.failures = failures

    async def send(self, alerts: Sequence[Alert], recipient: str | None = None) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise KeyError("template field missing")
        await super().send(alerts, recipient)


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll `predicate` until true (fails the test after `timeout` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver that is NOT started: tests start it when the webhook should be up."""
    r = Receiver()
    yield r
    await r.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    s = AlertStore(tmp_path / "meshmon.sqlite")
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    """Dispatchers and notifiers appended here are closed after the test."""
    owned: list[Any] = []
    yield owned
    for thing in reversed(owned):
        await thing.close()


def dispatcher(
    closing: list[Any], store: AlertStore, notifiers: dict[str, Notifier], **kw: Any
) -> Dispatcher:
    rates = kw.pop("rates", {})
    d = Dispatcher(store, notifiers, rates, **kw)
    closing.extend(notifiers.values())
    closing.append(d)
    return d


async def test_sends_at_once_in_submit_order(
    store: AlertStore, receiver: Receiver, closing: list[Any]
) -> None:
    await receiver.start()
    d = dispatcher(closing, store, {"hook": HttpNotifier("hook", receiver.url)})
    d.submit("hook", alert("a0"))  # before start: queued, sent once started
    await d.start()
    d.submit("hook", alert("a1"))
    d.submit("hook", alert("a2"), recipient="owner@example.org")
    d.submit("hook", alert("a3"))
    assert await d.drain(15)
    assert receiver.calls == [["a0"], ["a1"], ["a2"], ["a3"]]
    assert receiver.recipients == [None, None, "owner@example.org", None]
    assert await store.pending_deliveries() == []
    stats = d.stats()["hook"]
    assert (stats["delivered"], stats["pending"], stats["failed_attempts"]) == (4, 0, 0)
    assert [r["delivered_at"] is not None for r in await store.deliveries()] == [True] * 4


async def test_receiver_down_then_up_retries_in_order_exactly_once(
    store: AlertStore, receiver: Receiver, closing: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshmon.alerts.delivery")
    email = Receiver()
    await email.start()
    try:
        d = dispatcher(
            closing, store,
            {"hook": HttpNotifier("hook", receiver.url), "email": HttpNotifier("email", email.url)},
            **FAST,
        )  # fmt: skip
        await d.start()
        for i in range(5):
            d.submit("hook", alert(f"h{i}"))
            d.submit("email", alert(f"e{i}"))

        # the dead webhook is retried with backoff and does not hold up email
        await until(lambda: d.stats()["hook"]["failed_attempts"] >= 3)
        await until(lambda: len(email.calls) == 5)
        assert email.calls == [[f"e{i}"] for i in range(5)]
        assert receiver.calls == []
        assert not await d.drain(0.1)
        pending = await store.pending_deliveries()
        assert [p.payload["id"] for p in pending] == [f"h{i}" for i in range(5)]
        assert pending[0].attempts >= 1 and pending[1].attempts == 0  # head-of-line

        await receiver.start()
        assert await d.drain(15)
        assert receiver.calls == [[f"h{i}"] for i in range(5)]
        assert await store.pending_deliveries() == []
        assert d.stats()["hook"]["delivered"] == 5
    finally:
        await email.stop()

    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures and all("hook" in m and "h0" in m for m in failures)
    assert "attempt 1:" in failures[0]
    assert not any("SECRET-SUMMARY" in m for m in failures)  # the payload is not logged


async def test_new_dispatcher_sends_what_the_old_one_did_not(
    tmp_path: Path, receiver: Receiver, closing: list[Any]
) -> None:
    path = tmp_path / "meshmon.sqlite"
    store1 = AlertStore(path)
    await store1.start()
    notifier1 = HttpNotifier("hook", receiver.url)
    d1 = Dispatcher(store1, {"hook": notifier1}, {}, **FAST)
    await d1.start()
    for i in range(3):
        d1.submit("hook", alert(f"a{i}"))
    await until(lambda: d1.stats()["hook"]["failed_attempts"] >= 1)
    d1.submit("hook", alert("a3"))  # not persisted yet: close() writes it
    await d1.close()
    await notifier1.close()
    await store1.close()
    assert receiver.calls == []

    await receiver.start()
    store2 = AlertStore(path)
    await store2.start()
    closing.append(store2)
    d2 = dispatcher(closing, store2, {"hook": HttpNotifier("hook", receiver.url)}, **FAST)
    await d2.start()
    assert await d2.drain(15)
    assert receiver.calls == [["a0"], ["a1"], ["a2"], ["a3"]]
    assert await store2.pending_deliveries() == []


async def test_rate_limit_sends_singles_then_one_digest(
    store: AlertStore, receiver: Receiver, closing: list[Any]
) -> None:
    await receiver.start()
    clock = FakeClock()
    d = dispatcher(
        closing, store, {"hook": HttpNotifier("hook", receiver.url)},
        rates={"hook": 2}, clock=clock, **FAST,
    )  # fmt: skip
    await d.start()
    names = [f"a{i}" for i in range(6)]
    for name in names:
        d.submit("hook", alert(name))

    await until(lambda: len(receiver.calls) == 2)
    while len(await store.pending_deliveries()) != 4:  # all persisted: in the worker's queue
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # no token has come back: nothing more may go out
    assert receiver.calls == [["a0"], ["a1"]]

    clock.now += 30  # one token at 2 a minute
    await until(lambda: len(receiver.calls) == 3)
    assert receiver.calls == [["a0"], ["a1"], ["a2", "a3", "a4", "a5"]]
    assert await d.drain(5)
    stats = d.stats()["hook"]
    assert (stats["delivered"], stats["digests"], stats["pending"]) == (6, 1, 0)
    assert await store.pending_deliveries() == []


async def test_unknown_notifier_is_dropped_and_counted(
    store: AlertStore, receiver: Receiver, closing: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshmon.alerts.delivery")
    await receiver.start()
    d = dispatcher(closing, store, {"hook": HttpNotifier("hook", receiver.url)})
    await d.start()
    d.submit("nope", alert("a1"))
    d.submit("hook", alert("a2"))
    assert await d.drain(15)
    assert d.stats()["nope"]["dropped"] == 1
    assert d.stats()["hook"]["dropped"] == 0
    assert receiver.calls == [["a2"]]
    assert len(await store.deliveries()) == 1
    assert any("nope" in r.getMessage() and "a1" in r.getMessage() for r in caplog.records)


async def test_a_notifier_bug_is_retried_and_the_worker_survives(
    store: AlertStore, receiver: Receiver, closing: list[Any]
) -> None:
    await receiver.start()
    d = dispatcher(closing, store, {"hook": BuggyNotifier("hook", receiver.url, 2)}, **FAST)
    await d.start()
    d.submit("hook", alert("a1"))
    d.submit("hook", alert("a2"))
    assert await d.drain(15)
    assert receiver.calls == [["a1"], ["a2"]]
    assert d.stats()["hook"]["failed_attempts"] == 2
    d.submit("hook", alert("a3"))
    assert await d.drain(15)
    assert receiver.calls[-1] == ["a3"]


async def test_gives_up_after_give_up_after_s(
    store: AlertStore, receiver: Receiver, closing: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshmon.alerts.delivery")
    clock = FakeClock()
    d = dispatcher(
        closing, store, {"hook": HttpNotifier("hook", receiver.url)},
        clock=clock, give_up_after_s=3600, **FAST,
    )  # fmt: skip
    await d.start()
    d.submit("hook", alert("a1"))
    d.submit("hook", alert("a2"))
    await until(lambda: d.stats()["hook"]["failed_attempts"] >= 1)
    assert d.stats()["hook"]["dropped"] == 0

    clock.now += 3601
    await until(lambda: d.stats()["hook"]["dropped"] == 2)
    assert await store.pending_deliveries() == []
    reasons = [r["drop_reason"] for r in await store.deliveries()]
    assert all(reason.startswith("gave up") for reason in reasons)
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert any("hook" in m and "a1" in m for m in dropped)
    assert any("hook" in m and "a2" in m for m in dropped)

    # the worker goes on with new alerts
    await receiver.start()
    d.submit("hook", alert("a3"))
    assert await d.drain(15)
    assert receiver.calls == [["a3"]]


async def test_rows_of_a_notifier_no_longer_configured(
    store: AlertStore, receiver: Receiver, closing: list[Any]
) -> None:
    clock = FakeClock()
    await store.enqueue_delivery("gone", alert("old").to_payload(), None, NOW - 73 * 3600)
    recent = await store.enqueue_delivery("gone", alert("new").to_payload(), None, NOW - 60)
    d = dispatcher(closing, store, {"hook": HttpNotifier("hook", receiver.url)}, clock=clock)
    await d.start()
    # too old to ever send: dropped; recent: kept for when the notifier is configured again
    assert d.stats()["gone"]["dropped"] == 1
    assert [p.id for p in await store.pending_deliveries()] == [recent]
