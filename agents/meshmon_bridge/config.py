"""The bridge's TOML config: `[bridge]`, `[mqtt]` and one array of tables per source kind.

Checked once at start; every error names its TOML path (`snmp[2].community: …`, array
entries counted from 0). Source kinds and their config models come from the registry in
`meshmon_bridge.sources`, so a new kind needs no change here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic.dataclasses
from meshmon_agent.config import MqttSettings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from meshmon_bridge.section import Section, check_node_id

TOPIC_PREFIX_RE = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


class ConfigError(Exception):
    """A config that cannot be used; `errors` lists `(toml_path, message)` pairs."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {path}: {msg}" for path, msg in errors)
        super().__init__(f"{source}: {len(errors)} error(s)\n{lines}")


class BridgeSection(Section):
    """`[bridge]`: who this bridge is."""

    id: str
    """its own status topic `PREFIX/v1/bridge/ID/status` and `info.source.via` of its nodes"""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("id")
    @classmethod
    def _public_id(cls, value: str) -> str:
        return check_node_id(value)


@pydantic.dataclasses.dataclass(config=ConfigDict(extra="forbid"))
class BridgeMqttSettings(MqttSettings):
    """`[mqtt]`: the agent's broker settings plus the topic prefix."""

    topic_prefix: str = Field(default="meshmon", pattern=TOPIC_PREFIX_RE)

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be 1..65535")
        return value

    @field_validator("queue_max", "keepalive_s")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value


class _Head(Section):
    bridge: BridgeSection
    mqtt: BridgeMqttSettings = Field(default_factory=BridgeMqttSettings)


@dataclass
class SourceTable:
    """One validated source table, e.g. the third `[[snmp]]`."""

    kind: str
    index: int
    config: BaseModel

    @property
    def path(self) -> str:
        """Its TOML path, e.g. `snmp[2]`."""
        return f"{self.kind}[{self.index}]"


@dataclass
class BridgeConfig:
    """The whole bridge config."""

    bridge: BridgeSection
    mqtt: BridgeMqttSettings
    sources: list[SourceTable] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path.cwd)
    """the config file's folder: relative file paths in source tables start there"""


def _toml_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(root)"


def _errors(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            msg = "unknown key"
        out.append((_toml_path(tuple(err["loc"]), prefix), msg))
    return out


def from_dict(data: dict[str, Any], source: str = "<config>", base_dir: Path | None = None
              ) -> BridgeConfig:
    """Build and check a config from parsed TOML; raise ConfigError naming each bad path."""
    from meshmon_bridge.sources import KINDS

    errors: list[tuple[str, str]] = []
    head_data = {k: data[k] for k in ("bridge", "mqtt") if k in data}
    head: _Head | None = None
    try:
        head = _Head.model_validate(head_data)
    except ValidationError as exc:
        errors += _errors(exc)
    tables: list[SourceTable] = []
    for kind, entries in data.items():
        if kind in ("bridge", "mqtt"):
            continue
        if kind not in KINDS:
            known = ", ".join(["bridge", "mqtt", *sorted(KINDS)])
            errors.append((kind, f"unknown table (known: {known})"))
            continue
        if not isinstance(entries, list):
            errors.append((kind, f"write source tables as [[{kind}]] (an array of tables)"))
            continue
        for index, entry in enumerate(entries):
            try:
                model = KINDS[kind].config.model_validate(entry)
            except ValidationError as exc:
                errors += _errors(exc, f"{kind}[{index}]")
                continue
            tables.append(SourceTable(kind, index, model))
    if errors or head is None:
        raise ConfigError(source, errors)
    return BridgeConfig(head.bridge, head.mqtt, tables, base_dir or Path.cwd())


def load(path: str | Path) -> BridgeConfig:
    """Read and check a TOML config file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [("(file)", exc.strerror or str(exc))]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("(syntax)", str(exc))]) from None
    return from_dict(data, str(path), path.resolve().parent)
