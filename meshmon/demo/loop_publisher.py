"""The agent's `Publisher`, with paho's network I/O driven by the asyncio loop.

A real agent runs one `Publisher` with paho's own network thread. Hundreds of them in one
process cannot work that way: each thread's `select()` fails once descriptors pass 1024
(FD_SETSIZE; paho's thread uses three descriptors per client), and 800 threads are a lot.
So the demo keeps all of the agent's MQTT logic (status, last will, info, the in-order
report queue, commands) and only swaps the driver: paho's external-loop callbacks
register each socket with the asyncio loop (epoll), and a `tick()` does paho's
keepalive and reconnects. The blocking TCP connect runs in a worker thread.

Everything except `_connect` runs in the loop's thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import paho.mqtt.client as mqtt
from meshmon_agent.config import MqttSettings
from meshmon_agent.publisher import Publisher
from paho.mqtt.enums import CallbackAPIVersion

from meshmon.ingest.paho_loop import LoopDriver

log = logging.getLogger(__name__)


class LoopPublisher(Publisher):
    """A `Publisher` whose paho client is driven by `loop` instead of a thread of its own."""

    stop_wait_s = 0.0  # nothing to wait for: `stop` writes the packets itself (`driver.flush`)

    def __init__(
        self,
        settings: MqttSettings,
        node: str,
        prefix: str,
        loop: asyncio.AbstractEventLoop,
        connect_pool: Executor,
    ) -> None:
        super().__init__(settings, node, prefix)
        self.driver = LoopDriver(self._client, loop, connect_pool, node)

    def start(self) -> None:
        """Connect in a worker thread; return at once."""
        s = self.settings
        self._client.connect_async(s.host, s.port, s.keepalive_s)
        self.driver.connect()

    def stop(self) -> None:
        """`online: false` and DISCONNECT, written right away; does not wait for the broker."""
        self.driver.dead = True
        super().stop()  # queues both; paho's loop_stop() is a no-op without its thread
        self.driver.flush()  # paho closes the socket after writing DISCONNECT
        self.driver.forget_socket()

    def kill(self) -> None:
        """Close the connection without DISCONNECT; the broker sends the last will."""
        self.driver.dead = True
        self.driver.forget_socket()
        super().kill()

    def tick(self) -> None:
        """Keepalive and reconnects; about once a second."""
        self.driver.tick()


class CommandListener:
    """One subscription to every node's `cmd` topic for the whole simulated network.

    Real agents each subscribe to their own; hundreds of subscriptions make amqtt scan all
    retained messages once per subscription, which stalls the embedded broker.
    """

    def __init__(
        self, settings: MqttSettings, prefix: str, loop: asyncio.AbstractEventLoop,
        connect_pool: Executor, on_command: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.settings = settings
        self._filter = f"{prefix}/v1/node/+/cmd"
        self._on_command = on_command
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"meshmon-demo-cmd-{os.getpid()}", clean_session=True,
                             protocol=mqtt.MQTTv311)
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        client.on_connect = self._handle_connect
        client.on_message = self._handle_message
        self.driver = LoopDriver(client, loop, connect_pool, "command listener")

    def start(self) -> None:
        """Connect and subscribe (again after every reconnect)."""
        s = self.settings
        self.driver.client.connect_async(s.host, s.port, s.keepalive_s)
        self.driver.connect()

    def stop(self) -> None:
        """Disconnect now."""
        self.driver.dead = True
        self.driver.client.disconnect()
        self.driver.flush()
        self.driver.forget_socket()

    def _handle_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                        props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self._filter, qos=1)

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        node = msg.topic.split("/")[-2]
        try:
            command = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(command, dict):
            self._on_command(node, command)
