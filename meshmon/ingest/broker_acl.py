"""amqtt plugins of the embedded broker: logins from the password file, and the per-user ACL.

Both are amqtt's own plugin kinds (`BaseAuthPlugin`, `BaseTopicPlugin`), named in the
broker's `plugins` config with a dataclass `Config`. The rules live in `Acl`
(meshmon/ingest/mqtt_users.py); here they meet amqtt's sessions and actions. What a user
may not publish is dropped (MQTT 3.1.1 cannot refuse a PUBLISH; it is acknowledged),
counted and logged at most once a minute per user; a refused subscription gets the
SUBACK failure code 0x80. The last will is checked when the client connects (broker.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.authentication import DeprecatedSHA512CryptHasher
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from meshmon.ingest.mqtt_users import Acl, read_users
from meshmon.model.plaintext import one_line

log = logging.getLogger("meshmon.ingest.broker")

DENIED_LOG_INTERVAL_S = 60.0


@dataclass
class AclSettings:
    """What both plugins are configured with (amqtt builds it from the broker config)."""

    password_file: str = ""
    prefix: str = "meshmon"
    collector: str = ""
    allow_anonymous: bool = False


def _acl_of(context: BaseContext) -> Acl:
    """The ACL from a plugin's settings (amqtt puts them in `context.config`)."""
    settings = context.config
    assert isinstance(settings, AclSettings)
    users = read_users(settings.password_file) if settings.password_file else {}
    return Acl(users, settings.prefix, settings.collector, settings.allow_anonymous)


class PasswordFileAuth(BaseAuthPlugin):
    """Logins checked against the password file; anonymous ones as `allow_anonymous` says.

    Verifying an argon2 hash takes tens of milliseconds: it runs in a worker thread, so
    a burst of routers reconnecting does not stall every other client of the broker."""

    Config = AclSettings

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.acl = _acl_of(self.context)
        self._hasher = PasswordHash((Argon2Hasher(), DeprecatedSHA512CryptHasher()))

    async def authenticate(self, *, session: Session) -> bool:
        if not session.username:
            return self.acl.allow_anonymous
        user = self.acl.users.get(session.username)
        if user is None or not user.hash:
            return False
        return await asyncio.to_thread(self._hasher.verify, session.password or "", user.hash)


class TopicAcl(BaseTopicPlugin):
    """Each user publishes and subscribes only where its role allows (mqtt_users.Acl)."""

    Config = AclSettings

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.acl = _acl_of(self.context)
        self.denied: Counter[str] = Counter()
        """action (publish, subscribe, receive) → how many were refused"""
        self._logged: dict[tuple[str, str], float] = {}

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool:
        return self.allowed(session, topic, action)

    def allowed(self, session: Session | None, topic: str | None, action: Action | None) -> bool:
        """The decision, without a coroutine: the broker calls this directly (broker.py)."""
        username = session.username if session is not None else None
        if topic is None:
            allowed = False
        elif action == Action.PUBLISH:
            allowed = self.acl.may_publish(username, topic)
        else:  # SUBSCRIBE a filter, or RECEIVE a message on a topic it matched
            allowed = self.acl.may_subscribe(username, topic)
        if not allowed:
            self._deny(username, action, topic or "")
        return allowed

    def _deny(self, username: str | None, action: Action | None, topic: str) -> None:
        name = {Action.PUBLISH: "publish", Action.RECEIVE: "receive"}.get(
            action or Action.SUBSCRIBE, "subscribe")
        what = f"{name} to" if name != "receive" else "receive"
        self.denied[name] += 1
        key = (username or "", what)
        now = time.monotonic()
        if now - self._logged.get(key, -DENIED_LOG_INTERVAL_S) >= DENIED_LOG_INTERVAL_S:
            self._logged[key] = now
            log.warning("MQTT user %r (%s) may not %s %s: refused (said once a minute)",
                        username, self.acl.role_of(username) or "unknown", what,
                        one_line(topic[:200]))
