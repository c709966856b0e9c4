"""The collector's MQTT side: reports on one connection, status and info on another.

A node's last will must not wait behind other nodes' reports: on one connection it would
queue behind the broker's backlog in the same TCP stream. So `status` and `info` (the
*control* topics) come on a connection of their own and are handed over as they arrive;
reports come on the *reports* connection, wait in a bounded deque and are handed over in
slices of at most `SLICE_S` of work, so the event loop (HTTP, ticks, control messages)
gets its turn between slices. When the deque is long the reports connection stops
reading: the backlog waits in the broker, not in our memory. The same happens while the
owner's store is behind (`hold`): a report handed over waits in the store's memory,
several times the size of its message, so while it writes a backlog nothing more is taken.

Reports on an MQTT 5 connection are acknowledged when the owner says they are stored
(`ack`), so a killed collector or writer loses nothing the broker does not keep for it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from meshmon.config import MqttConfig
from meshmon.ingest.mqtt_client import (
    Endpoint,
    Incoming,
    MqttConnection,
    Trouble,
    tls_context,
)
from meshmon.ingest.mqtt_packets import MQTT_5, MQTT_311, ConnectRequest, Will

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0
SLICE_S = 0.008
"""work handed over per loop iteration while reports wait (HTTP answers in between)"""
BATCH = 16
"""reports per call of the owner's callback, at most: fewer when the slice's time left
holds fewer at the recent pace (`_drain`)"""
PACE_WEIGHT = 0.2
"""weight of the last batch in the running time per report"""
PAUSE_AT = 20_000
"""reports waiting: stop reading the reports connection (the broker keeps the rest)"""
RESUME_AT = 5_000
HOLD_RECHECK_S = 0.05
"""while the owner's store is behind (`hold`), look again this often"""
YIELD_RECHECK_S = 0.002
"""while something goes first (`yield_to`: an HTTP request under way), look again this
often"""

TAG_SHIFT = 40
"""an ack token's bits above this say which connection it came from (0: `reports`; a
connection that stands in for another client: `stand_in`)"""

RawMessage = Incoming
"""(topic, payload, received_at, ack token, redelivered) — the only thing that leaves
this adapter."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """What the two connections subscribe to."""

    reports: str
    """the report topic filter (a `$share/GROUP/…` one for writers)"""
    control: list[str]
    """status, info (and bridge status): read ahead of reports, never shared"""


def node_topics(prefix: str, *kinds: str) -> list[str]:
    """`PREFIX/v1/node/+/KIND` for each kind."""
    return [f"{prefix}/v1/node/+/{kind}" for kind in kinds]


def control_topics(prefix: str) -> list[str]:
    """What the collector reads ahead of reports: node status and info, bridge status."""
    return [*node_topics(prefix, "status", "info"), f"{prefix}/v1/bridge/+/status"]


class MqttIngest:
    """Two MQTT connections: control messages handed over at once, reports in slices."""

    def __init__(
        self,
        config: MqttConfig,
        address: BrokerAddress,
        on_reports: Callable[[list[RawMessage]], None],
        on_control: Callable[[list[RawMessage]], None],
        subscriptions: Subscriptions | None = None,
        *,
        version: int = MQTT_5,
        fallback_to_311: bool = True,
        client_id: str = "",
        clock: Callable[[], float] = time.time,
        hold: Callable[[], bool] | None = None,
        yield_to: Callable[[], bool] | None = None,
        knocking: Callable[[], bool] | None = None,
    ) -> None:
        self._config = config
        self._on_reports = on_reports
        self._hold = hold
        """True while the owner's store is behind: hand nothing over, read nothing more"""
        self._yield_to = yield_to
        """True while other work goes first (HTTP under way): the next slice waits"""
        self._knocking = knocking
        """asked between the batches of a slice: True ends the slice (a request came)"""
        self._clock = clock
        subs = subscriptions or Subscriptions(
            node_topics(config.topic_prefix, "report")[0], control_topics(config.topic_prefix))
        self.subscriptions = subs
        tls = tls_context(config.ca_file, config.tls_insecure) if config.tls else None
        endpoint = Endpoint(address.host, address.port, tls)
        base_id = (client_id or config.client_id
                   or f"meshmon-collector-{socket.gethostname()}")[:56]

        def request(suffix: str, user: str, password: str, base: str = base_id
                    ) -> ConnectRequest:
            return ConnectRequest(
                client_id=base + suffix, version=version,
                clean_start=not config.persistent_session, keepalive_s=config.keepalive_s,
                username=user, password=password,
                session_expiry_s=config.session_expiry_s if config.persistent_session else 0)

        def hint(user: str, prefix: str) -> str:
            if not user:
                return " (no mqtt.username set, and the broker refuses anonymous clients)"
            return f" (as user {user!r}: check mqtt.{prefix}username and mqtt.{prefix}password)"

        trouble = Trouble()
        self._endpoint, self._request, self._trouble = endpoint, request, trouble
        control_user = config.control_username or config.username
        control_password = (config.control_password if config.control_username
                            else config.password)
        self.reports = MqttConnection(
            "reports", endpoint, request("", config.username, config.password),
            [(subs.reports, 1)], self._reports_in, auto_ack=False,
            fallback_to_311=fallback_to_311, reconnect_delay_s=RECONNECT_DELAY_S,
            clock=clock, credential_hint=hint(config.username, ""),
            on_state=self._connection_changed, trouble=trouble)
        self.control = MqttConnection(
            "control", endpoint, request("-control", control_user, control_password),
            [(topic, 1) for topic in subs.control], on_control,
            fallback_to_311=fallback_to_311, reconnect_delay_s=RECONNECT_DELAY_S,
            clock=clock, credential_hint=hint(
                control_user, "control_" if config.control_username else ""),
            on_state=self._connection_changed, trouble=trouble)
        self.connected = asyncio.Event()
        """set while both connections are up"""
        self._pending: deque[RawMessage] = deque()
        self._per_report_s = 0.0
        """wall time the owner took per report lately (a running mean)"""
        self._drain_scheduled = False
        self._recheck: asyncio.TimerHandle | None = None
        self._stand_ins: dict[int, MqttConnection] = {}
        """tag → a connection holding another client's session (`stand_in`)"""
        self._next_tag = 1
        self.dropped = 0
        self.holds = 0
        """times the reports waited for the owner's store (`hold`)"""

    # ------------------------------------------------------------------ state
    @property
    def connections(self) -> tuple[MqttConnection, MqttConnection]:
        return (self.reports, self.control)

    @property
    def received(self) -> int:
        """MQTT messages received on both connections."""
        return self.reports.received + self.control.received

    @property
    def connects(self) -> int:
        """Accepted connections of the reports connection (each reconnect counts)."""
        return self.reports.connects

    @property
    def refused(self) -> int:
        """Refused connection attempts of either connection."""
        return self.reports.refused + self.control.refused

    @property
    def queue_depth(self) -> int:
        """Reports waiting to be handed over."""
        return len(self._pending)

    @property
    def acks_on_receipt(self) -> bool:
        """Whether reports are acknowledged as they arrive (MQTT 3.1.1), not by `ack`."""
        return self.reports.acks_on_receipt

    def backlog_s(self, now: float) -> float:
        """How long the oldest report waiting here has waited (0 when none)."""
        pending = self._pending
        return max(0.0, now - pending[0][2]) if pending else 0.0

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Keep both connections up until cancelled (then disconnect them cleanly)."""
        try:
            async with asyncio.TaskGroup() as group:
                for connection in self.connections:
                    group.create_task(connection.run(), name=f"mqtt-{connection.name}")
        finally:
            if self._recheck is not None:
                self._recheck.cancel()

    def _connection_changed(self) -> None:
        if all(c.connected.is_set() for c in self.connections):
            self.connected.set()
        else:
            self.connected.clear()

    # ------------------------------------------------------------------ use
    def ack(self, tokens: list[int]) -> None:
        """Acknowledge reports (tokens from their `RawMessage`) once they are stored, each
        on the connection it came from."""
        if not self._stand_ins:
            self.reports.ack(tokens)
            return
        mask = (1 << TAG_SHIFT) - 1
        by_tag: dict[int, list[int]] = {}
        for token in tokens:
            by_tag.setdefault(token >> TAG_SHIFT, []).append(token & mask)
        for tag, ids in by_tag.items():
            connection = self.reports if tag == 0 else self._stand_ins.get(tag)
            if connection is not None:  # gone: the broker sends those messages again
                connection.ack(ids)

    async def leave_reports(self, quiet_s: float, limit_s: float) -> bool:
        """Unsubscribe the reports connection and hand over everything the broker had sent
        it: read until nothing came for `quiet_s` and nothing waits here (at most
        `limit_s`). Stand-in connections stay paused. True when it got that far."""
        connection = self.reports
        connection.resume()  # paused, it would not read the broker's UNSUBACK
        confirmed = await connection.unsubscribe([self.subscriptions.reports], limit_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        seen, quiet_since = connection.received, loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            if connection.received != seen or self._pending:
                seen, quiet_since = connection.received, loop.time()
            elif loop.time() - quiet_since >= quiet_s:
                return confirmed
        return False

    def stand_in(self, client_id: str, will: Will | None) -> MqttConnection:
        """A connection that takes over another client's persistent session (same reports
        subscription, same credentials) and hands its reports over with ours, until the
        session is taken back or the connection ends (`run()` then returns; `leave`)."""
        tag = self._next_tag
        self._next_tag += 1
        config = self._config
        request = replace(self._request("", config.username, config.password, client_id),
                          clean_start=False, will=will)

        def tagged(messages: list[RawMessage]) -> None:
            high = tag << TAG_SHIFT
            self._reports_in([(topic, payload, at, high | token if token else 0, dup)
                              for topic, payload, at, token, dup in messages])

        connection = MqttConnection(
            f"stand-in for {client_id}", self._endpoint, request,
            [(self.subscriptions.reports, 1)], tagged, auto_ack=False,
            clock=self._clock, trouble=self._trouble, reconnect=False)
        if self.reports.paused:
            connection.pause()
        self._stand_ins[tag] = connection
        return connection

    def leave(self, connection: MqttConnection) -> None:
        """Forget a stand-in connection that has ended."""
        for tag, known in list(self._stand_ins.items()):
            if known is connection:
                del self._stand_ins[tag]

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish from the collector (e.g. the `fast` command to an agent)."""
        self.control.publish(topic, payload, qos=qos, retain=retain)

    # ------------------------------------------------------------------ reports
    def _reports_in(self, messages: list[RawMessage]) -> None:
        pending = self._pending
        room = self._config.queue_max - len(pending)
        if room < len(messages):
            self.dropped += len(messages) - max(room, 0)
            messages = messages[: max(room, 0)]
        pending.extend(messages)
        if len(pending) >= PAUSE_AT:
            self.pause_reading()
        if not self._drain_scheduled and pending:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        self._recheck = None
        if self._yield_to is not None and self._yield_to():
            self._drain_scheduled = True
            self._recheck = asyncio.get_running_loop().call_later(
                YIELD_RECHECK_S, self._drain)
            return
        pending = self._pending
        clock = time.perf_counter
        now = clock()
        deadline = now + SLICE_S
        popleft = pending.popleft
        hold = self._hold
        knocking = self._knocking
        per_report = self._per_report_s
        while pending:
            if hold is not None and hold():
                self._per_report_s = per_report
                self._wait_for_store()
                return
            # a slice ends within about one report of its time, not one batch: when the
            # CPU is scarce (other processes, another thread's GIL turns) a batch of 16
            # took 20–50 ms and HTTP waited that long past the slice
            fits = int((deadline - now) / per_report) if per_report > 0 else BATCH
            n = max(1, min(BATCH, len(pending), fits))
            batch = [popleft() for _ in range(n)]
            try:
                self._on_reports(batch)
            except Exception:  # a bug must not stop ingest
                log.exception("handing over %d reports failed", n)
            took = (end := clock()) - now
            now = end
            pace = took / n
            per_report = per_report + PACE_WEIGHT * (pace - per_report) if per_report else pace
            if now >= deadline or (knocking is not None and knocking()):
                break
        self._per_report_s = per_report
        if len(pending) < RESUME_AT:
            self.resume_reading()
        if pending:
            # let other work (HTTP, ticks, control messages) run between slices
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _wait_for_store(self) -> None:
        """The owner's store is behind: read nothing more (the broker keeps the backlog)
        and look again shortly."""
        self.holds += 1
        self.pause_reading()
        self._drain_scheduled = True
        self._recheck = asyncio.get_running_loop().call_later(HOLD_RECHECK_S, self._drain)

    def pause_reading(self) -> None:
        """Read no more reports (on any connection): the broker keeps them."""
        self.reports.pause()
        for connection in self._stand_ins.values():
            connection.pause()

    def resume_reading(self) -> None:
        self.reports.resume()
        for connection in self._stand_ins.values():
            connection.resume()


def mqtt_version(embedded: bool) -> int:
    """MQTT 5 to an external broker (shared subscriptions, a large receive window); the
    embedded amqtt broker speaks 3.1.1."""
    return MQTT_311 if embedded else MQTT_5
