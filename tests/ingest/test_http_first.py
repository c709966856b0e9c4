"""HTTP before ingest (`meshmon.web.http_first`): while a request is under way the
reports' slices wait, within bounds that keep ingest going.

The gate's bounds are checked with a clock the test moves; what it does to a drain is
checked on real components — Mosquitto, the collector's MQTT ingest, an aiohttp site —
with an owner that takes 2 ms per report, as in `test_mqtt_slices.py`.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from pathlib import Path

from aiohttp import web

from meshmon.config import MqttConfig
from meshmon.ingest.mqtt import BrokerAddress, MqttIngest, RawMessage
from meshmon.web.http_first import HttpFirst, HttpFirstSite, install
from tests import servers
from tests.integration.harness import Publisher

WORK_S = 0.002
"""the owner's time per report (a slice of 8 ms holds 4)"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_request_under_way_holds_the_drain_but_lets_a_slice_through_every_hold_max() -> None:
    clock = Clock()
    gate = HttpFirst(clock, hold_max_s=0.05)
    assert not gate.holds()
    request = object()
    gate.started(request)
    assert gate.holds() and gate.waits == 1
    clock.now += 0.049
    assert gate.holds()
    clock.now += 0.002  # waited 51 ms: one slice runs, whole
    assert not gate.holds()
    assert not gate.knocking()
    assert gate.holds() and gate.waits == 2  # then the request holds again
    gate.answered(request)
    assert not gate.holds()
    gate.answered(request)  # answered twice (a streamed answer, then its handler's end)
    assert not gate.holds()


async def test_a_tick_waits_for_the_answers_under_way_and_at_most_hold_max() -> None:
    gate = HttpFirst()
    assert await gate.after_answers() == 0.0  # nothing under way: no wait at all
    request = object()
    gate.started(request)
    assert gate.answering()
    waited = await gate.after_answers(0.05)  # the request goes on: the tick goes anyway
    assert 0.05 <= waited < 1.0, waited
    asyncio.get_running_loop().call_later(0.03, gate.answered, request)
    waited = await gate.after_answers(5.0)  # answered after 30 ms: the tick goes then
    assert 0.03 <= waited < 2.0, waited
    assert not gate.answering()
    gate.opened()  # a connection accepted, its request not read yet: it counts too
    assert gate.answering()


def test_a_flood_of_requests_holds_the_drain_at_most_half_of_each_second() -> None:
    clock = Clock()
    gate = HttpFirst(clock)
    gate.started(object())  # one request after another: always one under way
    waited = sliced = 0.0
    end = clock.now + 3.0
    while clock.now < end:
        if gate.holds():
            clock.now += 0.002  # the drain looks again in 2 ms
            waited += 0.002
        else:
            clock.now += 0.008  # a slice of reports
            sliced += 0.008
    # without the share, a slice would run once per 50 ms wait: 14 % of the time
    assert 0.45 <= sliced / (waited + sliced) <= 0.6, (waited, sliced)
    assert gate.refused > 0


def test_a_connection_waiting_to_be_accepted_holds_the_drain_for_a_while() -> None:
    clock = Clock()
    gate = HttpFirst(clock, hold_max_s=10, new_connection_s=0.05)
    with socket.create_server(("127.0.0.1", 0)) as listening:
        gate.listen([listening])
        assert not gate.holds() and not gate.knocking()
        with socket.create_connection(listening.getsockname()[:2]):
            assert not gate.knocking()  # looked 0 ms ago (at most every 2 ms)
            clock.now += 0.002
            assert gate.knocking()  # a slice under way ends
            assert gate.holds()
            conn, _ = listening.accept()
            with conn:
                clock.now += 0.04  # accepted, no request yet: it still holds
                assert gate.holds()
                clock.now += 0.02  # no request within 50 ms: it holds no longer
                assert not gate.holds()
                gate.opened()  # the site saw the same connection (another one, here)
                assert gate.holds()
                gate.started(object())  # its request reached a handler
                clock.now += 0.3
                assert gate.holds()


class Drain:
    """The collector's ingest on real Mosquitto, with an owner that takes WORK_S per
    report and notes when each batch was handed over."""

    def __init__(self, mosquitto: servers.Server, name: str, gate: HttpFirst) -> None:
        self.handed: list[tuple[float, int]] = []
        self.done = asyncio.Event()
        self.expected = 0
        config = MqttConfig(broker="external", port=mosquitto.port, client_id=name[:40],
                            persistent_session=False)
        self.ingest = MqttIngest(config, BrokerAddress("127.0.0.1", mosquitto.port),
                                 self._on_reports, lambda _batch: None,
                                 yield_to=gate.holds, knocking=gate.knocking)
        self.port = mosquitto.port

    def _on_reports(self, batch: list[RawMessage]) -> None:
        self.handed.append((time.monotonic(), len(batch)))
        time.sleep(WORK_S * len(batch))  # the owner's work: it holds the loop meanwhile
        self.ingest.ack([message[3] for message in batch])  # stored, as the collector says
        if sum(n for _, n in self.handed) >= self.expected:
            self.done.set()

    async def backlog(self, reports: int) -> None:
        """Publish `reports` at once (the broker has them all when this returns)."""
        self.expected = reports
        pub = Publisher(self.port)

        def publish() -> None:
            sent = [pub.client.publish(f"meshmon/v1/node/n{i % 7}/report", b"{}", qos=1)
                    for i in range(reports)]
            for info in sent:
                info.wait_for_publish(10)
            assert all(info.is_published() for info in sent)

        try:
            await asyncio.to_thread(publish)
        finally:
            pub.close()

    def between(self, start: float, end: float) -> int:
        """Reports whose batch was handed over within (start, end)."""
        return sum(n for t, n in self.handed if start < t < end)


async def serve(app: web.Application, gate: HttpFirst) -> tuple[web.AppRunner, str]:
    install(app, gate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = HttpFirstSite(runner, "127.0.0.1", 0, gate)
    await site.start()
    return runner, f"http://127.0.0.1:{site.sockets[0].getsockname()[1]}"


def timed_gets(url: str, count: int) -> list[tuple[float, float]]:
    """(sent, answered) of `count` GETs one after another, each on a new connection."""
    times = []
    for _ in range(count):
        sent = time.monotonic()
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.read() == b"pong"
        times.append((sent, time.monotonic()))
    return times


async def test_a_request_is_answered_before_the_next_slice_of_a_backlog(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    gate = HttpFirst(hold_max_s=5)  # no slice may run in between, however slow the machine

    async def pong(_request: web.Request) -> web.Response:
        return web.Response(text="pong")

    app = web.Application()
    app.router.add_get("/ping", pong)
    runner, url = await serve(app, gate)
    drain = Drain(mosquitto, f"first-{tmp_path.name}", gate)
    task = asyncio.create_task(drain.ingest.run())
    try:
        await asyncio.wait_for(drain.ingest.connected.wait(), 10)
        await drain.backlog(3000)  # 6 s of the owner's work
        times = await asyncio.to_thread(timed_gets, url + "/ping", 10)
        still_draining = not drain.done.is_set()
        await asyncio.wait_for(drain.done.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
    assert still_draining, "the backlog was drained before the requests ended"
    assert sum(n for _, n in drain.handed) == 3000  # ingest carried on between requests
    # a batch under way when a request comes ends (≤ 4 reports, 8 ms); after that no
    # report is handed over until the answer has left. Without the gate each of the
    # request's ~6 turns of the loop runs a slice of 8 ms.
    handed_meanwhile = [drain.between(sent + 0.02, answered) for sent, answered in times]
    assert handed_meanwhile == [0] * 10, handed_meanwhile
    assert gate.waits >= 1


async def test_a_long_request_and_a_streamed_answer_do_not_stop_ingest(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    gate = HttpFirst()  # waits at most 50 ms in a row
    seen: dict[str, float | bool] = {}

    async def slow(_request: web.Request) -> web.Response:
        seen["slow_from"] = time.monotonic()
        await asyncio.sleep(0.5)  # e.g. a history read in another thread
        seen["slow_to"] = time.monotonic()
        return web.Response(text="pong")

    async def stream(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        seen["held_before_headers"] = gate.holds()
        await answer.prepare(request)
        seen["held_after_headers"] = gate.holds()
        seen["stream_from"] = time.monotonic()
        await asyncio.sleep(0.5)
        seen["stream_to"] = time.monotonic()
        await answer.write(b"data: pong\n\n")
        return answer

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/stream", stream)
    runner, url = await serve(app, gate)
    drain = Drain(mosquitto, f"long-{tmp_path.name}", gate)
    task = asyncio.create_task(drain.ingest.run())

    def get(path: str) -> bytes:
        with urllib.request.urlopen(url + path, timeout=10) as answer:
            return answer.read()

    try:
        await asyncio.wait_for(drain.ingest.connected.wait(), 10)
        await drain.backlog(3000)  # 6 s of the owner's work
        assert await asyncio.to_thread(get, "/slow") == b"pong"
        assert await asyncio.to_thread(get, "/stream") == b"data: pong\n\n"
        await asyncio.wait_for(drain.done.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
    assert seen["held_before_headers"] is True and seen["held_after_headers"] is False
    # 0.5 s of a handler's wait: a slice at least every 50 ms (about 2 reports each at
    # least); a streamed answer does not hold the drain at all (~60 reports)
    during_slow = drain.between(float(seen["slow_from"]), float(seen["slow_to"]))
    during_stream = drain.between(float(seen["stream_from"]), float(seen["stream_to"]))
    assert during_slow >= 10, drain.handed
    assert during_stream >= 100, during_stream
    assert not gate.holds()
