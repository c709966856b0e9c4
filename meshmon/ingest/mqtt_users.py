"""The embedded broker's users and what each may do: the password file and the per-user ACL.

The password file holds one user a line, `USER:HASH[:ROLE[:NODES]]` (docs/security.md):

- `node` (the default when no role is given): USER is a node id; it may publish only
  `PREFIX/v1/node/USER/status|info|report` (its last will included) and subscribe only to
  `PREFIX/v1/node/USER/cmd`.
- `collector`: may subscribe to anything under `PREFIX/` and publish only commands
  (`PREFIX/v1/node/+/cmd`). The user named in `[mqtt] username` is always the collector.
- `bridge`: USER is the bridge's id; it may publish `PREFIX/v1/bridge/USER/status` and the
  node topics (status, info, report) of the node ids that match one of NODES, a comma-
  separated list of globs (`snmp-west-*,ap-3`; `*` trusts it with every node id), and
  subscribe to those nodes' `cmd` topics (no wildcards).

HASH is argon2 (`$argon2id$…`, what `meshmon passwd` writes) or sha512-crypt (`$6$…`);
neither contains a `:`. Pure: no amqtt, no sockets — the broker plugins use `Acl`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal, cast, get_args

from meshmon.config import ConfigError
from meshmon.model.wire import NODE_ID_RE

Role = Literal["node", "collector", "bridge"]
ROLES: tuple[str, ...] = get_args(Role)
HASH_PREFIXES = ("$argon2", "$6$")
"""password hashes the embedded broker verifies: argon2 (pwdlib) and sha512-crypt"""
NODE_KINDS = frozenset({"status", "info", "report"})
"""what a node (or a bridge for its nodes) publishes; `cmd` is the collector's"""
_NODE_ID = re.compile(NODE_ID_RE)
_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,64}$")
_USER = re.compile(r"^[^\s:#][^\s:]{0,127}$")
WHERE = "mqtt.embedded.password_file"


@dataclass(frozen=True, slots=True)
class MqttUser:
    """One line of the password file."""

    name: str
    hash: str
    role: Role = "node"
    nodes: tuple[str, ...] = ()
    """bridge only: globs of the node ids it may publish for"""

    def line(self) -> str:
        """The user as a password file line (a node's role is left implicit)."""
        if self.role == "bridge":
            return f"{self.name}:{self.hash}:bridge:{','.join(self.nodes)}"
        return f"{self.name}:{self.hash}" + ("" if self.role == "node" else f":{self.role}")


def check_user(name: str, role: str, nodes: Iterable[str] = ()) -> str:
    """"" if `name` may have `role` (with bridge `nodes`), else why not."""
    if not _USER.match(name):
        return "a user name is 1-128 characters without ':', '#' at its start or spaces"
    if role not in ROLES:
        return f"unknown role {role!r} (one of {', '.join(ROLES)})"
    if role in ("node", "bridge") and not _NODE_ID.match(name):
        return (f"a {role}'s user name is its {role} id ({NODE_ID_RE}), "
                f"which {name!r} cannot be")
    nodes = list(nodes)
    if nodes and role != "bridge":
        return "only a bridge has a list of node ids"
    bad = [g for g in nodes if not _GLOB.match(g)]
    if bad:
        return f"node id pattern {bad[0]!r}: letters, digits, '_.-' and the globs '*?[]!' only"
    return ""


def parse_line(line: str) -> MqttUser:
    """One `USER:HASH[:ROLE[:NODES]]` line; ValueError says what is wrong with it."""
    fields = line.split(":")
    if len(fields) < 2 or len(fields) > 4 or not fields[0]:
        raise ValueError("expected user:hash, user:hash:role or user:hash:bridge:nodes")
    name, pwd_hash, role = fields[0], fields[1], fields[2] if len(fields) > 2 else "node"
    nodes = tuple(g for g in fields[3].split(",") if g) if len(fields) > 3 else ()
    if not pwd_hash.startswith(HASH_PREFIXES):
        raise ValueError(
            f"user {name!r}: the embedded broker verifies argon2 or sha512-crypt hashes only "
            "(mosquitto_passwd's $7$ hashes are not understood)")
    problem = check_user(name, role, nodes)
    if problem:
        raise ValueError(f"user {name!r}: {problem}")
    return MqttUser(name, pwd_hash, cast("Role", role), nodes)


def read_users(path: str | Path) -> dict[str, MqttUser]:
    """The users of a password file by name; ConfigError names the line that is wrong."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [(WHERE, f"cannot read {path}: {exc}")]) from None
    users: dict[str, MqttUser] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            user = parse_line(line)
        except ValueError as exc:
            hint = ""
            if "hashes" in str(exc):
                hint = f"; create the line with `meshmon passwd {path} {line.split(':')[0]}`"
            raise ConfigError(str(path), [(WHERE, f"line {number}: {exc}{hint}")]) from None
        users[user.name] = user
    return users


def write_lines(path: str | Path, lines: list[str], users: Iterable[MqttUser]) -> set[str]:
    """Write the password file: `lines` (what it held) with the lines of `users` replaced
    or added, every other line as it was; the names that are new.

    Written in one step (a reader never sees half a file), mode 0600, owned by whoever
    owned the old file (the collector's user may have to read it)."""
    target = Path(path)
    by_name = {u.name: u for u in users}
    out: list[str] = []
    for raw in lines:
        name = raw.strip().split(":", 1)[0]
        if raw.lstrip().startswith("#") or name not in by_name:
            out.append(raw)
        else:
            out.append(by_name.pop(name).line())
    added = set(by_name)
    out += [u.line() for u in by_name.values()]
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("".join(f"{line}\n" for line in out))
        if target.exists():
            owner = target.stat()
            with contextlib.suppress(PermissionError):
                os.chown(temporary, owner.st_uid, owner.st_gid)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return added


def generate_password() -> str:
    """A random password for a new node login (24 URL-safe characters, 144 bits)."""
    return secrets.token_urlsafe(18)


class Acl:
    """What each user may publish and subscribe to (the module docstring has the rules).

    A client without a user name is anonymous: allowed everything when the broker lets
    anonymous clients in at all (`allow_anonymous`), nothing otherwise."""

    def __init__(self, users: Mapping[str, MqttUser], prefix: str, collector: str,
                 allow_anonymous: bool) -> None:
        self.users = dict(users)
        if collector:
            known = self.users.get(collector)
            self.users[collector] = MqttUser(collector, known.hash if known else "", "collector")
        self.allow_anonymous = allow_anonymous
        self._prefix = prefix + "/"
        self._nodes = f"{prefix}/v1/node/"
        self._bridges = f"{prefix}/v1/bridge/"

    def role_of(self, username: str | None) -> str:
        """The role of a logged-in user ("anonymous" without a name, "" if unknown)."""
        if not username:
            return "anonymous"
        user = self.users.get(username)
        return user.role if user is not None else ""

    def may_publish(self, username: str | None, topic: str) -> bool:
        """Whether `username` may publish to `topic` (its last will included)."""
        if not username:
            return self.allow_anonymous
        user = self.users.get(username)
        if user is None:
            return False
        node, kind = self._node_topic(topic)
        if user.role == "collector":
            return kind == "cmd"
        if user.role == "node":
            return node == user.name and kind in NODE_KINDS
        if topic == f"{self._bridges}{user.name}/status":
            return True
        return kind in NODE_KINDS and self._bridge_has(user, node)

    def may_subscribe(self, username: str | None, topic_filter: str) -> bool:
        """Whether `username` may subscribe to `topic_filter`."""
        if not username:
            return self.allow_anonymous
        user = self.users.get(username)
        if user is None:
            return False
        if user.role == "collector":
            return topic_filter.startswith(self._prefix)
        node, kind = self._node_topic(topic_filter)
        if kind != "cmd":
            return False
        return node == user.name if user.role == "node" else self._bridge_has(user, node)

    def _node_topic(self, topic: str) -> tuple[str, str]:
        """(node id, kind) of `PREFIX/v1/node/ID/KIND` with a valid id; ("", "") else."""
        if not topic.startswith(self._nodes):
            return "", ""
        node, sep, kind = topic[len(self._nodes):].partition("/")
        if not sep or "/" in kind or not _NODE_ID.match(node):
            return "", ""  # also refuses the wildcards + and # in place of an id or kind
        return node, kind

    @staticmethod
    def _bridge_has(user: MqttUser, node: str) -> bool:
        return bool(node) and any(fnmatchcase(node, glob) for glob in user.nodes)
