"""Where the bridge's messages go: one MQTT connection (paho) for every node, or stdout.

The MQTT publisher owns the bridge's own retained status with a last will, keeps the
latest retained message of every topic (node info and status) to publish again after a
reconnect, and sends reports through a bounded queue: while the broker is unreachable the
oldest waiting report is dropped (counted) when the queue is full. At most `WINDOW`
reports are handed to paho at a time; paho re-sends those itself after a reconnect, in
order.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from typing import Any, Protocol, TextIO

import paho.mqtt.client as mqtt
from meshmon_agent.config import MqttSettings
from meshmon_agent.mqtt_link import connect_problem, dumps, paho_client, stop_cleanly

from meshmon_bridge.messages import OutMessage, bridge_status_topic
from meshmon_bridge.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

WINDOW = 64
"""reports handed to paho and not yet acknowledged, at most"""


class MessageSink(Protocol):
    """Takes the messages the bridge publishes."""

    def send(self, message: OutMessage) -> None:
        """Publish (or queue) one message; never blocks on the network."""
        ...


class PrintSink:
    """`--print`: each message as one JSON line `{"topic": …, "payload": …}`."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self.sent = 0

    def send(self, message: OutMessage) -> None:
        """Print the message."""
        self._out.write(message.line() + "\n")
        self.sent += 1


class MqttPublisher:
    """The bridge's one MQTT connection."""

    def __init__(self, settings: MqttSettings, bridge_id: str, prefix: str = "meshmon") -> None:
        self.settings = settings
        self.bridge_id = bridge_id
        self._status_topic = bridge_status_topic(prefix, bridge_id)
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._retained: dict[str, bytes] = {}
        self._outstanding: dict[int, bool] = {}  # mid → is a queued report
        self._acked_early: set[int] = set()  # PUBACK came before publish() returned the mid
        self._reports_in_paho = 0
        self._connected = False
        self._stopped = False
        self._disconnected = threading.Event()
        self._rate_log = RateLimitedLog(log, every_s=60)
        self.dropped = 0
        """reports dropped because the queue was full"""
        self.sent = 0
        """reports acknowledged by the broker"""
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = paho_client(self.settings, f"meshmon-bridge-{self.bridge_id}",
                             self._status_topic,
                             {"v": 1, "bridge": self.bridge_id, "online": False})
        client.max_inflight_messages_set(WINDOW)
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        return client

    # -- public API ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying with backoff) and start paho's network thread."""
        s = self.settings
        self._client.connect_async(s.host, s.port, s.keepalive_s)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now."""
        return self._connected

    @property
    def pending(self) -> int:
        """Messages queued or handed to paho and not yet acknowledged by the broker."""
        with self._lock:
            return len(self._queue) + len(self._outstanding)

    def send(self, message: OutMessage) -> None:
        """Retained messages: keep the latest per topic, publish now if connected.
        Reports: queue (bounded, oldest dropped) and send in order."""
        payload = dumps(message.payload)
        if message.retain:
            with self._lock:
                self._retained[message.topic] = payload
                connected = self._connected and not self._stopped
            if connected:
                self._publish(message.topic, payload, retain=True)
            return
        with self._lock:
            if len(self._queue) >= self.settings.queue_max:
                self._queue.popleft()
                self.dropped += 1
                dropped = self.dropped
            else:
                dropped = 0
            self._queue.append((message.topic, payload))
        if dropped:
            self._rate_log.log(logging.WARNING, "queue", "report queue full (%d): %d "
                               "dropped so far", self.settings.queue_max, dropped)
        self._pump()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the broker accepted the connection; False on timeout."""
        deadline = time.monotonic() + timeout
        while not self._connected:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every message sent so far; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending or not self._connected:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Publish the bridge's `online: false`, disconnect cleanly, end the network thread.

        Reports still queued are abandoned. PUBLISH and DISCONNECT leave in this order on
        one TCP stream, so the broker stores the status before it closes the session and
        does not send the will.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        stop_cleanly(self._client, self._status_topic,
                     {"v": 1, "bridge": self.bridge_id, "online": False,
                      "ts": round(time.time(), 3)},
                     self._disconnected)

    # -- sending ------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        """Hand one message to paho and remember its mid until the PUBACK (never under
        our lock: paho calls on_publish holding its own lock)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        with self._lock:
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
                self._done(not retain)
            else:
                self._outstanding[info.mid] = not retain

    def _done(self, report: bool) -> None:
        """Caller holds the lock."""
        if report:
            self._reports_in_paho -= 1
            self.sent += 1

    def _pump(self) -> None:
        """Hand queued reports to paho while the window has room."""
        while True:
            with self._lock:
                if (self._stopped or not self._connected or not self._queue
                        or self._reports_in_paho >= WINDOW):
                    return
                topic, payload = self._queue.popleft()
                self._reports_in_paho += 1
            self._publish(topic, payload, retain=False)

    # -- paho callbacks (network thread) -----------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self._rate_log.log(logging.WARNING, "refused", "broker %s:%s refused the "
                               "connection: %s", self.settings.host, self.settings.port, reason)
            return
        log.info("connected to %s:%s", self.settings.host, self.settings.port)
        self._rate_log.forget("connect")
        status = {"v": 1, "bridge": self.bridge_id, "online": True, "ts": round(time.time(), 3)}
        self._publish(self._status_topic, dumps(status), retain=True)
        with self._lock:
            self._connected = True
            retained = list(self._retained.items())
        for topic, payload in retained:
            self._publish(topic, payload, retain=True)
        self._pump()

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        s = self.settings
        why = connect_problem(s.host, s.port) or "the connection did not open"
        self._rate_log.log(logging.WARNING, "connect", "cannot connect to %s:%s (%s), retrying",
                           s.host, s.port, why)

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._lock:
            self._connected = False
            stopped = self._stopped
        self._disconnected.set()
        if not stopped:
            log.warning("disconnected from the broker (%s), reconnecting", reason)

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        with self._lock:
            report = self._outstanding.pop(mid, None)
            if report is None:
                self._acked_early.add(mid)
                return
            self._done(report)
        self._pump()
