"""The agent's TOML config: typed dataclasses, checked once at start; errors name the key."""

from __future__ import annotations

import difflib
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

NODE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass
class MqttSettings:
    """Broker connection and the report queue of one Publisher."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    tls: bool = False
    tls_ca_file: str = ""
    tls_insecure: bool = False
    keepalive_s: int = 30
    client_id: str = ""
    queue_max: int = 1000
    reconnect_min_s: float = 1
    reconnect_max_s: float = 60


@dataclass
class CollectSettings:
    """What the agent reads."""

    wifi_interfaces: list[str] = field(default_factory=list)
    wifi: bool = True
    survey: bool = True
    batman: bool = True
    batman_mesh_if: str = ""
    wireguard: bool = True
    olsr_url: str = ""
    """olsrd's jsoninfo, txtinfo or netjsoninfo, e.g. http://127.0.0.1:9090/links"""
    babel_socket: str = ""
    """babeld's local interface (`-g`): `[::1]:33123` or a UNIX socket path"""
    peer_names: dict[str, str] = field(default_factory=dict)
    """routing neighbour address or WireGuard public key → node id"""
    command_timeout_s: float = 5
    canned_dir: str = ""


@dataclass
class InfoSettings:
    """Static facts for the retained `info` message."""

    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    gateway: bool = False
    public: bool = True
    tags: list[str] = field(default_factory=list)
    owner_contact: str = ""
    owner_notify: bool = False
    """the owner opts in to notices about this node (email contact, docs/alerts.md)"""
    model: str = ""
    firmware: str = ""


@dataclass
class AgentConfig:
    """The whole agent config."""

    node: str = ""
    prefix: str = "meshmon"
    interval_s: float = 30
    log_level: str = "INFO"
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    collect: CollectSettings = field(default_factory=CollectSettings)
    info: InfoSettings = field(default_factory=InfoSettings)


ADDRESS_IN_ID_RE = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}(?![0-9a-f])"
    r"|(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])",
    re.IGNORECASE,
)
"""a MAC or IPv4 address inside a node id (the collector's own check is the same idea)"""


def sanitise_node_id(name: str) -> str:
    """A valid node id from a host name: odd characters become `-`, at most 64 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", name.strip())
    cleaned = cleaned.lstrip("_.-")[:64]
    return cleaned or "node"


def _check_type(where: str, value: Any, default: Any, annotation: str) -> Any:
    if "dict[str, str]" in annotation:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{where}: expected a table of strings")
        bad = [v for v in value.values() if not NODE_ID_RE.match(v) or ADDRESS_IN_ID_RE.search(v)]
        if bad:
            raise ConfigError(f"{where}: {bad[0]!r} is not a node id (and may not hold an address)")
        return dict(value)
    if "list[str]" in annotation:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return value
    if "float" in annotation:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number")
        return float(value)
    expected = type(default)
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {type(value).__name__}")
    return value


def _fill(obj: Any, data: dict[str, Any], path: str, origin: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in data.items():
        where = f"{origin}: {path}{key}"
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key{hint}")
        current = getattr(obj, key)
        if hasattr(current, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a table [{path}{key}]")
            _fill(current, value, f"{path}{key}.", origin)
        else:
            setattr(obj, key, _check_type(where, value, current, str(known[key].type)))


def from_dict(data: dict[str, Any], origin: str = "config") -> AgentConfig:
    """Build and check a config from parsed TOML; raise ConfigError naming the bad key."""
    cfg = AgentConfig()
    _fill(cfg, data, "", origin)
    if not cfg.node:
        cfg.node = sanitise_node_id(socket.gethostname())
    if not NODE_ID_RE.match(cfg.node):
        raise ConfigError(f"{origin}: node: {cfg.node!r} is not [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}")
    if ADDRESS_IN_ID_RE.search(cfg.node):
        raise ConfigError(f"{origin}: node: {cfg.node!r} holds a MAC or IP address; node ids "
                          "are public, so the collector refuses it: set node = \"a-name\"")
    if not 0 < cfg.interval_s <= 86400:
        raise ConfigError(f"{origin}: interval_s: must be in (0, 86400]")
    if not 1 <= cfg.mqtt.port <= 65535:
        raise ConfigError(f"{origin}: mqtt.port: must be 1..65535")
    if cfg.mqtt.queue_max < 1:
        raise ConfigError(f"{origin}: mqtt.queue_max: must be at least 1")
    if (cfg.info.lat is None) != (cfg.info.lon is None):
        raise ConfigError(f"{origin}: info: lat and lon go together")
    return cfg


def load(path: str | Path) -> AgentConfig:
    """Read and check a TOML config file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return from_dict(data, str(path))
