"""MQTT subscriber: paho-mqtt driven by the asyncio loop, handing messages over in batches.

paho's socket is served by the event loop itself (`paho_loop.LoopDriver`): a thread of
its own would have to win the GIL back from the busy loop for every message. Incoming
`(topic, payload, received_at)` go to a bounded deque that is drained in batches; what
does not fit is dropped and counted (`meshmon_ingest_dropped_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from meshmon.config import MqttConfig
from meshmon.ingest.paho_loop import LoopDriver

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0
TICK_S = 0.5
DRAIN_BATCH = 250
"""messages decoded per loop iteration: HTTP stays responsive while a backlog drains"""
REFUSED_LOG_INTERVAL_S = 60.0
"""a broker that keeps refusing the collector is logged this often, not on every retry"""
CREDENTIAL_REASONS = ("Not authorized", "Bad user name or password")

RawMessage = tuple[str, bytes, float]
"""(topic, payload, received_at) — the only thing that leaves this adapter."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int


def _from_paho_message(msg: paho.MQTTMessage, now: float) -> RawMessage:
    return (msg.topic, bytes(msg.payload), now)


class MqttIngest:
    """Subscribes to `PREFIX/v1/node/+/{status,info,report}` and the bridges' status
    (`PREFIX/v1/bridge/+/status`) and hands batches to a callback."""

    def __init__(
        self,
        config: MqttConfig,
        address: BrokerAddress,
        on_batch: Callable[[list[RawMessage]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._address = address
        self._on_batch = on_batch
        self._clock = clock
        self._pending: deque[RawMessage] = deque()
        self._wake_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connected = asyncio.Event()
        self.received = 0
        self.dropped = 0
        self.connects = 0
        self.refused = 0
        """CONNACKs that refused the collector (wrong credentials, not authorised, …)"""
        self._refused_in_row = 0
        self._refused_logged_at = 0.0
        self._up = False  # a CONNACK accepted the current connection
        client_id = config.client_id or f"meshmon-collector-{socket.gethostname()}"[:64]
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not config.persistent_session,
            protocol=paho.MQTTv311,
        )
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._driver: LoopDriver | None = None
        self._connect_pool: ThreadPoolExecutor | None = None
        self._tick_task: asyncio.Task[None] | None = None
        if config.username:
            self._client.username_pw_set(config.username, config.password or None)
        if config.tls:
            self._client.tls_set(
                ca_certs=config.ca_file or None, cert_reqs=ssl.CERT_REQUIRED
            )
            self._client.tls_insecure_set(config.tls_insecure)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def topics(self) -> list[str]:
        prefix = self._config.topic_prefix
        return [*(f"{prefix}/v1/node/+/{kind}" for kind in ("status", "info", "report")),
                f"{prefix}/v1/bridge/+/status"]

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def backlog_s(self, now: float) -> float:
        """How long the oldest message waiting to be decoded has waited (0 when none)."""
        pending = self._pending
        return max(0.0, now - pending[0][2]) if pending else 0.0

    async def start(self) -> None:
        """Connect in the background; reconnect by itself when the broker goes away."""
        self._loop = asyncio.get_running_loop()
        self._connect_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-connect")
        self._driver = LoopDriver(self._client, self._loop, self._connect_pool, "collector",
                                  reconnect_delay_s=RECONNECT_DELAY_S)
        self._client.connect_async(
            self._address.host, self._address.port, keepalive=self._config.keepalive_s
        )
        self._driver.connect()
        self._tick_task = asyncio.create_task(self._tick(), name="mqtt-tick")

    async def stop(self) -> None:
        """Disconnect cleanly (the broker keeps a persistent session's subscription)."""
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        if self._driver is not None:
            self._driver.dead = True
            self._client.disconnect()
            self._driver.flush()
            self._driver.forget_socket()
        if self._connect_pool is not None:
            self._connect_pool.shutdown(wait=False, cancel_futures=True)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            assert self._driver is not None
            self._driver.tick()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish from the collector (e.g. the `fast` command to an agent)."""
        self._client.publish(topic, payload, qos=qos, retain=retain)
        if self._driver is not None:
            self._driver.flush()

    # paho callbacks (in the loop's thread, except on_connect after a threaded connect)
    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._log_refused(reason)
            return
        self.connects += 1
        self._up = True
        self._refused_in_row = 0
        if flags.session_present:
            # the broker kept our subscription (and queued QoS 1 reports); subscribing again
            # would only make it resend every retained status and info
            log.info("MQTT reconnected to %s:%s, session resumed", self._address.host,
                     self._address.port)
        else:
            client.subscribe([(t, 1) for t in self.topics])
            log.info("MQTT connected to %s:%s, subscribed to %s", self._address.host,
                     self._address.port, ", ".join(self.topics))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.set)

    def _log_refused(self, reason: Any) -> None:
        self.refused += 1
        self._refused_in_row += 1
        now = time.monotonic()
        if self._refused_in_row > 1 and now - self._refused_logged_at < REFUSED_LOG_INTERVAL_S:
            return
        self._refused_logged_at = now
        hint = ""
        if str(reason) in CREDENTIAL_REASONS:
            user = self._config.username
            hint = (f" (as user {user!r}: check mqtt.username and mqtt.password)" if user
                    else " (no mqtt.username set, and the broker refuses anonymous clients)")
        log.warning("MQTT broker %s:%s refused the connection: %s%s; retrying every %.0f s "
                    "(%d refusals in a row)", self._address.host, self._address.port, reason,
                    hint, RECONNECT_DELAY_S, self._refused_in_row)

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was_up, self._up = self._up, False
        if self._driver is not None and self._driver.dead:
            log.info("MQTT disconnected (%s)", reason)
        elif was_up:
            log.warning("MQTT disconnected (%s); reconnecting", reason)
        else:  # a refused or failed connect, already logged
            log.debug("MQTT connection closed before it was accepted (%s)", reason)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        if len(self._pending) >= self._config.queue_max:
            self.dropped += 1
            return
        self._pending.append(_from_paho_message(msg, self._clock()))
        self.received += 1
        if not self._wake_scheduled and self._loop is not None:
            self._wake_scheduled = True
            self._loop.call_soon(self._drain)

    # event loop ----------------------------------------------------------------------
    def _drain(self) -> None:
        self._wake_scheduled = False
        pending = self._pending
        batch: list[RawMessage] = []
        while pending and len(batch) < DRAIN_BATCH:
            batch.append(pending.popleft())
        if pending and not self._wake_scheduled:
            # let other tasks (HTTP, sinks) run between large batches
            self._wake_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)
        if batch:
            self._on_batch(batch)
