"""Source kinds of meshmon-bridge: one registration line per kind in `KINDS`.

A kind is a TOML array-of-tables name (`[[snmp]]`), the pydantic model of one table
(`extra="forbid"`, so typos are errors with their TOML path) and a factory that turns all
tables of that kind into `Source`s (so a kind can share an engine or a socket among them).
Each kind lives in its own module (or package) below this one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from meshmon_bridge.source import BridgeContext, Source
from meshmon_bridge.sources.freifunk import mapfiles, respondd
from meshmon_bridge.sources.routing import RoutingConfig, create_routing_sources
from meshmon_bridge.sources.snmp import SnmpTable, create_snmp_sources

TableModel = TypeVar("TableModel", bound=BaseModel)


@dataclass(frozen=True)
class SourceKind(Generic[TableModel]):
    """How to read one kind's tables and build its sources."""

    config: type[TableModel]
    create: Callable[[Sequence[TableModel], BridgeContext], list[Source]]


KINDS: dict[str, SourceKind[Any]] = {
    "snmp": SourceKind(SnmpTable, create_snmp_sources),
    "routing": SourceKind(RoutingConfig, create_routing_sources),
    "respondd": SourceKind(respondd.ResponddTable, respondd.create_respondd),
    "meshviewer": SourceKind(mapfiles.MeshviewerTable, mapfiles.create_meshviewer),
    "hopglass": SourceKind(mapfiles.HopglassTable, mapfiles.create_hopglass),
    "openwifimap": SourceKind(mapfiles.OpenWifiMapTable, mapfiles.create_openwifimap),
}
"""table name → config model + factory; the only place a kind is registered"""
