"""Mimosa (B5/B5c/B11 point-to-point, A5/C5 point-to-multipoint): MIMOSA-NETWORKS-BFIVE-MIB
chain and stream tables, MIMOSA-NETWORKS-PTMP-MIB channel/power table."""

from __future__ import annotations

import re

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Snapshot,
    columns,
    positive,
    put,
    scaled,
    single_index,
    text,
)
from meshmon_bridge.sources.snmp.profiles.mib2 import SYS_DESCR

MIMOSA = oid("1.3.6.1.4.1.43356")
WIRELESS = (*MIMOSA, 2, 1, 2)
FIRMWARE = (*WIRELESS, 1, 3, 0)
CHAIN_ENTRY = (*WIRELESS, 6, 1, 1)
STREAM_ENTRY = (*WIRELESS, 6, 2, 1)
PER = (*WIRELESS, 7)
PTMP_CHANNEL_ENTRY = (*WIRELESS, 9, 3, 3, 1)
INVALID_DBM = -100  # mimosaRxPower/mimosaSNR: "not a valid entry"


class Mimosa:
    """MIMOSA-NETWORKS-BFIVE-MIB and -PTMP-MIB."""

    name = "mimosa"
    anchors = ()
    gets = ((*PER, 3, 0), (*PER, 4, 0))
    static_gets = (FIRMWARE, SYS_DESCR)
    walks = (*columns(CHAIN_ENTRY, 2, 3, 4, 5, 6), *columns(STREAM_ENTRY, 2, 5),
             *columns(PTMP_CHANNEL_ENTRY, 2, 7, 10))
    static_walks = ()

    def candidate(self, identity: Identity) -> bool:
        """Mimosa's sysObjectID."""
        return identity.under(MIMOSA)

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Model, firmware, PTP chains and streams, PTMP radios."""
        found = re.match(r"(?i)mimosa\s+(\S+)", snap.text(SYS_DESCR) or "")
        view.set_info("model", found.group(1) if found else None)
        view.set_info("firmware", snap.text(FIRMWARE))
        chains = single_index(snap.table(CHAIN_ENTRY))
        if chains:
            radio = view.radio("wlan0")
            rx = [scaled(r.get(3), 10) for _, r in chains]
            snr = [scaled(r.get(5), 10) for _, r in chains]
            valid = [i for i, v in enumerate(rx) if v is not None and v > INVALID_DBM]
            if valid:
                radio["chains_dbm"] = [rx[i] for i in valid]
                radio["chains_snr_db"] = [snr[i] for i in valid if snr[i] is not None]
                radio["signal_dbm"] = max(rx[i] for i in valid)  # type: ignore[type-var]
            noise = [scaled(r.get(4), 10) for _, r in chains]
            put(radio, "noise_dbm", max((n for n in noise if n is not None), default=None))
            put(radio, "txpower_dbm", max((v for v in (scaled(r.get(2), 10) for _, r in chains)
                                           if v is not None), default=None))
            put(radio, "freq_mhz", next((positive(r.get(6)) for _, r in chains
                                         if positive(r.get(6))), None))
        streams = single_index(snap.table(STREAM_ENTRY))
        if streams:
            radio = view.radio("wlan0")
            radio["streams_tx_mbps"] = [positive(r.get(2)) or 0 for _, r in streams]
            radio["streams_rx_mbps"] = [positive(r.get(5)) or 0 for _, r in streams]
            radio["tx_rate_mbps"] = sum(radio["streams_tx_mbps"])
            radio["rx_rate_mbps"] = sum(radio["streams_rx_mbps"])
        for per_column, key in ((3, "tx_error_pct"), (4, "rx_error_pct")):
            value = scaled(snap.get((*PER, per_column, 0)), 100)
            if value is not None and (chains or streams):
                view.radio("wlan0")[key] = value
        for index, row in single_index(snap.table(PTMP_CHANNEL_ENTRY)):
            radio = view.radio(text(row.get(2)) or f"radio{index}")
            put(radio, "freq_mhz", positive(row.get(7)))
            put(radio, "txpower_dbm", scaled(row.get(10)))
