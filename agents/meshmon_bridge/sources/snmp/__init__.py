"""`[[snmp]]`: radios and routers polled over SNMP (docs/snmp.md)."""

from __future__ import annotations

from collections.abc import Sequence

from meshmon_bridge.source import BridgeContext, Source
from meshmon_bridge.sources.snmp.config import SnmpTable

MAX_CONCURRENT = 64
"""devices polled at the same time, over all [[snmp]] tables of a bridge"""


def create_snmp_sources(tables: Sequence[SnmpTable], context: BridgeContext) -> list[Source]:
    """One source per device; all share one SNMP engine (one UDP socket) and one bound."""
    from meshmon_bridge.sources.snmp.device import SharedEngine, SnmpDevice

    shared = SharedEngine(MAX_CONCURRENT)
    return [SnmpDevice(table, shared) for table in tables]


__all__ = ["SnmpTable", "create_snmp_sources"]
