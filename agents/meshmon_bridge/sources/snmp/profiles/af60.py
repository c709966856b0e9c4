"""Ubiquiti 60 GHz (airFiber 60, Wave): UI-AF60-MIB config, status and station table."""

from __future__ import annotations

import re

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.airmax import ubiquiti_candidate, wireless_iface
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Snapshot,
    columns,
    mac,
    positive,
    put,
    scaled,
)

AF60 = oid("1.3.6.1.4.1.41112.1.11.1")
CONFIG = (*AF60, 1)
STATUS = (*AF60, 2)
STATION_ENTRY = (*AF60, 3, 1)


class Af60:
    """UI-AF60-MIB (scalars carry the instance `.1`)."""

    name = "af60"
    anchors = (AF60,)
    gets = tuple((*CONFIG, c, 1) for c in (2, 3, 4))
    static_gets = tuple((*STATUS, c, 1) for c in (1, 2, 4))  # MAC, model, firmware
    walks = columns(STATION_ENTRY, 3, 4, 7, 8, 11, 12, 15, 18, 19)
    static_walks = ()

    def candidate(self, identity: Identity) -> bool:
        """Ubiquiti sysObjectIDs."""
        return ubiquiti_candidate(identity)

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Radio and stations."""
        view.set_info("model", snap.text((*STATUS, 2, 1)))
        firmware = snap.text((*STATUS, 4, 1))
        # `GMC.ipq5018.v3.4.0.cd580eac.241001.1122` → v3.4.0, `….v2.6.0-RC.46590…` → v2.6.0-RC
        found = re.search(r"v\d+(?:\.\d+)+(?:-[A-Za-z0-9]+)?", firmware or "")
        view.set_info("firmware", found.group(0) if found else firmware)
        view.add_mac(mac(snap.get((*STATUS, 1, 1))))
        iface = wireless_iface(view, 1)
        radio = view.radio(iface)
        put(radio, "freq_mhz", positive(snap.get((*CONFIG, 2, 1))))
        put(radio, "width_mhz", positive(snap.get((*CONFIG, 3, 1))))
        put(radio, "ssid", snap.text((*CONFIG, 4, 1)))
        stations = 0
        for index, row in snap.table(STATION_ENTRY).items():
            link = view.link(mac(index), iface)
            if link is None:
                continue
            stations += 1
            put(link, "rssi", scaled(row.get(3)))
            put(link, "snr_db", scaled(row.get(4)))
            put(link, "tx_capacity_mbps", scaled(row.get(7), 1e3))
            put(link, "rx_capacity_mbps", scaled(row.get(8), 1e3))
            put(link, "tx_rate_mbps", scaled(row.get(11), 1e3))  # current throughput
            put(link, "rx_rate_mbps", scaled(row.get(12), 1e3))
            put(link, "distance_m", scaled(row.get(15)))
            put(link, "remote_rssi", scaled(row.get(18)))
            put(link, "remote_snr_db", scaled(row.get(19)))
            put(link, "freq_mhz", radio.get("freq_mhz"))
            put(link, "width_mhz", radio.get("width_mhz"))
        radio["clients"] = stations
        view.add_clients(stations)
