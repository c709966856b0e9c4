"""SNMP profiles, one per MIB family; `PROFILES` is the order they are read in (IF-MIB
first: the others name interfaces through it; the generic 802.11 fallback last)."""

from __future__ import annotations

from meshmon_bridge.sources.snmp.profiles.af60 import Af60
from meshmon_bridge.sources.snmp.profiles.airfiber import AirFiber
from meshmon_bridge.sources.snmp.profiles.airmax import AirMax
from meshmon_bridge.sources.snmp.profiles.base import Profile
from meshmon_bridge.sources.snmp.profiles.dot11 import Dot11
from meshmon_bridge.sources.snmp.profiles.ltu import Ltu
from meshmon_bridge.sources.snmp.profiles.mib2 import Mib2
from meshmon_bridge.sources.snmp.profiles.mikrotik import Mikrotik
from meshmon_bridge.sources.snmp.profiles.mimosa import Mimosa
from meshmon_bridge.sources.snmp.profiles.netsnmp_extend import NetSnmpExtend
from meshmon_bridge.sources.snmp.profiles.unifi import Unifi

PROFILES: tuple[Profile, ...] = (
    Mib2(), AirMax(), AirFiber(), Ltu(), Af60(), Unifi(), Mikrotik(), Mimosa(),
    NetSnmpExtend(), Dot11(),
)
