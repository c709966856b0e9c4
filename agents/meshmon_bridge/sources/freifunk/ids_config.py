"""The config keys every Freifunk source table shares: public ids and what it publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints

from meshmon_bridge.config import Section
from meshmon_bridge.sources.freifunk.node_ids import PublicIds

ID_PREFIX_RE = r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,15})?$"


class FreifunkTable(Section):
    """Keys shared by `[[respondd]]`, `[[meshviewer]]`, `[[hopglass]]`, `[[openwifimap]]`."""

    interval_s: float = Field(default=60, gt=0, le=86_400)
    id_prefix: str = Field(default="", pattern=ID_PREFIX_RE)
    """put before every node id of this source, e.g. `ffhb-` (two communities in one bridge)"""
    id_secret: str = ""
    """key of the hash that tags ids of unnamed or colliding nodes (docs/freifunk.md)"""
    state_file: str = ""
    """JSON file keeping the node ids given, across restarts and renames; empty: none"""
    public: bool = True
    """`info.public` of every node (false: the collector coarsens their locations)"""
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=32)

    def public_ids(self, base_dir: Path) -> PublicIds:
        """The id registry this table configures."""
        state = Path(self.state_file).expanduser() if self.state_file else None
        if state is not None and not state.is_absolute():
            state = base_dir / state
        return PublicIds(self.id_prefix, self.id_secret, state)
