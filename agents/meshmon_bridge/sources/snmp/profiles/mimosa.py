"""Mimosa (B5/B5c/B11 point-to-point, A5/C5 point-to-multipoint): MIMOSA-NETWORKS-BFIVE-MIB
chain and stream tables, MIMOSA-NETWORKS-PTMP-MIB channel/power table."""

from __future__ import annotations

import re
from typing import Any

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Row,
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
            _read_chains(view.radio("wlan0"), [row for _, row in chains])
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


def _read_chains(radio: dict[str, Any], rows: list[Row]) -> None:
    """Per chain (in index order, those with a valid receive power): power, SNR, noise and
    frequency — a dual-carrier B5c has two chains on each of two frequencies."""
    per_chain: dict[str, list[float | int | None]] = {
        "chains_dbm": [scaled(r.get(3), 10) for r in rows],
        "chains_snr_db": [scaled(r.get(5), 10) for r in rows],
        "chains_noise_dbm": [scaled(r.get(4), 10) for r in rows],
        "chains_freq_mhz": [positive(r.get(6)) for r in rows]}
    rx = per_chain["chains_dbm"]
    valid = [i for i, v in enumerate(rx) if v is not None and v > INVALID_DBM]
    for key, values in per_chain.items():
        picked = [values[i] for i in valid]
        if picked and all(v is not None for v in picked):  # aligned with chains_dbm, or not at all
            radio[key] = picked
    put(radio, "signal_dbm", max(radio.get("chains_dbm", ()), default=None))
    put(radio, "noise_dbm", max((n for n in per_chain["chains_noise_dbm"] if n is not None),
                                default=None))
    put(radio, "txpower_dbm", max((v for v in (scaled(r.get(2), 10) for r in rows)
                                   if v is not None), default=None))
    put(radio, "freq_mhz", next((f for f in per_chain["chains_freq_mhz"] if f), None))
