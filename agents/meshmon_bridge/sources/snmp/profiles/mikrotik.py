"""MikroTik RouterOS: MIKROTIK-MIB wireless station/AP tables and registration table, 60 GHz
(W60G interface and station tables) and LTE modems; version from the licence group.

Interfaces are indexed by ifIndex, so names come from IF-MIB. A virtual AP that shares a
master radio reports frequency 0 and zeros for noise floor and CCQ: those zeros mean "no
reading" and are left out."""

from __future__ import annotations

import re

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Snapshot,
    columns,
    mac,
    positive,
    put,
    scaled,
    single_index,
    text,
)
from meshmon_bridge.sources.snmp.profiles.mib2 import SYS_DESCR

MIKROTIK = oid("1.3.6.1.4.1.14988")
WIRELESS = (*MIKROTIK, 1, 1, 1)
STAT_ENTRY = (*WIRELESS, 1, 1)
RTAB_ENTRY = (*WIRELESS, 2, 1)
AP_ENTRY = (*WIRELESS, 3, 1)
W60G_ENTRY = (*WIRELESS, 8, 1)
W60G_STA_ENTRY = (*WIRELESS, 9, 1)
LTE_ENTRY = (*MIKROTIK, 1, 1, 16, 1, 1)
INTERFACE_NAME = (*MIKROTIK, 1, 1, 14, 1, 1, 2)  # mtxrInterfaceStatsName.ifIndex
LICENCE_VERSION = (*MIKROTIK, 1, 1, 4, 4, 0)
W60G_DISTANCE_DIVISOR = 100
"""mtxrWl60GStaDistance: the MIB says metres, devices report centimetres (as LibreNMS reads
it: its divisor 100000 gives km)"""


class Mikrotik:
    """MIKROTIK-MIB."""

    name = "mikrotik"
    anchors = ()
    gets = ()
    static_gets = (LICENCE_VERSION, SYS_DESCR)
    walks = (*columns(STAT_ENTRY, 2, 3, 4, 5, 6, 7, 8, 9, 10),
             *columns(RTAB_ENTRY, 3, 8, 9, 12, 14, 16, 18, 19),
             *columns(AP_ENTRY, 2, 3, 4, 6, 7, 8, 9, 10),
             *columns(W60G_ENTRY, 3, 4, 5, 6, 7, 8, 12, 13),
             *columns(W60G_STA_ENTRY, 2, 3, 4, 5, 8, 9, 10),
             *columns(LTE_ENTRY, 2, 3, 4, 7))
    static_walks = (INTERFACE_NAME,)

    def candidate(self, identity: Identity) -> bool:
        """MikroTik's sysObjectID, or RouterOS in sysDescr."""
        return identity.under(MIKROTIK) or identity.descr.startswith("RouterOS")

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Model, version, radios, links, LTE."""
        found = re.match(r"RouterOS\s+(\S+)", snap.text(SYS_DESCR) or "")
        view.set_info("model", found.group(1) if found else None)
        view.set_info("firmware", snap.text(LICENCE_VERSION))
        depth = len(INTERFACE_NAME)
        for name, value in snap.values.items():
            if name[:depth] == INTERFACE_NAME and len(name) == depth + 1:
                view.ifnames.setdefault(name[depth], text(value) or f"if{name[depth]}")
        self._access_points(snap, view)
        self._stations(snap, view)
        self._registrations(snap, view)
        self._w60g(snap, view)
        self._lte(snap, view)

    def _access_points(self, snap: Snapshot, view: DeviceView) -> None:
        for index, row in single_index(snap.table(AP_ENTRY)):
            radio = view.radio(view.iface(index))
            put(radio, "ssid", text(row.get(4)))
            count = row.get(6)
            clients = count if isinstance(count, int) else None
            put(radio, "clients", clients)
            view.add_clients(clients)
            put(radio, "tx_rate_mbps", _rate(row.get(2)))
            put(radio, "rx_rate_mbps", _rate(row.get(3)))
            freq = positive(row.get(7))
            if freq is None:  # a virtual AP: noise and CCQ read 0 for "none"
                continue
            radio["freq_mhz"] = freq
            put(radio, "width_mhz", _band_width(text(row.get(8))))
            put(radio, "noise_dbm", _nonzero(row.get(9)))
            ccq = row.get(10)
            if isinstance(ccq, int) and (ccq > 0 or not clients):
                radio["ccq_pct"] = ccq

    def _stations(self, snap: Snapshot, view: DeviceView) -> None:
        for index, row in single_index(snap.table(STAT_ENTRY)):
            iface = view.iface(index)
            radio = view.radio(iface)
            stats: dict[str, object] = {}
            put(stats, "tx_rate_mbps", _rate(row.get(2)))
            put(stats, "rx_rate_mbps", _rate(row.get(3)))
            put(stats, "signal_dbm", _nonzero(row.get(4)))
            put(stats, "tx_ccq_pct", scaled(row.get(9)))
            put(stats, "rx_ccq_pct", scaled(row.get(10)))
            put(radio, "ssid", text(row.get(5)))
            put(radio, "freq_mhz", positive(row.get(7)))
            put(radio, "width_mhz", _band_width(text(row.get(8))))
            radio.update(stats)
            link = view.link(mac(row.get(6)), iface)
            if link is not None:
                link.update(stats)
                put(link, "freq_mhz", radio.get("freq_mhz"))
                put(link, "width_mhz", radio.get("width_mhz"))

    def _registrations(self, snap: Snapshot, view: DeviceView) -> None:
        for index, row in snap.table(RTAB_ENTRY).items():
            if len(index) != 7:
                continue
            iface = view.iface(index[6])
            link = view.link(mac(index[:6]), iface)
            if link is None:
                continue
            put(link, "signal_dbm", _nonzero(row.get(3)))
            put(link, "tx_rate_mbps", _rate(row.get(8)))
            put(link, "rx_rate_mbps", _rate(row.get(9)))
            put(link, "snr_db", _nonzero(row.get(12)))
            chains = [v for v in (row.get(14), row.get(16), row.get(18))
                      if isinstance(v, int) and v != 0]
            if chains:
                link["chains_dbm"] = chains
            put(link, "remote_signal_dbm", _nonzero(row.get(19)))
            radio = view.radios.get(iface, {})
            put(link, "freq_mhz", radio.get("freq_mhz"))

    def _w60g(self, snap: Snapshot, view: DeviceView) -> None:
        for index, row in single_index(snap.table(W60G_ENTRY)):
            iface = view.iface(index)
            freq = positive(row.get(6))
            if view.radios.get(iface, {}).get("freq_mhz") not in (None, freq):
                iface += "-w60g"  # an index another radio table already used
            radio = view.radio(iface)
            put(radio, "ssid", text(row.get(3)))
            put(radio, "freq_mhz", freq)
            stats: dict[str, object] = {}
            put(stats, "quality_pct", scaled(row.get(8)))
            put(stats, "rssi", scaled(row.get(12)))
            put(stats, "tx_rate_mbps", positive(row.get(13)))
            put(stats, "mcs", scaled(row.get(7)))
            radio.update(stats)
            if row.get(4) == 1:  # connected
                link = view.link(mac(row.get(5)), iface)
                if link is not None:
                    link.update(stats)
                    put(link, "freq_mhz", radio.get("freq_mhz"))
        for index, row in single_index(snap.table(W60G_STA_ENTRY)):
            if row.get(2) == 0:
                continue
            link = view.link(mac(row.get(3)), view.iface(index))
            if link is None:
                continue
            put(link, "mcs", scaled(row.get(4)))
            put(link, "quality_pct", scaled(row.get(5)))
            put(link, "tx_rate_mbps", positive(row.get(8)))
            put(link, "rssi", scaled(row.get(9)))
            put(link, "distance_m", scaled(row.get(10), W60G_DISTANCE_DIVISOR))

    def _lte(self, snap: Snapshot, view: DeviceView) -> None:
        for index, row in single_index(snap.table(LTE_ENTRY)):
            radio = view.radio(view.iface(index))
            put(radio, "rssi", _nonzero(row.get(2)))
            put(radio, "rsrq_db", scaled(row.get(3)))
            put(radio, "rsrp_dbm", scaled(row.get(4)))
            put(radio, "sinr_db", scaled(row.get(7)))


def _rate(value: object) -> float | int | None:
    """bits/s → Mbit/s; 0 means no reading."""
    return scaled(value, 1e6) if isinstance(value, int) and value > 0 else None


def _nonzero(value: object) -> int | None:
    return value if isinstance(value, int) and value != 0 else None


def _band_width(band: str | None) -> int | None:
    """`5805/20/ac` or `2412/20-Ce/gn(18dBm)` → 20."""
    found = re.match(r"\d+/(\d+)", band or "")
    return int(found.group(1)) if found else None
