"""One MQTT connection per agent: status, info, reports (queued in order) and commands."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from meshmon_agent.config import MqttSettings
from meshmon_agent.mqtt_link import (
    STOP_WAIT_S,
    connect_problem,
    dumps,
    paho_client,
    stop_cleanly,
)

log = logging.getLogger(__name__)

CommandCallback = Callable[[dict[str, Any]], None]


class Publisher:
    """Publishes one node's status, info and reports; reports survive broker outages in order.

    Reports go through our own bounded queue with at most one in flight: the next is only
    handed to paho once the broker has acknowledged (PUBACK) the previous one. paho re-sends
    the in-flight message itself after a reconnect, so order holds across outages and
    nothing acknowledged is sent twice by us (QoS 1 may still duplicate on the wire).
    """

    stop_wait_s = STOP_WAIT_S
    """how long `stop` waits for the broker's acknowledgements (0: the owner of a client
    without paho's thread writes the packets itself)"""

    def __init__(self, settings: MqttSettings, node: str, prefix: str = "meshmon") -> None:
        self.settings = settings
        self.node = node
        base = f"{prefix}/v1/node/{node}/"
        self._status_topic = base + "status"
        self._info_topic = base + "info"
        self._report_topic = base + "report"
        self._cmd_topic = base + "cmd"
        self._lock = threading.Lock()
        self._queue: deque[bytes] = deque()
        self._sending = False  # the queue head has been handed to paho
        self._inflight_mid: int | None = None
        self._early_acks: set[int] = set()
        self._connected = False
        self._disconnected = threading.Event()
        self._stopped = False
        self._info: bytes | None = None
        self._on_command: CommandCallback | None = None
        self.dropped = 0
        self.sent = 0
        self.failed_connects = 0
        self.last_error: str | None = None
        """why the last connection attempt failed (None once connected)"""
        self._client = self._make_client(settings, node)

    def _make_client(self, s: MqttSettings, node: str) -> mqtt.Client:
        client = paho_client(s, f"meshmon-agent-{node}", self._status_topic,
                             {"v": 1, "node": node, "online": False})
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.message_callback_add(self._cmd_topic, self._handle_command)
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
        """Reports queued or in flight, not yet acknowledged by the broker."""
        with self._lock:
            return len(self._queue)

    def publish_info(self, info: dict[str, Any]) -> None:
        """Publish node info (retained, QoS 1) now if connected, and again on every reconnect."""
        payload = dumps(info)
        with self._lock:
            self._info = payload
            connected = self._connected
        if connected:
            self._client.publish(self._info_topic, payload, qos=1, retain=True)

    def publish_report(self, report: dict[str, Any]) -> None:
        """Queue a report (QoS 1); the oldest waiting one is dropped (counted) when full."""
        payload = dumps(report)
        with self._lock:
            if len(self._queue) >= max(1, self.settings.queue_max):
                # never drop the head while paho has it in flight: its PUBACK moves the queue
                if not self._sending:
                    self._queue.popleft()
                elif len(self._queue) > 1:
                    del self._queue[1]
                else:
                    payload = b""
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning("%s: report queue full, %d dropped so far", self.node, self.dropped)
            if payload:
                self._queue.append(payload)
        self._pump()

    def on_command(self, callback: CommandCallback) -> None:
        """Subscribe to `…/NODE/cmd`; `callback` gets each command as a decoded dict."""
        with self._lock:
            self._on_command = callback
            connected = self._connected
        if connected:
            self._client.subscribe(self._cmd_topic, qos=1)

    def wait_idle(self, timeout: float, give_up_on_error: bool = False) -> bool:
        """Wait until every queued report is acknowledged; False on timeout (or, with
        `give_up_on_error`, as soon as a connection attempt fails: see `last_error`)."""
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() >= deadline:
                return False
            if give_up_on_error and self.last_error is not None and not self._connected:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Publish `online: false`, send DISCONNECT and end the network thread (fast).

        Reports still queued are abandoned. PUBLISH and DISCONNECT leave in this order on
        one TCP stream, so the broker stores the status before it closes the session.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        stop_cleanly(self._client, self._status_topic,
                     {"v": 1, "node": self.node, "online": False, "ts": round(time.time(), 3)},
                     self._disconnected, self.stop_wait_s)

    def kill(self) -> None:
        """Drop the connection without DISCONNECT, as a crash would (the broker sends the will)."""
        with self._lock:
            self._stopped = True
        self._client.loop_stop()  # the network thread ends without sending anything
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self._connected = False

    # -- paho callbacks (network thread) -----------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = f"the broker refused the connection: {reason}"
            log.warning("%s: broker refused connection: %s (%s:%s)", self.node, reason,
                        self.settings.host, self.settings.port)
            return
        self.last_error = None
        self.failed_connects = 0
        log.info("%s: connected to %s:%s", self.node, self.settings.host, self.settings.port)
        status = {"v": 1, "node": self.node, "online": True, "ts": round(time.time(), 3)}
        client.publish(self._status_topic, dumps(status), qos=1, retain=True)
        with self._lock:
            self._connected = True
            info, command = self._info, self._on_command
        if info is not None:
            client.publish(self._info_topic, info, qos=1, retain=True)
        if command is not None:
            client.subscribe(self._cmd_topic, qos=1)
        self._pump()

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        s = self.settings
        why = connect_problem(s.host, s.port) or "the connection did not open"
        self.last_error = f"cannot connect to {s.host}:{s.port}: {why}"
        self.failed_connects += 1
        log.warning("%s: %s (attempt %d), retrying", self.node, self.last_error,
                    self.failed_connects)

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._lock:
            self._connected = False
            stopped = self._stopped
        self._disconnected.set()
        if not stopped:
            log.warning("%s: disconnected (%s), reconnecting", self.node, reason)

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        with self._lock:
            if self._sending and self._inflight_mid is None:
                # the PUBACK beat us to recording the mid (status/info acks land here too)
                self._early_acks.add(mid)
                return
            if mid != self._inflight_mid:
                return
            self._head_acked()
        self._pump()

    def _handle_command(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            command = json.loads(msg.payload)
        except ValueError:
            log.warning("%s: command is not JSON, ignored", self.node)
            return
        callback = self._on_command
        if not isinstance(command, dict) or callback is None:
            return
        try:
            callback(command)
        except Exception:
            log.exception("%s: command handler failed", self.node)

    # -- the report queue -----------------------------------------------------------------

    def _head_acked(self) -> None:
        """Caller holds the lock."""
        self._queue.popleft()
        self._sending = False
        self._inflight_mid = None
        self.sent += 1

    def _pump(self) -> None:
        """Hand the queue head to paho if nothing is in flight; never called with the lock held."""
        while True:
            with self._lock:
                if self._sending or not self._queue or not self._connected or self._stopped:
                    return
                self._sending = True
                payload = self._queue[0]
            info = self._client.publish(self._report_topic, payload, qos=1)
            with self._lock:
                if info.mid in self._early_acks:
                    self._early_acks.clear()
                    self._head_acked()
                    continue
                self._early_acks.clear()
                self._inflight_mid = info.mid
            return
