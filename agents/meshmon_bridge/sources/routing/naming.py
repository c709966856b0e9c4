"""Public node ids for the nodes a routing daemon knows by address.

A routing daemon names nodes by address: an OLSR main IP, a batman-adv MAC, a Babel
router id, a WireGuard public key. Node ids are public, so an address never becomes one.
The id of a node is, first that applies:

1. the `names` table of the source's config or its `names_file` (hosts-file format, e.g.
   olsrd's nameservice `/var/run/hosts_olsr`), keyed by the daemon's id of the node or any
   of its other addresses (OLSR MID aliases, batman-adv secondary MACs, Babel prefixes,
   WireGuard allowed IPs);
2. the name the daemon itself gives the node and every daemon of the mesh would give it
   (NetJSON label or hostname, BMX6 name, OpenVPN common name, CNML device title), made
   into a node id, unless it holds an address;
3. `PREFIX-` and ten characters of a keyed hash (HMAC-SHA256, base32) of the daemon's id,
   with a secret key kept per bridge (`id_key`, or the file `id_key_file`, created once
   with a random key). A plain hash would not do: the IPv4 space is small enough to hash
   every address and look the id up. The same key gives the same id on every restart.

Two nodes that would get the same daemon name keep it first come, first served; the later
one gets the hash appended. Ids given by rules 2 and 3 stay for the life of the bridge;
the config's names always apply (a daemon restarted with a new router id that announces
the configured address is the same node).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

NODE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
"""a MAC as `info.macs` carries it"""
# the collector's rule (meshmon/model/addresses.py), repeated here: the bridge never
# imports the collector package
_MAC = r"(?<![0-9a-f])[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}(?![0-9a-f])"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])"
_IPV6 = r"(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{0,4}|(?:[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4})?"
ADDRESS_RE = re.compile("|".join((_MAC, _IPV4, _IPV6)), re.IGNORECASE)
_NOT_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_HEX_ID_RE = re.compile(r"^[0-9A-Fa-f:.-]+$")
_PLAIN_IPV4_RE = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")
HASH_CHARS = 10


class NamingError(ValueError):
    """A names file or key file that cannot be used; the message names the file."""


def looks_like_address(text: str) -> bool:
    """True when `text` holds a MAC or an IP address anywhere."""
    return ADDRESS_RE.search(text) is not None


@lru_cache(maxsize=1 << 16)
def address_key(text: str) -> str:
    """How an address or daemon id is looked up: trimmed; an IP address in its canonical
    form, a host prefix (`/32`, `/128`) as the bare address; MACs and other hex ids in
    lower case; anything else (a WireGuard key, a name) as it is."""
    key = text.strip()
    if _PLAIN_IPV4_RE.match(key):  # the common case, without ipaddress' cost
        return key
    try:
        iface = ipaddress.ip_interface(key)
    except ValueError:
        return key.lower() if _HEX_ID_RE.match(key) else key
    if iface.network.prefixlen == iface.max_prefixlen:
        return str(iface.ip)
    return str(iface)


def as_node_id(name: str | None) -> str | None:
    """A daemon's name made into a node id (`Hill 5/roof` → `Hill-5-roof`), or None when
    nothing is left or it holds an address."""
    if not name:
        return None
    if looks_like_address(name):  # also before `fe80::1` becomes `fe80--1`
        return None
    candidate = _NOT_ID_CHARS.sub("-", name.strip()).strip("-_.")[:64].rstrip("-_.")
    if not candidate or not NODE_ID_RE.match(candidate) or looks_like_address(candidate):
        return None
    return candidate


def read_hosts_file(path: Path) -> dict[str, str]:
    """`ADDRESS NAME [ALIAS …]` lines (hosts-file format, `#` comments) → {address: name}."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise NamingError(f"names_file {path}: {exc.strerror or exc}") from None
    names: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        if len(line) < 2:
            raise NamingError(f"names_file {path} line {number}: expected `ADDRESS NAME`")
        name = as_node_id(line[1])
        if name is None:
            raise NamingError(
                f"names_file {path} line {number}: {line[1]!r} cannot be a node id "
                "(letters, digits, _ . -; no address)"
            )
        names[address_key(line[0])] = name
    return names


def load_or_create_key(path: Path) -> bytes:
    """The secret in `path`; a new random one (written with mode 0600) if there is none."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise NamingError(f"id_key_file {path}: cannot read it: {exc}") from None
    if text:
        return text.encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another source of this bridge made it just now
        return load_or_create_key(path)
    except OSError as exc:
        raise NamingError(f"id_key_file {path}: cannot create it: {exc.strerror}") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
    return key.encode()


def default_key_file(bridge_id: str) -> Path:
    """Where a bridge keeps its id key unless configured: `BRIDGE_ID.routing-id.key` in
    systemd's $STATE_DIRECTORY, else in ~/.local/state/meshmon-bridge."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = Path(state) if state else Path.home() / ".local" / "state" / "meshmon-bridge"
    return base / f"{bridge_id}.routing-id.key"


class NameBook:
    """Gives each node of a routing view its public id, by the rule in this module's doc."""

    def __init__(self, key: bytes, prefix: str, names: dict[str, str]) -> None:
        self._key = key
        self._prefix = prefix
        self._names: dict[str, str] = {}
        self.set_names(names)
        self._given: dict[str, str] = {}
        """daemon id → node id given (sticky)"""
        self._owner: dict[str, str] = {}
        """node id → the daemon id it was given to"""

    def set_names(self, names: dict[str, str]) -> None:
        """Use these configured names (daemon id or address → node id) from now on."""
        self._names = {address_key(k): v for k, v in names.items()}

    def hashed(self, daemon_id: str) -> str:
        """`PREFIX-` and the keyed hash of a daemon id (rule 3)."""
        digest = hmac.new(self._key, address_key(daemon_id).encode(), hashlib.sha256).digest()
        return f"{self._prefix}-{base64.b32encode(digest).decode().lower()[:HASH_CHARS]}"

    def node_id(self, daemon_id: str, aliases: Iterable[str] = (), name: str | None = None) -> str:
        """The public id of the node the daemon calls `daemon_id`."""
        configured = self.configured(daemon_id, aliases)
        if configured is not None:  # the config always wins (a daemon that restarted
            self.pin(daemon_id, configured)  # with a new router id is the same node)
            return configured
        given = self._given.get(daemon_id)
        if given is not None:
            return given
        wanted = as_node_id(name)
        if wanted is None:
            node = self.hashed(daemon_id)
        elif self._owner.get(wanted, daemon_id) != daemon_id:
            node = f"{wanted[:53]}-{self.hashed(daemon_id)[-HASH_CHARS:]}"
        else:
            node = wanted
        self._given[daemon_id] = node
        self._owner.setdefault(node, daemon_id)
        return node

    def pin(self, daemon_id: str, node: str) -> None:
        """Give `daemon_id` the id `node` (the config says so: it wins over rules 2, 3)."""
        self._given[daemon_id] = node
        self._owner[node] = daemon_id

    def configured(self, daemon_id: str, aliases: Iterable[str] = ()) -> str | None:
        """The name the config gives this node (rule 1), if any."""
        if not self._names:
            return None
        for key in (daemon_id, *aliases):
            name = self._names.get(address_key(key))
            if name is not None:
                return name
        return None
