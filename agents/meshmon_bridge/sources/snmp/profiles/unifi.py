"""Ubiquiti UniFi access points: UBNT-UniFi-MIB radio table (channel utilisation) and VAP
table (one entry per SSID and band: CCQ, clients, channel, power)."""

from __future__ import annotations

from typing import Any

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.airmax import ubiquiti_candidate
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Snapshot,
    channel_to_mhz,
    columns,
    positive,
    put,
    scaled,
    single_index,
    text,
)

UNIFI = oid("1.3.6.1.4.1.41112.1.6")
RADIO_ENTRY = (*UNIFI, 1, 1, 1)
VAP_ENTRY = (*UNIFI, 1, 2, 1)
AP_SYSTEM = (*UNIFI, 3)


class Unifi:
    """UBNT-UniFi-MIB."""

    name = "unifi"
    anchors = (UNIFI,)
    gets = ()
    static_gets = ((*AP_SYSTEM, 3, 0), (*AP_SYSTEM, 6, 0))  # model, firmware
    walks = (*columns(RADIO_ENTRY, 2, 3, 6, 7, 8, 9), *columns(VAP_ENTRY, 3, 4, 6, 7, 8, 9, 21))
    static_walks = ()

    def candidate(self, identity: Identity) -> bool:
        """Ubiquiti and net-snmp sysObjectIDs, or a UniFi model in sysDescr."""
        return ubiquiti_candidate(identity) or identity.descr.startswith(("UAP", "U-", "USP"))

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Radios by band and by VAP."""
        view.set_info("model", snap.text((*AP_SYSTEM, 3, 0)))
        view.set_info("firmware", snap.text((*AP_SYSTEM, 6, 0)))
        bands: dict[str, dict[str, Any]] = {}
        for _, row in single_index(snap.table(RADIO_ENTRY)):
            band = text(row.get(3)) or text(row.get(2))
            if band is None:
                continue
            radio = bands[band] = view.radio(band)
            put(radio, "busy_pct", scaled(row.get(6)))
            put(radio, "rx_util_pct", scaled(row.get(7)))
            put(radio, "tx_util_pct", scaled(row.get(8)))
            put(radio, "other_bss_pct", scaled(row.get(9)))
        for index, row in single_index(snap.table(VAP_ENTRY)):
            band = text(row.get(9))
            vap = view.radio(text(row.get(7)) or f"vap{index}")
            channel = positive(row.get(4))
            put(vap, "channel", channel)
            put(vap, "freq_mhz", channel_to_mhz(channel))
            put(vap, "ssid", text(row.get(6)))
            ccq = row.get(3)
            if isinstance(ccq, int) and ccq > 0:
                vap["ccq_pct"] = min(round(ccq / 10, 1), 100)
            count = row.get(8)
            clients = count if isinstance(count, int) else None
            put(vap, "clients", clients)
            put(vap, "txpower_dbm", scaled(row.get(21)))
            view.add_clients(clients)
            if band is None:
                continue
            radio = bands.get(band) or bands.setdefault(band, view.radio(band))
            if clients is not None:
                radio["clients"] = radio.get("clients", 0) + clients
            for key in ("channel", "freq_mhz", "txpower_dbm"):
                if key in vap:
                    radio.setdefault(key, vap[key])
