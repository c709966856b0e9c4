"""Every device: SNMPv2-MIB system group, IF-MIB interfaces (names, MACs, state, counters),
HOST-RESOURCES uptime and UCD-SNMP load/memory (net-snmp agents: Linux, OpenWrt, airOS)."""

from __future__ import annotations

from meshmon_bridge.sources.snmp.client import Oid, oid
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Snapshot,
    columns,
    mac,
    text,
)

SYS_DESCR = oid("1.3.6.1.2.1.1.1.0")
SYS_OBJECT_ID = oid("1.3.6.1.2.1.1.2.0")
SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")
SYS_NAME = oid("1.3.6.1.2.1.1.5.0")
HR_SYSTEM_UPTIME = oid("1.3.6.1.2.1.25.1.1.0")
UCD_LOAD_INT = oid("1.3.6.1.4.1.2021.10.1.5")  # laLoadInt.{1,2,3}: load × 100
UCD_MEM_TOTAL = oid("1.3.6.1.4.1.2021.4.5.0")
UCD_MEM_AVAIL = oid("1.3.6.1.4.1.2021.4.6.0")
UCD_MEM_BUFFER = oid("1.3.6.1.4.1.2021.4.14.0")
UCD_MEM_CACHED = oid("1.3.6.1.4.1.2021.4.15.0")

IF_ENTRY = oid("1.3.6.1.2.1.2.2.1")
IFX_ENTRY = oid("1.3.6.1.2.1.31.1.1.1")
IF_DESCR, IF_TYPE, IF_PHYS_ADDRESS, IF_OPER_STATUS = 2, 3, 6, 8
IF_IN_OCTETS, IF_IN_UCAST, IF_IN_ERRORS = 10, 11, 14
IF_OUT_OCTETS, IF_OUT_UCAST, IF_OUT_ERRORS = 16, 17, 20
IFX_NAME, IFX_HC_IN_OCTETS, IFX_HC_IN_UCAST, IFX_HC_OUT_OCTETS, IFX_HC_OUT_UCAST = 1, 6, 7, 10, 11
SOFTWARE_LOOPBACK = 24

COUNTERS_32 = {"rx_bytes": IF_IN_OCTETS, "tx_bytes": IF_OUT_OCTETS,
               "rx_packets": IF_IN_UCAST, "tx_packets": IF_OUT_UCAST}
COUNTERS_64 = {"rx_bytes": IFX_HC_IN_OCTETS, "tx_bytes": IFX_HC_OUT_OCTETS,
               "rx_packets": IFX_HC_IN_UCAST, "tx_packets": IFX_HC_OUT_UCAST}


class Mib2:
    """System group and IF-MIB: every device has them."""

    name = "mib2"
    anchors: tuple[Oid, ...] = ()
    static_gets = ()  # sysDescr, sysObjectID: discovery reads them
    gets = (SYS_UPTIME, SYS_NAME, HR_SYSTEM_UPTIME,
            *((*UCD_LOAD_INT, i) for i in (1, 2, 3)),
            UCD_MEM_TOTAL, UCD_MEM_AVAIL, UCD_MEM_BUFFER, UCD_MEM_CACHED)
    walks = (*columns(IF_ENTRY, IF_OPER_STATUS, IF_IN_ERRORS, IF_OUT_ERRORS,
                    *COUNTERS_32.values()),
             *columns(IFX_ENTRY, *COUNTERS_64.values()))
    static_walks = (*columns(IF_ENTRY, IF_DESCR, IF_TYPE, IF_PHYS_ADDRESS),
                    *columns(IFX_ENTRY, IFX_NAME))

    def candidate(self, identity: Identity) -> bool:
        """Always."""
        return True

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Uptime, load, memory, interfaces and their MACs."""
        uptime = snap.int(HR_SYSTEM_UPTIME)
        if uptime is None:
            uptime = snap.int(SYS_UPTIME)
        if uptime is not None:
            view.sys["uptime_s"] = round(uptime / 100, 2)
        loads = [snap.int((*UCD_LOAD_INT, i)) for i in (1, 2, 3)]
        if all(v is not None for v in loads):
            view.sys["load"] = [round((v or 0) / 100, 2) for v in loads]
        total = snap.int(UCD_MEM_TOTAL)
        if total:
            view.sys["mem_total_kb"] = total
            avail = [snap.int(o) for o in (UCD_MEM_AVAIL, UCD_MEM_BUFFER, UCD_MEM_CACHED)]
            if avail[0] is not None:
                # like MemAvailable: free + buffers + cache (what the agent reports)
                view.sys["mem_avail_kb"] = min(total, sum(v or 0 for v in avail))
        hostname = snap.text(SYS_NAME)
        if hostname and hostname != "<private>":
            view.set_info("hostname", hostname)
        self._interfaces(snap, view)

    def _interfaces(self, snap: Snapshot, view: DeviceView) -> None:
        rows = snap.table(IF_ENTRY)
        xrows = snap.table(IFX_ENTRY)
        for index in sorted(set(rows) | set(xrows)):
            if len(index) != 1:
                continue
            row, xrow = rows.get(index, {}), xrows.get(index, {})
            name = text(xrow.get(IFX_NAME)) or text(row.get(IF_DESCR)) or f"if{index[0]}"
            view.ifnames[index[0]] = name
            view.add_mac(mac(row.get(IF_PHYS_ADDRESS)))
            if row.get(IF_TYPE) == SOFTWARE_LOOPBACK:
                continue
            entry: dict[str, object] = {"name": name}
            status = row.get(IF_OPER_STATUS)
            if isinstance(status, int):
                entry["up"] = status == 1
            # ifHC* (64 bit) where the agent has them; Counter32 ones are widened later
            hc = any(isinstance(xrow.get(c), int) for c in COUNTERS_64.values())
            counters = [(k, xrow.get(c), 64) for k, c in COUNTERS_64.items()] if hc else [
                (k, row.get(c), 32) for k, c in COUNTERS_32.items()]
            counters += [("rx_errors", row.get(IF_IN_ERRORS), 32),
                         ("tx_errors", row.get(IF_OUT_ERRORS), 32)]
            view.ifaces.append(entry)
            for key, value, bits in counters:
                if isinstance(value, int):
                    entry[key] = value
                    view.counter_bits[(name, key)] = bits


def redundant_walks(answered: set[Oid]) -> set[Oid]:
    """Counter32 columns that need no walking because the agent has the ifHC* ones."""
    hc = set(columns(IFX_ENTRY, *COUNTERS_64.values()))
    return set(columns(IF_ENTRY, *COUNTERS_32.values())) if hc & answered else set()
