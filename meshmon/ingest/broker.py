"""The embedded MQTT broker (amqtt), so `meshmon serve` needs no other infrastructure."""

from __future__ import annotations

import logging
import socket
from typing import Any

from amqtt.broker import Broker
from amqtt.session import Session

from meshmon.config import EmbeddedBrokerConfig

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Broker(Broker):
    """amqtt's broker with retained messages sent only to the sessions that subscribed.

    amqtt 0.12 replays, to every client that connects, the retained messages matching
    *any* subscription in the broker (`_handle_client_session` loops over all of them),
    so each agent that connects receives every node's retained status and info: O(N²)
    work that stalls the broker at a few hundred nodes, and messages the client never
    asked for. A session only gets retained messages for filters it holds itself.
    """

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if not any(s.client_id == session.client_id for s, _ in holders):
            return
        await super()._publish_retained_messages_for_subscription(subscription, session)


class EmbeddedBroker:
    """amqtt (MQTT 3.1.1) listening on `host:port`; port 0 picks a free one."""

    def __init__(self, config: EmbeddedBrokerConfig) -> None:
        self.host = config.host
        self.port = config.port or _free_port(config.host)
        self._password_file = config.password_file
        self._broker: _Broker | None = None

    def _amqtt_config(self) -> dict[str, Any]:
        auth: dict[str, Any]
        if self._password_file:
            auth = {"amqtt.plugins.authentication.FileAuthPlugin": {
                "password_file": self._password_file}}
        else:
            auth = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                            "max_connections": 0},
            },
            "plugins": auth,
        }

    async def start(self) -> None:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = _Broker(self._amqtt_config())
        await self._broker.start()
        log.info("embedded MQTT broker (amqtt) on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
