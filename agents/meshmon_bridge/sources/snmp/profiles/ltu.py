"""Ubiquiti airFiber LTU (UBNT-AFLTU-MIB): radio config and the station table, one link per
remote station with chain powers (measured and ideal), signal level, capacity, distance."""

from __future__ import annotations

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.airmax import ubiquiti_candidate, wireless_iface
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Snapshot,
    columns,
    every,
    mac,
    positive,
    put,
    scaled,
)

AFLTU = oid("1.3.6.1.4.1.41112.1.10.1")
CONFIG = (*AFLTU, 2)
STATUS = (*AFLTU, 3)
STATION_ENTRY = (*AFLTU, 4, 1)
NO_IDEAL_DBM = -99
"""afLTUStaIdealRxPower0/1 read -99 where the firmware computes no ideal power (LTU 1.4.0: the
chains' levels read 0 % then, next to a -48 dBm signal): not a reading"""


class Ltu:
    """UBNT-AFLTU-MIB."""

    name = "ltu"
    anchors = (AFLTU,)
    gets = tuple((*CONFIG, c, 0) for c in (2, 4, 5, 6))
    static_gets = tuple((*STATUS, c, 0) for c in (1, 2, 4))  # MAC, model, firmware
    walks = columns(STATION_ENTRY, 3, 4, 5, 6, 7, 8, 9, 10, 16, 17, 23)
    static_walks = ()

    def candidate(self, identity: Identity) -> bool:
        """Ubiquiti and net-snmp sysObjectIDs (LTU firmware reports net-snmp's)."""
        return ubiquiti_candidate(identity)

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Radio and stations."""
        view.set_info("model", snap.text((*STATUS, 2, 0)))
        view.set_info("firmware", snap.text((*STATUS, 4, 0)))
        view.add_mac(mac(snap.get((*STATUS, 1, 0))))
        iface = wireless_iface(view, 1)
        radio = view.radio(iface)
        put(radio, "freq_mhz", positive(snap.get((*CONFIG, 2, 0))))
        put(radio, "width_mhz", positive(snap.get((*CONFIG, 4, 0))))
        put(radio, "ssid", snap.text((*CONFIG, 5, 0)))
        put(radio, "txpower_dbm", scaled(snap.get((*CONFIG, 6, 0))))  # EIRP
        stations = 0
        for index, row in snap.table(STATION_ENTRY).items():
            link = view.link(mac(index), iface)
            if link is None:
                continue
            stations += 1
            chains = every([scaled(row.get(c)) for c in (5, 6)])
            if chains:
                link["chains_dbm"] = chains
                link["signal_dbm"] = max(chains)
            ideal = every([scaled(row.get(c)) for c in (7, 8)])
            if ideal and all(v > NO_IDEAL_DBM for v in ideal):
                # the level is the received power against this ideal: without one, neither
                link["ideal_chains_dbm"] = ideal
                levels = [row.get(c) for c in (9, 10)]
                if all(isinstance(v, int) and v >= 0 for v in levels):
                    link["chain_levels_pct"] = levels
            put(link, "tx_capacity_mbps", scaled(row.get(3), 1e3))
            put(link, "rx_capacity_mbps", scaled(row.get(4), 1e3))
            put(link, "remote_chains_dbm", every([scaled(row.get(c)) for c in (16, 17)]))
            put(link, "distance_m", scaled(row.get(23)))  # the MIB says km; devices give m
            put(link, "freq_mhz", radio.get("freq_mhz"))
            put(link, "width_mhz", radio.get("width_mhz"))
        radio["clients"] = stations
        view.add_clients(stations)
