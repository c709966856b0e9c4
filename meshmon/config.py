"""The collector's TOML configuration, checked once at start-up.

Every section is a pydantic model with `extra="forbid"`, so a typo is an error that names
its TOML path. `config.example.toml` shows every key with its default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddedBrokerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=0, le=65535)
    password_file: str = ""
    """`user:hash` lines, argon2 (`meshmon passwd FILE USER`) or sha512-crypt; empty allows
    anonymous clients. Not mosquitto_passwd's format (`$7$`), which amqtt cannot verify."""


class MqttConfig(Section):
    broker: Literal["embedded", "external"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: str = ""
    tls_insecure: bool = False
    client_id: str = ""
    persistent_session: bool = True
    """keep the subscription at the broker while the collector restarts (QoS 1 messages wait)"""
    topic_prefix: str = Field(default="meshmon", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    queue_max: int = Field(default=100_000, ge=100)
    embedded: EmbeddedBrokerConfig = EmbeddedBrokerConfig()

    @model_validator(mode="after")
    def _collector_login(self) -> MqttConfig:
        if self.broker == "embedded" and self.embedded.password_file and not self.username:
            raise ValueError(
                "the collector logs in to its own embedded broker too: with "
                "embedded.password_file set, give mqtt.username and mqtt.password "
                "of a user in that file")
        return self


class HttpConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""


class StorageConfig(Section):
    path: str = "meshmon.sqlite"
    sample_retention_h: float = Field(default=48, gt=0)
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    queue_max: int = Field(default=200_000, ge=100)
    max_clock_skew_s: float = Field(default=600, gt=0)
    """a sample whose agent `ts` is further than this from its arrival is stored at arrival
    time (SQLite and InfluxDB); such reports are counted as `clock_fallbacks`"""


class InfluxConfig(Section):
    enabled: bool = False
    api: Literal["v1", "v2"] = "v2"
    url: str = "http://127.0.0.1:8086"
    token: str = ""
    org: str = ""
    bucket: str = "meshmon"
    database: str = "meshmon"
    username: str = ""
    password: str = ""
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    buffer_max_points: int = Field(default=1_000_000, ge=1000)
    timeout_s: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _api_needs(self) -> InfluxConfig:
        if self.enabled and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self


class TopologyConfig(Section):
    offline_after_intervals: float = Field(default=3, gt=1)
    """a node with no report for this many of its intervals is offline"""
    link_timeout_s: float = Field(default=300, gt=0)
    """a link neither end has reported for this long is removed"""


class PrivacyConfig(Section):
    coarsen_grid_deg: float = Field(default=0.01, ge=0, le=10)
    """non-public nodes are shown snapped to this grid (0 = hide them from the map)"""


class Config(Section):
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    storage: StorageConfig = StorageConfig()
    influxdb: InfluxConfig = InfluxConfig()
    topology: TopologyConfig = TopologyConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class ConfigError(Exception):
    """A config that cannot be used; `errors` lists `(toml_path, message)` pairs."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {path}: {msg}" for path, msg in errors)
        super().__init__(f"{source}: {len(errors)} error(s)\n{lines}")


def parse(text: str, source: str = "<config>") -> Config:
    """Validate TOML text; raise ConfigError naming the TOML path of every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [("(syntax)", str(exc))]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = [
            (".".join(str(p) for p in err["loc"]) or "(root)", err["msg"]) for err in exc.errors()
        ]
        raise ConfigError(source, errors) from None


def load(path: str | Path | None) -> Config:
    """Read a config file (None gives the embedded defaults)."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [("(file)", exc.strerror or str(exc))]) from None
    return parse(text, str(p))
