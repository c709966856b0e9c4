"""Writers' status messages and who stands in for a dead writer (`meshmon.writer_standin`):
the decision, with the MQTT side replaced by a recorder (the integration tests
`tests/integration/test_roles.py` and `test_writer_standin.py` run it on Mosquitto)."""

from __future__ import annotations

import asyncio
import json
import math
from types import SimpleNamespace

import pytest

from meshmon import writer_standin
from meshmon.ingest.mqtt_packets import Will
from meshmon.writer_standin import (
    OFFLINE,
    ONLINE,
    StandIns,
    WriterStatus,
    adopter,
    parse_status,
    status_payload,
    status_topic,
)

PREFIX = "mesh/x"
GROUP = "writers"


def test_status_messages_round_trip_and_other_topics_are_left_alone() -> None:
    topic = status_topic(PREFIX, "w-1")
    assert topic == "mesh/x/v1/writer/w-1/status"
    assert parse_status(PREFIX, topic, status_payload(OFFLINE, GROUP)) == (
        "w-1", WriterStatus(OFFLINE, GROUP))
    assert parse_status(PREFIX, "mesh/x/v1/node/w-1/status", b"{}") is None
    assert parse_status(PREFIX, "mesh/x/v1/writer/a/b/status", b"{}") is None
    # cleared (empty retained message) or not understood: no status, never an exception
    assert parse_status(PREFIX, topic, b"") == ("w-1", None)
    for bad in (b"\xff<script>", b"[]", b'{"state": "dancing", "group": "writers"}',
                b'{"state": "online", "group": 7}'):
        assert parse_status(PREFIX, topic, bad) == ("w-1", None)


def test_the_lowest_client_id_online_in_the_group_stands_in() -> None:
    statuses = {"w-3": WriterStatus(ONLINE, GROUP), "w-1": WriterStatus(OFFLINE, GROUP),
                "w-2": WriterStatus(ONLINE, GROUP), "w-0": WriterStatus(ONLINE, "other"),
                "w-00": WriterStatus("stopped", GROUP)}
    assert adopter(statuses, GROUP) == "w-2"
    assert adopter(statuses, "other") == "w-0"
    assert adopter(statuses, "nobody") is None


class _Held:
    """What `MqttIngest.stand_in` returns, as far as `StandIns` uses it."""

    def __init__(self, client_id: str, will: Will | None) -> None:
        self.client_id, self.will = client_id, will
        self.ended = asyncio.Event()

    async def run(self) -> None:
        await self.ended.wait()


class _Ingest:
    def __init__(self) -> None:
        self.held: list[_Held] = []
        self.left: list[_Held] = []
        self.reports = SimpleNamespace(lost_at=-math.inf)

    def stand_in(self, client_id: str, will: Will | None) -> _Held:
        self.held.append(_Held(client_id, will))
        return self.held[-1]

    def leave(self, connection: _Held) -> None:
        self.left.append(connection)


def _stand_ins(me: str, ingest: _Ingest) -> StandIns:
    def spawn(coro, name):  # type: ignore[no-untyped-def]
        return asyncio.get_running_loop().create_task(coro, name=name)
    return StandIns(ingest, me, GROUP, PREFIX, spawn)  # type: ignore[arg-type]


def _group_of(me: str, monkeypatch: pytest.MonkeyPatch, adopt_after_s: float = 0.05
              ) -> tuple[_Ingest, StandIns]:
    """A writer `me` on a recording ingest, standing in after `adopt_after_s`."""
    monkeypatch.setattr(writer_standin, "ADOPT_AFTER_S", adopt_after_s)
    ingest = _Ingest()
    return ingest, _stand_ins(me, ingest)


def _say(stand_ins: StandIns, client_id: str, state: str, group: str = GROUP) -> None:
    assert stand_ins.on_message(status_topic(PREFIX, client_id), status_payload(state, group))


async def test_a_writer_gone_for_the_grace_is_stood_in_for_once_and_let_go_at_stop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ingest, mine = _group_of("w-1", monkeypatch)
    _say(mine, "w-1", ONLINE)
    _say(mine, "w-2", ONLINE)
    _say(mine, "w-3", OFFLINE)
    _say(mine, "w-3", OFFLINE)  # said twice (a retained copy): still one stand-in
    await asyncio.sleep(0.2)
    assert [h.client_id for h in ingest.held] == ["w-3"]
    will = ingest.held[0].will
    assert will is not None and will.topic == status_topic(PREFIX, "w-3")
    assert json.loads(will.payload) == {"state": OFFLINE, "group": GROUP}
    assert set(mine.active) == {"w-3"} and mine.started == 1

    # w-3 back: it takes its session over, the stand-in ends and is not taken up again
    held = ingest.held[0]
    held.ended.set()
    _say(mine, "w-3", OFFLINE)  # the stand-in connection's will, sent at the takeover
    _say(mine, "w-3", ONLINE)
    await asyncio.sleep(0.2)
    assert ingest.left == [held] and not mine.active and len(ingest.held) == 1

    # gone again; this writer stops: it lets go of the session (the others see it stopped)
    _say(mine, "w-3", OFFLINE)
    await asyncio.sleep(0.2)
    assert len(ingest.held) == 2
    await mine.stop()
    assert not mine.active and ingest.left[-1] is ingest.held[-1]


async def test_no_stand_in_for_a_writer_back_within_the_grace_nor_by_a_writer_not_chosen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ingest, mine = _group_of("w-2", monkeypatch)
    for cid in ("w-1", "w-2", "w-3"):
        _say(mine, cid, ONLINE)
    _say(mine, "w-3", OFFLINE)  # w-1 is online and lower: it stands in, not us
    _say(mine, "w-4", OFFLINE, group="other")  # another group's writer
    await asyncio.sleep(0.2)
    assert ingest.held == []
    _say(mine, "w-1", "stopped")
    _say(mine, "w-1", OFFLINE)  # lost its connection …
    _say(mine, "w-1", ONLINE)  # … and was back within the grace
    await asyncio.sleep(0.2)
    assert ingest.held == []
    _say(mine, "w-3", OFFLINE)  # w-1 is online again, still the one to stand in
    _say(mine, "w-1", "stopped")  # but it stops: now we are the lowest online
    await asyncio.sleep(0.2)
    assert [h.client_id for h in ingest.held] == ["w-3"]
    await mine.stop()


async def test_a_stand_in_lost_at_once_again_and_again_is_given_up_unless_its_writer_was_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ingest, mine = _group_of("w-1", monkeypatch, 0.02)
    _say(mine, "w-1", ONLINE)
    _say(mine, "w-2", OFFLINE)

    async def lose_the_session(count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(0.1)
            ingest.held[-1].ended.set()  # lost at once (no `online` from w-2)
        await asyncio.sleep(0.1)

    # w-2 crash-looping: back (online) between the stand-ins, which keep coming
    for _ in range(4):
        await lose_the_session(1)
        _say(mine, "w-2", ONLINE)
        _say(mine, "w-2", OFFLINE)
    await asyncio.sleep(0.1)
    assert len(ingest.held) == 5 and set(mine.active) == {"w-2"}
    # lost again and again with w-2 never back: given up after SHORT_HOLDS_MAX
    await lose_the_session(writer_standin.SHORT_HOLDS_MAX)
    await asyncio.sleep(0.2)
    assert len(ingest.held) == 5 + writer_standin.SHORT_HOLDS_MAX - 1
    assert not mine.active
    await mine.stop()
