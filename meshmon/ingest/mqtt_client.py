"""One MQTT client connection of the collector, driven by asyncio: connect, subscribe,
receive PUBLISH packets in bulk, acknowledge them, reconnect.

Incoming messages leave as `Incoming` tuples through one callback per read, many at a
time. QoS 1 messages are acknowledged at once (`auto_ack`) or when the owner says so
(`ack`): the collector acknowledges a report only once its rows are stored, so a killed
process loses nothing the broker has not kept for it. An MQTT 5 connection asks the
broker for a large receive window (`ConnectRequest.receive_maximum`); an MQTT 3.1.1 one
has the broker's (Mosquitto: 20 messages), so it acknowledges on receipt.

`pause()`/`resume()` stop and restart reading: while the collector is behind, the backlog
waits in the broker (and TCP), not in our memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from meshmon.ingest.mqtt_packets import (
    CONNACK,
    DISCONNECT,
    MQTT_5,
    MQTT_311,
    PINGREQ_PACKET,
    PINGRESP,
    PUBACK,
    SUBACK,
    UNSUBACK,
    UNSUPPORTED_VERSION,
    Connack,
    ConnectRequest,
    Message,
    Packet,
    ProtocolError,
    connect_packet,
    disconnect_packet,
    parse_connack,
    parse_disconnect,
    parse_packets,
    parse_suback,
    pubacks,
    publish_packet,
    reason_text,
    subscribe_packet,
    unsubscribe_packet,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
CLOSE_WAIT_S = 2.0
"""a clean stop waits this long at most for the DISCONNECT to leave"""
REFUSED_LOG_INTERVAL_S = 60.0
"""a broker that keeps refusing us is logged this often, not on every retry"""
CREDENTIAL_REASONS = ("Not authorized", "Bad user name or password")
UNACKED_MAX = 1000
"""QoS 1 messages we published that wait for the broker's PUBACK (or for a connection);
beyond this the oldest is dropped and counted"""

Incoming = tuple[str, bytes, float, int, bool]
"""(topic, payload, received_at, ack token — 0 when nothing is to be acknowledged,
redelivered — the broker's DUP flag: it may have been received before)"""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None


class Trouble:
    """What connection problems were logged, shared by the connections of one process:
    a broker that keeps refusing us, or a certificate we do not trust, is said once (per
    distinct TLS error; refusals again after `REFUSED_LOG_INTERVAL_S`), not per connection
    and retry."""

    def __init__(self) -> None:
        self.last_tls_error = ""
        self.refused_logged_at = -REFUSED_LOG_INTERVAL_S


def tls_context(ca_file: str, insecure: bool) -> ssl.SSLContext:
    """A client TLS context that verifies the broker (its host name unless `insecure`)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if insecure:
        context.check_hostname = False
    return context


class MqttConnection:
    """A subscribing MQTT client that reconnects by itself; `run()` until cancelled."""

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        request: ConnectRequest,
        subscriptions: list[tuple[str, int]],
        on_messages: Callable[[list[Incoming]], None],
        *,
        auto_ack: bool = True,
        fallback_to_311: bool = False,
        reconnect_delay_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        credential_hint: str = "",
        on_state: Callable[[], None] | None = None,
        trouble: Trouble | None = None,
        reconnect: bool = True,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.request = request
        self.subscriptions = subscriptions
        self.on_messages = on_messages
        self.auto_ack = auto_ack
        self.fallback_to_311 = fallback_to_311
        self.reconnect_delay_s = reconnect_delay_s
        self.clock = clock
        self.credential_hint = credential_hint
        self.on_state = on_state
        """called when the connection comes up or goes down"""
        self.reconnect = reconnect
        """False: `run()` ends with the first connection (or the first failed attempt)"""
        self.announce: tuple[str, bytes] | None = None
        """(topic, payload) published retained at every connect: what the will, sent when
        the connection dies, says the opposite of"""
        self.lost_at = -math.inf
        """when (time.monotonic) an accepted connection was last lost"""
        self._unsubacks: dict[int, asyncio.Future[None]] = {}

        self.connected = asyncio.Event()
        self.connects = 0
        self.refused = 0
        """CONNACKs that refused us (wrong credentials, not authorised, …)"""
        self.received = 0
        self.acked = 0
        self.published_dropped = 0
        """messages `publish` dropped: QoS 0 while not connected, QoS 1 beyond UNACKED_MAX"""
        self.pings = 0
        """PINGRESPs received: the broker answered our keepalive"""
        self._unacked: dict[int, tuple[str, bytes, bool]] = {}
        """our QoS 1 publishes the broker has not acknowledged: packet id → (topic,
        payload, retain), oldest first; sent again on every new connection"""
        self.session_present = False
        self.end_session_on_stop = False
        """MQTT 5: a clean stop ends the session (a writer leaves its share group; what it
        took is written and acknowledged by then)"""
        self._protocol: _Protocol | None = None
        self._generation = 0
        self.trouble = trouble or Trouble()
        self._refused_in_row = 0
        self._next_packet_id = 0
        self._paused = False

    @property
    def version(self) -> int:
        """The protocol version in use (or to be tried next)."""
        return self.request.version

    @property
    def acks_on_receipt(self) -> bool:
        """Whether QoS 1 messages are acknowledged as they arrive (not by `ack`)."""
        return self.auto_ack or self.version != MQTT_5

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Connect, subscribe, receive; reconnect after `reconnect_delay_s` when the
        connection is refused or lost (unless `reconnect` is False: then it returns). Runs
        until cancelled (then disconnects cleanly)."""
        try:
            while True:
                lost = await self._session()
                if lost is not None:
                    await lost
                self._down()
                if not self.reconnect:
                    return
                await asyncio.sleep(self.reconnect_delay_s)
        finally:
            closed = self._close(clean=True)
            if closed is not None:
                # a process that ends right after must not cut the DISCONNECT off: the
                # broker would keep a session meant to end, and send a last will
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(closed), CLOSE_WAIT_S)

    async def _session(self) -> asyncio.Future[None] | None:
        """One connection: the future that ends with it, or None when it failed."""
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(self), ep.host, ep.port, ssl=ep.tls,
                    server_hostname=ep.host if ep.tls is not None else None)
        except ssl.SSLError as exc:
            # a wrong CA or certificate does not fix itself: say so once per distinct error
            message = str(exc)
            trouble = self.trouble
            level = logging.WARNING if message != trouble.last_tls_error else logging.DEBUG
            trouble.last_tls_error = message
            log.log(level, "%s: TLS connection to %s:%s failed: %s", self.name, ep.host,
                    ep.port, message)
            return None
        except (OSError, TimeoutError) as exc:
            log.debug("%s: connect to %s:%s failed: %s", self.name, ep.host, ep.port, exc)
            return None
        self.trouble.last_tls_error = ""
        self._protocol = protocol
        protocol.send(connect_packet(self.request))
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                connack = await protocol.connack
        except (TimeoutError, ConnectionError, ProtocolError) as exc:
            log.debug("%s: no CONNACK from %s:%s: %s", self.name, ep.host, ep.port, exc)
            self._close(clean=False)
            return None
        if not connack.accepted:
            self._close(clean=False)
            if connack.reason in UNSUPPORTED_VERSION and self.fallback_to_311 \
                    and self.version == MQTT_5:
                log.info("%s: the broker at %s:%s does not speak MQTT 5; using 3.1.1",
                         self.name, ep.host, ep.port)
                self.request = replace(self.request, version=MQTT_311)
                return None
            self._log_refused(connack.reason)
            return None
        self._accepted(protocol, connack)
        return protocol.lost

    def _accepted(self, protocol: _Protocol, connack: Connack) -> None:
        self.connects += 1
        self._generation += 1
        protocol.generation = self._generation
        self._refused_in_row = 0
        self.session_present = connack.session_present
        ep = self.endpoint
        if connack.session_present:
            log.info("%s: MQTT reconnected to %s:%s, session resumed", self.name, ep.host,
                     ep.port)
        if not connack.session_present or self.version == MQTT_5:
            # MQTT 5 subscribes again (the subscriptions may have changed) with "retained
            # messages only for a new subscription"; a 3.1.1 broker that kept the session
            # kept its subscriptions too, and subscribing again would make it resend every
            # retained status and info
            protocol.send(subscribe_packet(self._packet_id(), self.subscriptions,
                                           self.version))
            if not connack.session_present:
                log.info("%s: MQTT connected to %s:%s (MQTT %s), subscribed to %s",
                         self.name, ep.host, ep.port, "5" if self.version == MQTT_5 else
                         "3.1.1", ", ".join(t for t, _ in self.subscriptions))
        if self._unacked:
            # at least once: what the broker did not acknowledge (or never got) goes again
            log.info("%s: sending %d unacknowledged messages again", self.name,
                     len(self._unacked))
            for packet_id, (topic, payload, retain) in self._unacked.items():
                protocol.send(publish_packet(topic, payload, 1, retain, packet_id,
                                             self.version, dup=True))
        if self.announce is not None:
            topic, payload = self.announce
            self.publish(topic, payload, qos=1, retain=True)
        if self._paused:
            protocol.pause()
        self._set_connected(True)

    def _set_connected(self, up: bool) -> None:
        if up == self.connected.is_set():
            return
        if up:
            self.connected.set()
        else:
            self.connected.clear()
        if self.on_state is not None:
            self.on_state()

    def _down(self) -> None:
        if self.connected.is_set():
            self.lost_at = time.monotonic()
            log.warning("%s: MQTT connection to %s:%s lost; reconnecting", self.name,
                        self.endpoint.host, self.endpoint.port)
        self._set_connected(False)
        self._protocol = None

    def _close(self, clean: bool) -> asyncio.Future[None] | None:
        """Close the connection (`clean`: say DISCONNECT first); the future that is done
        once the socket is closed, everything written before sent."""
        protocol, self._protocol = self._protocol, None
        self._set_connected(False)
        if protocol is None:
            return None
        if clean and protocol.accepted:
            protocol.send(disconnect_packet(self.version, self.end_session_on_stop))
        protocol.close()
        return protocol.lost

    def _log_refused(self, reason: str) -> None:
        self.refused += 1
        trouble = self.trouble
        self._refused_in_row += 1
        now = time.monotonic()
        if (self._refused_in_row > 1
                and now - trouble.refused_logged_at < REFUSED_LOG_INTERVAL_S):
            return
        trouble.refused_logged_at = now
        hint = self.credential_hint if reason in CREDENTIAL_REASONS else ""
        log.warning("%s: MQTT broker %s:%s refused the connection: %s%s; retrying every "
                    "%.0f s (%d refusals in a row)", self.name, self.endpoint.host,
                    self.endpoint.port, reason, hint, self.reconnect_delay_s,
                    self._refused_in_row)

    # ------------------------------------------------------------------ use
    def ack(self, tokens: list[int]) -> None:
        """Acknowledge QoS 1 messages by their tokens (in the order received); tokens of
        an earlier connection are dropped (the broker sends those messages again)."""
        protocol = self._protocol
        if protocol is None or not tokens:
            return
        ids = [t & 0xFFFF for t in tokens if t >> 16 == protocol.generation and t & 0xFFFF]
        if ids:
            self.acked += len(ids)
            protocol.send(pubacks(ids))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Send one message; True if sent now. QoS 1 is kept until the broker acknowledges
        it and sent again after a reconnect (also when it was published while the
        connection was down); QoS 0 while disconnected is dropped and counted."""
        protocol = self._protocol
        connected = protocol is not None and protocol.accepted
        if not qos:
            if not connected:
                self.published_dropped += 1
                log.debug("%s: not connected, %s not sent", self.name, topic)
                return False
            assert protocol is not None
            protocol.send(publish_packet(topic, payload, 0, retain, 0, self.version))
            return True
        unacked = self._unacked
        if len(unacked) >= UNACKED_MAX:
            dropped = next(iter(unacked))
            log.warning("%s: %d messages wait for the broker; dropping the oldest (%s)",
                        self.name, len(unacked), unacked.pop(dropped)[0])
            self.published_dropped += 1
        packet_id = self._packet_id()
        unacked[packet_id] = (topic, payload, retain)
        if not connected:
            log.debug("%s: not connected, %s sent once connected", self.name, topic)
            return False
        assert protocol is not None
        protocol.send(publish_packet(topic, payload, 1, retain, packet_id, self.version))
        return True

    async def unsubscribe(self, topics: list[str], timeout_s: float) -> bool:
        """Unsubscribe (not again after a reconnect); True once the broker confirmed it
        within `timeout_s`: from then on it sends nothing more for those topics."""
        self.subscriptions = [(t, q) for t, q in self.subscriptions if t not in topics]
        protocol = self._protocol
        if protocol is None or not protocol.accepted:
            return False
        packet_id = self._packet_id()
        answered = self._unsubacks[packet_id] = asyncio.get_running_loop().create_future()
        protocol.send(unsubscribe_packet(packet_id, topics, self.version))
        try:
            await asyncio.wait_for(answered, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._unsubacks.pop(packet_id, None)

    def _unsubscribed(self, packet_id: int) -> None:
        answered = self._unsubacks.get(packet_id)
        if answered is not None and not answered.done():
            answered.set_result(None)

    def _published(self, packet_id: int) -> None:
        """The broker acknowledged our QoS 1 message."""
        self._unacked.pop(packet_id, None)

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop reading (the backlog stays in the broker)."""
        self._paused = True
        if self._protocol is not None:
            self._protocol.pause()

    def resume(self) -> None:
        """Read again."""
        self._paused = False
        if self._protocol is not None:
            self._protocol.resume()

    def _packet_id(self) -> int:
        """The next packet id not held by an unacknowledged message."""
        while True:
            self._next_packet_id = self._next_packet_id % 0xFFFF + 1
            if self._next_packet_id not in self._unacked:
                return self._next_packet_id


class _Protocol(asyncio.Protocol):
    """The bytes of one connection: parsing, keepalive, writing."""

    def __init__(self, owner: MqttConnection) -> None:
        loop = asyncio.get_running_loop()
        self.owner = owner
        self.version = owner.request.version
        self.keepalive_s = owner.request.keepalive_s
        self.connack: asyncio.Future[Connack] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.generation = 0
        self.accepted = False
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._paused = False
        self._last_sent = time.monotonic()
        self._ping_sent_at: float | None = None
        self._keepalive: asyncio.TimerHandle | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._schedule_keepalive()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._keepalive is not None:
            self._keepalive.cancel()
        if not self.connack.done():
            self.connack.set_exception(ConnectionError(str(exc or "connection closed")))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        self._ping_sent_at = None  # anything from the broker shows it is alive
        messages: list[Message] = []
        others: list[Packet] = []
        try:
            used = parse_packets(buf, self.version, messages, others)
        except (ProtocolError, IndexError, UnicodeDecodeError) as exc:
            log.warning("%s: malformed MQTT data from the broker (%s); reconnecting",
                        self.owner.name, exc)
            self.close()
            return
        del buf[:used]
        for packet in others:
            self._control(packet)
        if messages:
            self._deliver(messages)

    def _deliver(self, messages: list[Message]) -> None:
        owner = self.owner
        now = owner.clock()
        owner.received += len(messages)
        if owner.acks_on_receipt:
            ids = [pid for _, _, pid, _ in messages if pid]
            if ids:
                self.send(pubacks(ids))
                owner.acked += len(ids)
            owner.on_messages([(topic, payload, now, 0, dup)
                               for topic, payload, _, dup in messages])
            return
        gen = self.generation << 16
        owner.on_messages([(topic, payload, now, gen | pid if pid else 0, dup)
                           for topic, payload, pid, dup in messages])

    def _control(self, packet: Packet) -> None:
        kind = packet.kind
        if kind == CONNACK:
            if not self.connack.done():
                connack = parse_connack(packet.body, self.version)
                self.accepted = connack.accepted
                self.connack.set_result(connack)
        elif kind == SUBACK:
            _, codes = parse_suback(packet.body, self.version)
            refused = [(topic, code) for (topic, _), code in zip(
                self.owner.subscriptions, codes, strict=False) if code >= 0x80]
            for topic, code in refused:
                log.error("%s: the broker refused the subscription to %s (%s)",
                          self.owner.name, topic, reason_text(code))
        elif kind == PUBACK:
            if len(packet.body) >= 2:
                self.owner._published(int.from_bytes(packet.body[:2], "big"))
        elif kind == UNSUBACK:
            if len(packet.body) >= 2:
                self.owner._unsubscribed(int.from_bytes(packet.body[:2], "big"))
        elif kind == PINGRESP:
            self.owner.pings += 1
        elif kind == DISCONNECT:
            log.warning("%s: the broker disconnected us: %s", self.owner.name,
                        parse_disconnect(packet.body))
        else:
            log.debug("%s: ignoring MQTT packet type 0x%02x", self.owner.name, kind)

    # keepalive
    def _schedule_keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        self._keepalive = loop.call_later(max(0.5, self.keepalive_s / 4), self._check_alive)

    def _check_alive(self) -> None:
        if self.transport is None:
            return
        now = time.monotonic()
        pinged = self._ping_sent_at
        if pinged is not None and not self._paused and now - pinged > self.keepalive_s:
            log.warning("%s: no answer from the broker for %.0f s; reconnecting",
                        self.owner.name, now - pinged)
            self.close()
            return
        if now - self._last_sent >= self.keepalive_s / 2 and pinged is None:
            self.send(PINGREQ_PACKET)
            self._ping_sent_at = now
        self._schedule_keepalive()

    # writing, reading
    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self._last_sent = time.monotonic()

    def pause(self) -> None:
        if self.transport is not None and not self._paused:
            self._paused = True
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and self._paused:
            self._paused = False
            if self._ping_sent_at is not None:  # unread while paused: ask again
                self._ping_sent_at = time.monotonic()
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

