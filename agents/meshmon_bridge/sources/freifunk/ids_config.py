"""The config keys every Freifunk source table shares (public ids, what it publishes), and
the id registry they configure, made at the first poll."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from meshmon_bridge.section import Section
from meshmon_bridge.source import BridgeContext, SourceError
from meshmon_bridge.sources.freifunk.node_ids import PublicIds
from meshmon_bridge.sources.routing.naming import (
    NamingError,
    default_key_file,
    load_or_create_key,
)

NODE_PREFIX_RE = r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,15})?$"


class FreifunkTable(Section):
    """Keys shared by `[[respondd]]`, `[[meshviewer]]`, `[[hopglass]]`, `[[openwifimap]]`."""

    interval_s: float = Field(default=60, gt=0, le=86_400)
    node_prefix: str = Field(default="", pattern=NODE_PREFIX_RE)
    """put before every node id of this table, e.g. `ffhb-` (two communities, one bridge)"""
    id_key: str | None = None
    """key of the hash that tags ids of unnamed or colliding nodes; or keep it in
    `id_key_file`; neither: the bridge's own key file, shared with `[[routing]]`"""
    id_key_file: str | None = None
    state_file: str = ""
    """JSON file keeping the node ids given, across restarts and renames; empty: none"""
    public: bool = True
    """`info.public` of every node (false: the collector coarsens their locations)"""
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=32)

    @field_validator("id_key", "id_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_key(self) -> FreifunkTable:
        if self.id_key is not None and self.id_key_file is not None:
            raise ValueError("give id_key or id_key_file, not both")
        return self


class LazyIds:
    """The table's `PublicIds`, made at first use: reading or creating the key file can
    fail, and that fails the poll (logged), not the bridge's start."""

    def __init__(self, table: FreifunkTable, context: BridgeContext) -> None:
        self.table = table
        self.context = context
        self._ids: PublicIds | None = None

    def get(self) -> PublicIds:
        """The registry (SourceError if its key cannot be had)."""
        if self._ids is None:
            table, base = self.table, self.context.base_dir
            try:
                key = table.id_key.encode() if table.id_key is not None else load_or_create_key(
                    _path(table.id_key_file, base) or default_key_file(self.context.bridge_id))
            except NamingError as exc:
                raise SourceError(str(exc)) from None
            self._ids = PublicIds(table.node_prefix, key, _path(table.state_file, base))
        return self._ids


def _path(value: str | None, base_dir: Path) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path
