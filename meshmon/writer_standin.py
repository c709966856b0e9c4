"""Writers stand in for a sibling that died, so its share of the reports is not left queued.

A writer's persistent session holds its turn in the shared subscription. Killed (SIGKILL,
OOM, power cut), it leaves that session behind, and Mosquitto 2.0 keeps giving the dead
member its turn: its share of new reports queues in the session, unstored, until it is
back. So every writer says on `PREFIX/v1/writer/CLIENT_ID/status` (retained, JSON
`{"state", "group"}`) that it is `online` when it connects and `stopped` when it stops
cleanly and leaves the group; its last will says `offline` when its connection dies
without a goodbye, and so does the last writer of a group online when it stops cleanly
(it keeps its session, where the broker queues the group's reports, so that a writer
started later, under any client id, stands in for it).

When a writer of our group is `offline` and still is `ADOPT_AFTER_S` later (a writer that
only lost its connection is back by then and says `online` again), the writer with the
lowest client id among those `online` in the group takes the dead writer's session over
(`MqttIngest.stand_in`: its client id, the session resumed). What had queued there, and
the dead writer's turn from then on, come to the stand-in, and are written and
acknowledged like its own reports. The stand-in connection carries the dead writer's will,
so if the stand-in dies too, the next writer takes over. When the dead writer comes back
with its client id it takes its session back (the broker ends the stand-in's connection)
and the stand-in ends. Whenever a writer of the group goes `offline` or `stopped`
(perhaps the one that stood in), the others look again at every writer that is gone, so
a stand-in that stops hands the sessions it held on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from meshmon.ingest.mqtt import MqttIngest
from meshmon.ingest.mqtt_client import MqttConnection
from meshmon.ingest.mqtt_packets import Will

log = logging.getLogger(__name__)

ADOPT_AFTER_S = 3.0
"""how long a writer must stay `offline` before another stands in for it"""
SELF_TAKEOVER_S = 2.0
"""our own connection lost this soon after a stand-in started: the stand-in has our session"""
SHORT_HOLD_S = 10.0
SHORT_HOLDS_MAX = 3
"""a session lost this many times in a row within SHORT_HOLD_S of taking it: give up on it"""
ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"
STATES = (ONLINE, OFFLINE, STOPPED)


@dataclass(frozen=True, slots=True)
class WriterStatus:
    state: str
    group: str


def status_topic(prefix: str, client_id: str) -> str:
    return f"{prefix}/v1/writer/{client_id}/status"


def status_filter(prefix: str) -> str:
    return status_topic(prefix, "+")


def status_payload(state: str, group: str) -> bytes:
    return json.dumps({"state": state, "group": group}).encode()


def parse_status(prefix: str, topic: str, payload: bytes
                 ) -> tuple[str, WriterStatus | None] | None:
    """(client id, its status; None: cleared or not understood) of a writer status message,
    or None when the topic is not one."""
    head, tail = f"{prefix}/v1/writer/", "/status"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    client_id = topic[len(head):-len(tail)]
    if not client_id or "/" in client_id:
        return None
    try:
        data = json.loads(payload) if payload else None
    except ValueError:
        data = None
    if not (isinstance(data, dict) and data.get("state") in STATES
            and isinstance(data.get("group"), str)):
        if payload:
            log.warning("writer status of %s not understood: %.80r", client_id, payload)
        return client_id, None
    return client_id, WriterStatus(data["state"], data["group"])


def adopter(statuses: Mapping[str, WriterStatus], group: str) -> str | None:
    """The writer that stands in for the group's dead ones: the lowest client id online."""
    online = [cid for cid, status in statuses.items()
              if status.state == ONLINE and status.group == group]
    return min(online) if online else None


Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class StandIns:
    """One writer's view of its group, and the sessions it holds for dead siblings."""

    def __init__(self, ingest: MqttIngest, me: str, group: str, prefix: str,
                 spawn: Spawn, enabled: bool = True) -> None:
        self.ingest, self.me, self.group, self.prefix = ingest, me, group, prefix
        self.spawn = spawn
        self.enabled = enabled
        """False (`[roles] stand_in = false`, or the broker gave a stand-in our own
        session): this writer stands in for nobody"""
        self.statuses: dict[str, WriterStatus] = {}
        """client id → status, of this writer's group only"""
        self.active: dict[str, MqttConnection] = {}
        """client id → the connection holding its session"""
        self.started = 0
        """stand-ins started since this writer started"""
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._short: dict[str, int] = {}
        """client id → stand-ins for it in a row that ended within SHORT_HOLD_S, with no
        `online` from it in between (two stand-ins fighting over it, a broker that hands
        the session elsewhere)"""
        self._stopping = False

    def will(self, client_id: str) -> Will:
        return Will(status_topic(self.prefix, client_id), status_payload(OFFLINE, self.group))

    def announce(self, state: str) -> tuple[str, bytes]:
        """Our own status message (topic, payload)."""
        return status_topic(self.prefix, self.me), status_payload(state, self.group)

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Take a message if it is a writer status (True), else leave it (False)."""
        parsed = parse_status(self.prefix, topic, payload)
        if parsed is None:
            return False
        client_id, status = parsed
        if status is None or status.group != self.group:  # cleared, or another group's
            self.statuses.pop(client_id, None)
            return True
        self.statuses[client_id] = status
        if status.state == ONLINE:
            self._short.pop(client_id, None)  # it was back: a stand-in cut short was right
            return True
        # one gone more (perhaps the one that was to stand in): look at every writer of
        # the group that is gone and not held here
        for cid, known in self.statuses.items():
            if known.state == OFFLINE and cid != self.me and cid not in self.active:
                self._look_again(cid)
        return True

    def others_online(self) -> bool:
        """Whether another writer of the group says it is online."""
        return any(status.state == ONLINE and cid != self.me
                   for cid, status in self.statuses.items())

    def _look_again(self, client_id: str) -> None:
        if self._stopping:
            return
        timer = self._timers.pop(client_id, None)
        if timer is not None:
            timer.cancel()
        self._timers[client_id] = asyncio.get_running_loop().call_later(
            ADOPT_AFTER_S, self._consider, client_id)

    def _consider(self, client_id: str) -> None:
        self._timers.pop(client_id, None)
        status = self.statuses.get(client_id)
        if (not self.enabled or self._stopping or status is None or status.state != OFFLINE
                or client_id in self.active or adopter(self.statuses, self.group) != self.me):
            return
        log.warning("writer %s is offline (its last will, or it stopped as the last of its "
                    "group); standing in for it: its share of the reports and what queued in "
                    "its session are written here until it is back", client_id)
        connection = self.ingest.stand_in(client_id, self.will(client_id))
        self.active[client_id] = connection
        self.started += 1
        self._tasks[client_id] = self.spawn(self._hold(client_id, connection),
                                            f"stand-in-{client_id}")

    async def _hold(self, client_id: str, connection: MqttConnection) -> None:
        own = self.ingest.reports
        started = time.monotonic()
        try:
            await connection.run()
        finally:
            self.ingest.leave(connection)
            self.active.pop(client_id, None)
            self._tasks.pop(client_id, None)
        if self._stopping:
            return
        held_s = time.monotonic() - started
        if started <= own.lost_at <= started + SELF_TAKEOVER_S:
            # our own connection fell the moment the stand-in connected: the broker gave
            # the stand-in our session (Mosquitto's use_username_as_clientid makes every
            # client id the login's name; it closes the old connection without a word)
            self.enabled = False
            log.warning("standing in for writer %s took this writer's own MQTT session over: "
                        "the broker does not let one login use another client id "
                        "(use_username_as_clientid?). This writer stands in for nobody from "
                        "now on; set [roles] stand_in = false to skip the attempt "
                        "(docs/scaling.md)", client_id)
            return
        short = self._short.get(client_id, 0) + 1 if held_s < SHORT_HOLD_S else 0
        self._short[client_id] = short
        if short >= SHORT_HOLDS_MAX:
            log.warning("the session of writer %s was lost %d times within %.0f s of taking it "
                        "over; no longer trying to stand in for it", client_id, short,
                        SHORT_HOLD_S)
            return
        log.info("the session of writer %s ended here after %.0f s (it is back, another "
                 "writer has it, or the connection was lost); looking again in %.0f s",
                 client_id, held_s, ADOPT_AFTER_S)
        self._look_again(client_id)

    async def stop(self) -> None:
        """Let go of the sessions held (kept for their writers: a normal disconnect). The
        others see this writer `stopped` and look again at the writers that are gone."""
        self._stopping = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
