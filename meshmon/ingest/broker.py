"""The embedded MQTT broker (amqtt), so `meshmon serve` needs no other infrastructure."""

from __future__ import annotations

import logging
import socket
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import AMQTTError, BrokerError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import gen_client_id

from meshmon.config import ConfigError, EmbeddedBrokerConfig
from meshmon.errors import StartupError

log = logging.getLogger(__name__)

HASH_PREFIXES = ("$argon2", "$6$")
"""password hashes amqtt's FileAuthPlugin verifies: argon2 (pwdlib) and sha512-crypt"""

# set in the connection's own task once its CONNECT passed the credential check
_authenticated: ContextVar[bool] = ContextVar("meshmon_broker_authenticated", default=False)


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

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt 0.12's, with the credentials checked *before* any session is touched.

        amqtt checks them only afterwards: a client refused for a wrong password has already
        deleted the session (and so the subscriptions) of the client whose id it used
        (clean session), or taken over its connection (persistent session), and the refused
        session stays registered as connected. Anyone who can reach the port and knows an
        id (`meshmon-collector-HOST`, `meshmon-agent-NODE`) could silently cut the collector
        off its reports. Here a refused client gets CONNACK "not authorised" and nothing else.
        """
        peer = f"{remote_address}:{remote_port}"
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager)
        except (AMQTTError, MQTTError, NoDataError) as exc:
            await writer.close()
            raise AMQTTError(f"no valid CONNECT from {peer}: {exc}") from exc
        if not await self._check_credentials(session):
            handler.attach(session, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            why = ("unknown user or wrong password" if session.username
                   else "no username (anonymous clients are not allowed)")
            raise AMQTTError(
                f"refused MQTT client {session.client_id!r} from {peer} "
                f"(user {session.username!r}): {why}")
        _authenticated.set(True)

        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = gen_client_id()
            session.parent = 0
        elif session.client_id in self._sessions:
            # a persistent session resumed: keep its subscriptions and queue, take the new
            # connection's will, keepalive and credentials
            existing, _ = self._sessions[session.client_id]
            for attr in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive",
                         "username", "password"):
                setattr(existing, attr, getattr(session, attr))
            session = existing
            session.parent = 1
        else:
            session.parent = 0

        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _authenticate(self, session: Session, listener: Any) -> bool:
        # amqtt calls this after `_initialize_client_session`, in the same task
        return _authenticated.get() or await self._check_credentials(session)

    async def _check_credentials(self, session: Session) -> bool:
        try:
            return bool(await super()._authenticate(session, None))
        except Exception as exc:  # e.g. a hash pwdlib cannot identify: refuse, do not crash
            log.warning("checking the credentials of MQTT client %r (user %r) failed: %r",
                        session.client_id, session.username, exc)
            return False


def check_password_file(path: str) -> int:
    """Raise ConfigError unless every `user:hash` line of `path` has a hash amqtt verifies;
    return the number of users."""
    where = "mqtt.embedded.password_file"
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [(where, f"cannot read {path}: {exc}")]) from None
    users = 0
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, pwd_hash = line.partition(":")
        if not sep or not user:
            raise ConfigError(path, [(where, f"line {number}: expected user:hash")])
        if not pwd_hash.startswith(HASH_PREFIXES):
            raise ConfigError(path, [(where, (
                f"line {number} (user {user!r}): the embedded broker verifies argon2 or "
                "sha512-crypt hashes only (mosquitto_passwd's $7$ hashes are not understood); "
                f"create the line with `meshmon passwd {path} {user}`"))])
        users += 1
    return users


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
        """Start listening; raise ConfigError for a password file amqtt cannot use."""
        if self._password_file:
            users = check_password_file(self._password_file)
            log.info("embedded MQTT broker: %d user(s) in %s, anonymous clients refused",
                     users, self._password_file)
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        broker = _Broker(self._amqtt_config())
        amqtt_log = logging.getLogger("amqtt.broker")
        level = amqtt_log.level
        amqtt_log.setLevel(logging.CRITICAL)  # its traceback would bury our message
        try:
            await broker.start()
        except BrokerError as exc:
            raise StartupError(
                f"the embedded MQTT broker cannot listen on {self.host}:{self.port} ({exc}). "
                "If another broker (e.g. Mosquitto) runs there, use it with "
                '[mqtt] broker = "external", or choose another [mqtt.embedded] port.'
            ) from None
        finally:
            amqtt_log.setLevel(level)
        self._broker = broker
        log.info("embedded MQTT broker (amqtt) on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
