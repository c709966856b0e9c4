"""The `[[routing]]` table of meshmon-bridge's config."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meshmon_bridge.sources.routing.naming import NODE_ID_RE, looks_like_address

RoutingKind = Literal[
    "olsr1", "netjson", "batman-adv", "bmx6", "cnml", "wireguard", "openvpn", "babel"
]
LinkKind = Literal["wifi", "batman", "olsr", "babel", "bmx7", "ethernet", "vpn", "other"]
LOCAL_KINDS = ("babel", "wireguard", "openvpn")
"""kinds whose view holds only the links of the node whose daemon is read"""


def _node_id(value: str, what: str) -> str:
    if not NODE_ID_RE.match(value):
        raise ValueError(f"{what} {value!r} is not a node id (letters, digits, _ . -; ≤ 64)")
    if looks_like_address(value):
        raise ValueError(f"{what} {value!r} holds an address; node ids are public")
    return value


class RoutingConfig(BaseModel):
    """One routing daemon (or saved dump) the bridge reads: `[[routing]]`."""

    model_config = ConfigDict(extra="forbid")

    kind: RoutingKind
    url: str | None = None
    """http(s)://… (OLSR jsoninfo/txtinfo, NetJSON, …); babel: unix:/PATH or tcp://HOST:PORT"""
    file: Path | None = None
    command: str | None = None
    """run by /bin/sh; its standard output is read (e.g. `wg show all dump`)"""
    interval_s: float = Field(default=30, gt=0, le=86_400)
    timeout_s: float = Field(default=10, gt=0, le=600)
    node: str | None = None
    """the node id of the host whose daemon is read (babel, wireguard; required for openvpn)"""
    names: dict[str, str] = Field(default_factory=dict)
    """daemon id or address → node id"""
    names_file: Path | None = None
    """hosts-file format: `ADDRESS NAME` per line (e.g. olsrd's /var/run/hosts_olsr)"""
    remote_nodes: bool = True
    """babel/wireguard/openvpn: also publish the nodes the local one reaches"""
    exclude: list[str] = Field(default_factory=list)
    """node ids or addresses of nodes that speak for themselves (not published here)"""
    link_kind: LinkKind | None = None
    """netjson: the wire link kind, when the graph's `protocol` does not say"""
    id_prefix: str = "node"
    id_key: str | None = None
    """secret for hashed node ids; or keep it in `id_key_file` (made once if missing)"""
    id_key_file: Path | None = None
    handshake_timeout_s: float = Field(default=300, gt=0)
    """wireguard: a peer without a handshake for this long is not connected"""
    duplicate_cn: bool = False
    """openvpn: the server runs with duplicate-cn (clients told apart by address)"""

    @model_validator(mode="after")
    def _one_input(self) -> RoutingConfig:
        given = [k for k in ("url", "file", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of url, file, command (got {given or 'none'})")
        if self.url is not None:
            scheme = self.url.split(":", 1)[0].lower()
            allowed = ("unix", "tcp") if self.kind == "babel" else ("http", "https")
            if scheme not in allowed:
                raise ValueError(f"url: a {self.kind} url starts with "
                                 f"{' or '.join(s + ':' for s in allowed)}")
        if self.node is not None and self.kind not in LOCAL_KINDS:
            raise ValueError(f"node: a {self.kind} view names every node itself; "
                             "use `names` to name them")
        if self.kind == "openvpn" and self.node is None:
            raise ValueError("node: an OpenVPN status log does not name its server; "
                             "give its node id")
        if self.id_key is not None and self.id_key_file is not None:
            raise ValueError("give id_key or id_key_file, not both")
        if self.link_kind is not None and self.kind != "netjson":
            raise ValueError("link_kind: only for kind = \"netjson\"")
        return self

    @field_validator("url", "file", "command", "node", "names_file", "id_key", "id_key_file",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("node")
    @classmethod
    def _check_node(cls, value: str | None) -> str | None:
        return None if value is None else _node_id(value, "node")

    @field_validator("names")
    @classmethod
    def _check_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            _node_id(name, f"names[{key!r}]:")
        return value

    @field_validator("id_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        _node_id(value, "id_prefix")
        if len(value) > 40:
            raise ValueError("id_prefix: at most 40 characters")
        return value

    @property
    def location(self) -> str:
        """What is read, for logs and errors."""
        return self.url or (str(self.file) if self.file else f"command {self.command!r}")
