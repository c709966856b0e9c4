"""`meshmon passwd`: users of the embedded broker's password file, one or many at once.

    meshmon passwd FILE USER                     # a node user; password prompted or on stdin
    meshmon passwd FILE USER --role collector
    meshmon passwd FILE USER --role bridge --nodes 'snmp-west-*,ap-3'
    meshmon passwd FILE --generate node-1 node-2 # random passwords, printed `USER PASSWORD`
    meshmon passwd FILE --generate --from nodes.txt   # one user a line ('-': stdin)

A user already in the file keeps its role (and a bridge its nodes) unless --role/--nodes
say otherwise. Other lines (comments, users not named) stay as they are; the file is
written in one step with mode 0600.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any, cast

from meshmon.ingest.mqtt_users import (
    ROLES,
    MqttUser,
    Role,
    check_user,
    generate_password,
    write_lines,
)

USAGE_ERROR = 2


def add_command(sub: Any) -> None:
    """The `passwd` subcommand."""
    passwd = sub.add_parser(
        "passwd", help="add users to the embedded broker's password file (argon2)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    passwd.add_argument("file", help="password file ([mqtt.embedded] password_file)")
    passwd.add_argument("users", nargs="*", metavar="USER",
                        help="MQTT user name (a node's or a bridge's: its id)")
    passwd.add_argument("--role", choices=ROLES,
                        help="node (default for a new user), collector or bridge")
    passwd.add_argument("--nodes", default=None,
                        help="bridge: the node ids it may publish for, comma-separated globs")
    passwd.add_argument("--generate", nargs="*", default=None, metavar="USER",
                        help="give each user (these, and those of --from) a random password "
                             "and print `USER PASSWORD` lines")
    passwd.add_argument("--from", dest="from_file", default=None, metavar="LIST",
                        help="with --generate: more user names, one a line ('-' = stdin)")
    passwd.set_defaults(func=cmd_passwd)


def cmd_passwd(args: argparse.Namespace) -> int:
    """Add or update the users; print generated passwords."""
    try:
        names = _names(args)
    except (OSError, ValueError) as exc:
        return _fail(str(exc), USAGE_ERROR)
    path = Path(args.file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"{path}: {exc}", 1)
    known = _known_users(lines)
    nodes = tuple(g for g in args.nodes.split(",") if g) if args.nodes is not None else None
    planned: list[tuple[str, Role, tuple[str, ...]]] = []
    for name in names:
        old_role, old_nodes = known.get(name, ("node", ()))
        role = cast("Role", args.role or old_role)
        bridge_nodes = (nodes if nodes is not None else old_nodes) if role == "bridge" else ()
        if nodes is not None and role != "bridge":
            return _fail("--nodes is for bridges (--role bridge)", USAGE_ERROR)
        problem = check_user(name, role, bridge_nodes)
        if problem:
            return _fail(f"{name!r}: {problem}", USAGE_ERROR)
        planned.append((name, role, bridge_nodes))
    generate = args.generate is not None
    passwords = _passwords(names, generate)
    if passwords is None:
        return 1
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    hasher = PasswordHash((Argon2Hasher(),))
    users = [MqttUser(name, hasher.hash(passwords[name]), role, bridge_nodes)
             for name, role, bridge_nodes in planned]
    try:
        added = write_lines(path, lines, users)
    except OSError as exc:
        return _fail(f"{path}: {exc.strerror or exc}", 1)
    for user in users:
        what = "added" if user.name in added else "updated"
        nodes_text = f": {','.join(user.nodes)}" if user.nodes else ""
        print(f"{path}: {what} {user.name} ({user.role}{nodes_text})",
              file=sys.stderr if generate else None)
    if generate:
        for name in names:
            print(f"{name} {passwords[name]}")
    return 0


def _names(args: argparse.Namespace) -> list[str]:
    names = list(args.users) + list(args.generate or [])
    if args.from_file is not None:
        if args.generate is None:
            raise ValueError("--from needs --generate (each user gets a random password)")
        text = sys.stdin.read() if args.from_file == "-" else Path(args.from_file).read_text()
        names += [line.strip() for line in text.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise ValueError("name a user (or several, with --generate)")
    if len(names) > 1 and args.generate is None:
        raise ValueError("several users at once need --generate (random passwords)")
    if len(set(names)) != len(names):
        raise ValueError("a user is named twice")
    return names


def _known_users(lines: list[str]) -> dict[str, tuple[Role, tuple[str, ...]]]:
    """Role and bridge nodes of each user line already in the file (kept on update)."""
    known: dict[str, tuple[Role, tuple[str, ...]]] = {}
    for raw in lines:
        fields = raw.strip().split(":")
        if len(fields) < 2 or raw.lstrip().startswith("#"):
            continue
        role = fields[2] if len(fields) > 2 and fields[2] in ROLES else "node"
        nodes = tuple(g for g in fields[3].split(",") if g) if len(fields) > 3 else ()
        known[fields[0]] = (cast("Role", role), nodes)
    return known


def _passwords(names: list[str], generate: bool) -> dict[str, str] | None:
    if generate:
        return {name: generate_password() for name in names}
    [name] = names
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
        if password != getpass.getpass("again: "):
            _fail("the passwords differ", 1)
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("empty password", 1)
        return None
    return {name: password}


def _fail(message: str, code: int) -> int:
    print(f"meshmon passwd: {message}", file=sys.stderr)
    return code
