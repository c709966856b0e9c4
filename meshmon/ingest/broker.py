"""The embedded MQTT broker (amqtt), so `meshmon serve` needs no other infrastructure.

With a password file every client logs in and is held to its role's topics (the plugins
in broker_acl.py, the rules in mqtt_users.py); without one it is open to anonymous
clients, which the config allows only on a loopback listener unless `allow_anonymous`.
"""

from __future__ import annotations

import logging
import socket
from contextvars import ContextVar
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, BrokerError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from meshmon.config import ConfigError, MqttConfig, anonymous_allowed, is_loopback
from meshmon.errors import StartupError
from meshmon.ingest.broker_acl import PasswordFileAuth, TopicAcl
from meshmon.ingest.mqtt_users import WHERE, read_users

log = logging.getLogger(__name__)

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

    _topic_plugins: list[BaseTopicPlugin] | None = None

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
        held = self._sessions.get(session.client_id) if session.client_id else None
        if held is not None and held[0].username != session.username:
            # taking over (or, with clean session, deleting) another user's session would
            # cut that client off and hand its subscriptions, e.g. a node's commands, over
            why = "its client id belongs to another user's session"
        elif session.will_flag and not await self._topic_filtering(
                session, session.will_topic or "", Action.PUBLISH):
            # the broker would publish it when the connection dies: a node must not be
            # able to leave a last will for another node (or anything outside its topics)
            why = f"last will on a topic it may not publish to ({session.will_topic!r})"
        else:
            why = ""
        if why:
            handler.attach(session, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise AMQTTError(f"refused MQTT client {session.client_id!r} from {peer} "
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

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        """amqtt's, but our ACL plugin asked directly when it is the only topic plugin.

        amqtt runs each topic plugin as a task and gathers them for every PUBLISH and every
        delivery: two extra event loop turns per message, which cost the broker about as
        much CPU as the message itself (bench/broker_acl.py). The plugin decides without
        awaiting anything, so it is called in place."""
        plugins = self._topic_plugins
        if plugins is None:
            plugins = self._topic_plugins = [
                p for p in self.plugins_manager.plugins if isinstance(p, BaseTopicPlugin)]
        if len(plugins) == 1 and isinstance(plugins[0], TopicAcl):
            return plugins[0].allowed(session, topic, action)
        return await super()._topic_filtering(session, topic, action)

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


class EmbeddedBroker:
    """amqtt (MQTT 3.1.1) listening on `host:port`; port 0 picks a free one."""

    def __init__(self, config: MqttConfig) -> None:
        embedded = config.embedded
        self.host = embedded.host
        self.port = embedded.port or _free_port(embedded.host)
        self._password_file = embedded.password_file
        self._prefix = config.topic_prefix
        self._collector = config.username
        self.allow_anonymous = anonymous_allowed(config)
        self._broker: _Broker | None = None

    def _amqtt_config(self) -> dict[str, Any]:
        plugins: dict[str, Any]
        if self._password_file:
            settings = {"password_file": self._password_file, "prefix": self._prefix,
                        "collector": self._collector, "allow_anonymous": self.allow_anonymous}
            plugins = {_path(PasswordFileAuth): settings, _path(TopicAcl): settings}
        else:
            plugins = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {
                "allow_anonymous": True}}
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                            "max_connections": 0},
            },
            "plugins": plugins,
        }

    @property
    def denied(self) -> dict[str, int]:
        """How many publishes/subscriptions the ACL refused, by action."""
        acl = self._topic_acl()
        return dict(acl.denied) if acl is not None else {}

    def _topic_acl(self) -> TopicAcl | None:
        if self._broker is None:
            return None
        found = [p for p in self._broker.plugins_manager.plugins if isinstance(p, TopicAcl)]
        return found[0] if found else None

    def _describe_mode(self) -> tuple[int, str]:
        """(log level, line) saying who may connect and what they may do."""
        where = f"embedded MQTT broker (amqtt) on {self.host}:{self.port}"
        if not self._password_file:
            if is_loopback(self.host):
                return logging.INFO, (f"{where}: open to anonymous clients on this machine "
                                      "(loopback), no logins, no per-node ACL")
            return logging.WARNING, (
                f"{where}: anonymous clients from anywhere (allow_anonymous = true) and no "
                "per-node ACL: anyone who reaches the port can publish as any node")
        users = read_users(self._password_file)
        if self._collector not in users:
            raise ConfigError(self._password_file, [(WHERE, (
                f"no line for the collector's own user {self._collector!r} ([mqtt] username): "
                f"add it with `meshmon passwd {self._password_file} {self._collector} "
                "--role collector`"))])
        roles = [("collector" if name == self._collector else u.role)
                 for name, u in users.items()]
        counts = ", ".join(f"{roles.count(r)} {r}{'s' if roles.count(r) != 1 else ''}"
                           for r in ("collector", "node", "bridge") if r in roles)
        line = (f"{where}: {len(users)} user(s) from {self._password_file} ({counts}), "
                "each held to its own topics (per-node ACL); ")
        if self.allow_anonymous:
            return logging.WARNING, line + (
                "anonymous clients ALLOWED (allow_anonymous = true): they may publish as "
                "any node")
        return logging.INFO, line + "anonymous clients refused"

    async def start(self) -> None:
        """Start listening; raise ConfigError for a password file the broker cannot use."""
        level, mode = self._describe_mode()  # reads (and so checks) the password file
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        broker = _Broker(self._amqtt_config())
        amqtt_log = logging.getLogger("amqtt.broker")
        level_before = amqtt_log.level
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
            amqtt_log.setLevel(level_before)
        self._broker = broker
        log.log(level, "%s", mode)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None


def _path(plugin: type) -> str:
    """The dotted path amqtt loads a plugin class from."""
    return f"{plugin.__module__}.{plugin.__qualname__}"
