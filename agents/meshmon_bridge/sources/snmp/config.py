"""One `[[snmp]]` table: a device to poll, how to reach it and what to publish it as."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meshmon_bridge.section import check_node_id

AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
PrivProtocol = Literal["des", "3des", "aes", "aes128", "aes192", "aes256"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SnmpV3(_Table):
    """`[snmp.v3]`: SNMPv3 user-based security (noAuthNoPriv, authNoPriv or authPriv)."""

    user: str = Field(min_length=1)
    auth_protocol: AuthProtocol | None = None
    auth_key: str = ""
    priv_protocol: PrivProtocol | None = None
    priv_key: str = ""
    context: str = ""

    @model_validator(mode="after")
    def _keys_with_protocols(self) -> SnmpV3:
        if self.auth_protocol and len(self.auth_key) < 8:
            raise ValueError("auth_key: at least 8 characters with auth_protocol")
        if self.priv_protocol and not self.auth_protocol:
            raise ValueError("priv_protocol needs auth_protocol (authPriv)")
        if self.priv_protocol and len(self.priv_key) < 8:
            raise ValueError("priv_key: at least 8 characters with priv_protocol")
        return self


class Location(_Table):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float | None = Field(default=None, ge=-500, le=10_000)


class SnmpTable(_Table):
    """`[[snmp]]`: one device."""

    host: str = Field(min_length=1)
    port: int = Field(default=161, ge=1, le=65535)
    community: str | None = None
    """SNMPv2c community (default "public" unless a [snmp.v3] table is given)"""
    v3: SnmpV3 | None = None
    node: str
    """the public node id the device is published as"""
    interval_s: float = Field(default=30, gt=0, le=86_400)
    timeout_s: float = Field(default=2, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=10)
    offline_after: int = Field(default=3, ge=1, le=1000)
    """missed polls in a row before the device is published `online: false`"""
    max_repetitions: int = Field(default=24, ge=1, le=200)
    """at most this many GETBULK repetitions per varbind (a response stays within 48)"""
    hostname: str | None = None
    location: Location | None = None
    public: bool = True
    gateway: bool = False
    tags: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("node")
    @classmethod
    def _public_id(cls, value: str) -> str:
        return check_node_id(value)

    @model_validator(mode="after")
    def _one_security_model(self) -> SnmpTable:
        if self.community is not None and self.v3 is not None:
            raise ValueError("give `community` (v2c) or a [snmp.v3] table, not both")
        return self
