"""Ubiquiti airFiber (AF-5/11/24…): UBNT-AirFIBER-MIB config and status tables. One
point-to-point link per radio to `remoteMAC`, with capacity, chain powers and distance."""

from __future__ import annotations

from typing import Any

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.airmax import ubiquiti_candidate, wireless_iface
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Row,
    Snapshot,
    columns,
    every,
    mac,
    positive,
    put,
    scaled,
    single_index,
    text,
)

AIRFIBER = oid("1.3.6.1.4.1.41112.1.3")
CONFIG_ENTRY = (*AIRFIBER, 1, 1)
STATUS_ENTRY = (*AIRFIBER, 2, 1)
MHZ_MAX = 100_000
"""airFiber 11/24 firmware reports tx/rxFrequency in kHz although the MIB says MHz; no
airFiber runs above 100 GHz, so a larger number is read as kHz"""


def frequency_mhz(value: object) -> float | int | None:
    """A frequency object in MHz, also when the firmware gave kHz (see MHZ_MAX)."""
    mhz = positive(value)
    if mhz is None:
        return None
    return scaled(mhz, 1000) if mhz > MHZ_MAX else mhz


class AirFiber:
    """UBNT-AirFIBER-MIB."""

    name = "airfiber"
    anchors = (AIRFIBER,)
    gets = ()
    static_gets = ()
    walks = (*columns(CONFIG_ENTRY, 5, 6, 9, 14, 28),
             *columns(STATUS_ENTRY, 4, 5, 6, 11, 14, 19, 22, 26, 40, 45))
    static_walks = ()

    def candidate(self, identity: Identity) -> bool:
        """Ubiquiti sysObjectIDs."""
        return ubiquiti_candidate(identity)

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Radio config, link status."""
        status = dict(single_index(snap.table(STATUS_ENTRY)))
        for index, row in single_index(snap.table(CONFIG_ENTRY)):
            iface = wireless_iface(view, index)
            radio = view.radio(iface)
            put(radio, "freq_mhz", frequency_mhz(row.get(5)))
            put(radio, "rx_freq_mhz", frequency_mhz(row.get(6)))
            put(radio, "txpower_dbm", scaled(row.get(9)))
            put(radio, "width_mhz", positive(row.get(28)))
            put(radio, "ssid", text(row.get(14)))
            st = status.pop(index, {})
            self._status(st, iface, radio, view)
        for index, st in status.items():
            iface = wireless_iface(view, index)
            self._status(st, iface, view.radio(iface), view)

    def _status(self, st: Row, iface: str, radio: dict[str, Any], view: DeviceView) -> None:
        if not st:
            return
        firmware = text(st.get(40))
        view.set_info("firmware", firmware)
        chains = every([scaled(st.get(c)) for c in (11, 14)])
        stats: dict[str, object] = {}
        put(stats, "distance_m", scaled(st.get(4)))
        put(stats, "rx_capacity_mbps", scaled(st.get(5), 1e6))
        put(stats, "tx_capacity_mbps", scaled(st.get(6), 1e6))
        if chains:
            stats["chains_dbm"] = chains
            stats["signal_dbm"] = max(chains)
        put(stats, "remote_chains_dbm", every([scaled(st.get(c)) for c in (19, 22)]))
        radio.update(stats)
        if st.get(26) == 0:  # radioLinkState down: no peer to speak of
            return
        link = view.link(mac(st.get(45)), iface)
        if link is not None:
            link.update(stats)
            put(link, "freq_mhz", radio.get("freq_mhz"))
            put(link, "width_mhz", radio.get("width_mhz"))

