"""Ubiquiti airMAX (airOS 6 and 8): UBNT-AirMAX-MIB, with IEEE802dot11-MIB for model and
firmware. The radio carries what the device reports for its wireless interface; a station
(CPE) also gets a link to its AP (ubntWlStatApMac), an AP one link per station of
ubntStaTable (airOS 8 adds capacity there)."""

from __future__ import annotations

import re

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Row,
    Snapshot,
    columns,
    mac,
    positive,
    put,
    scaled,
    single_index,
    text,
)

UBNT = oid("1.3.6.1.4.1.41112")
FROGFOOT = oid("1.3.6.1.4.1.10002")  # airOS (and old UniFi) report this sysObjectID
NET_SNMP = oid("1.3.6.1.4.1.8072")
AIRMAX = oid("1.3.6.1.4.1.41112.1.4")
RADIO_ENTRY = (*AIRMAX, 1, 1)
RADIO_RSSI_ENTRY = (*AIRMAX, 2, 1)
WLSTAT_ENTRY = (*AIRMAX, 5, 1)
AIRMAX_ENTRY = (*AIRMAX, 6, 1)
STA_ENTRY = (*AIRMAX, 7, 1)
DOT11_PRODUCT = oid("1.2.840.10036.3.1.2.1")  # dot11ResourceInfoEntry: .3 name, .4 version
_WIRELESS_IFACE = re.compile(r"^(ath|wlan|wifi|air)\d+$")


def ubiquiti_candidate(identity: Identity) -> bool:
    """Ubiquiti firmware answers with its own, Frogfoot's or net-snmp's sysObjectID."""
    return identity.under(UBNT, FROGFOOT, NET_SNMP)


def wireless_iface(view: DeviceView, index: int) -> str:
    """The n-th wireless interface's name (ath0/wlan0…), for MIBs indexed by radio number."""
    names = [n for _, n in sorted(view.ifnames.items()) if _WIRELESS_IFACE.match(n)]
    return names[index - 1] if 0 < index <= len(names) else f"radio{index}"


class AirMax:
    """UBNT-AirMAX-MIB."""

    name = "airmax"
    anchors = (AIRMAX,)
    gets = ()
    static_gets = ()
    walks = (*columns(RADIO_ENTRY, 4, 6, 7), *columns(RADIO_RSSI_ENTRY, 2),
             *columns(WLSTAT_ENTRY, 2, 4, 5, 6, 7, 8, 9, 10, 14, 15),
             *columns(AIRMAX_ENTRY, 3, 4, 7),
             *columns(STA_ENTRY, 3, 4, 5, 6, 8, 9, 11, 12, 16, 17, 18))
    static_walks = columns(DOT11_PRODUCT, 3, 4)

    def candidate(self, identity: Identity) -> bool:
        """Ubiquiti sysObjectIDs."""
        return ubiquiti_candidate(identity)

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Radio, wireless statistics, airMAX quality/capacity and stations."""
        for _, row in sorted(snap.table(DOT11_PRODUCT).items()):
            view.set_info("model", text(row.get(3)))
            version = text(row.get(4)) or ""
            found = re.search(r"\.v(.*)$", version)
            view.set_info("firmware", found.group(1) if found else version or None)
        for index, row in single_index(snap.table(RADIO_ENTRY)):
            radio = view.radio(wireless_iface(view, index))
            put(radio, "freq_mhz", scaled(row.get(4)))
            put(radio, "txpower_dbm", scaled(row.get(6)))
            put(radio, "distance_m", scaled(row.get(7)))
        chains: dict[int, list[int]] = {}
        for pair, row in sorted(snap.table(RADIO_RSSI_ENTRY).items()):
            rssi = row.get(2)
            if len(pair) == 2 and isinstance(rssi, int):
                chains.setdefault(pair[0], []).append(rssi)
        for radio_index, values in chains.items():
            view.radio(wireless_iface(view, radio_index))["chains_rssi"] = values
        airmax = dict(single_index(snap.table(AIRMAX_ENTRY)))
        for index, row in single_index(snap.table(WLSTAT_ENTRY)):
            iface = wireless_iface(view, index)
            radio = view.radio(iface)
            stats = _wlstat(row)
            put(stats, "quality_pct", scaled(airmax.get(index, {}).get(3)))
            put(stats, "capacity_pct", scaled(airmax.get(index, {}).get(4)))
            radio.update(stats)
            put(radio, "busy_pct", scaled(airmax.get(index, {}).get(7), 10))
            put(radio, "ssid", text(row.get(2)))
            put(radio, "width_mhz", positive(row.get(14)))
            clients = scaled(row.get(15))
            put(radio, "clients", clients)
            view.add_clients(clients if isinstance(clients, int) else None)
            link = view.link(mac(row.get(4)), iface)
            if link is not None:  # a station: its AP
                link.update(stats)
                put(link, "distance_m", radio.get("distance_m"))
                put(link, "freq_mhz", radio.get("freq_mhz"))
        for sta, row in snap.table(STA_ENTRY).items():
            if len(sta) != 7:
                continue
            link = view.link(mac(sta[1:]), wireless_iface(view, sta[0]))
            if link is None:
                continue
            put(link, "signal_dbm", scaled(row.get(3)))
            put(link, "noise_dbm", scaled(row.get(4)))
            put(link, "distance_m", scaled(row.get(5)))
            put(link, "ccq_pct", scaled(row.get(6)))
            put(link, "quality_pct", scaled(row.get(8)))
            put(link, "capacity_pct", scaled(row.get(9)))
            put(link, "tx_rate_mbps", scaled(positive(row.get(11)), 1e6))
            put(link, "rx_rate_mbps", scaled(positive(row.get(12)), 1e6))
            put(link, "snr_db", scaled(row.get(16)))
            put(link, "tx_capacity_mbps", scaled(row.get(17), 1e3))
            put(link, "rx_capacity_mbps", scaled(row.get(18), 1e3))


def _wlstat(row: Row) -> dict[str, object]:
    out: dict[str, object] = {}
    put(out, "signal_dbm", scaled(row.get(5)))
    put(out, "rssi", scaled(row.get(6)))
    put(out, "ccq_pct", scaled(row.get(7)))
    put(out, "noise_dbm", scaled(row.get(8)))
    put(out, "tx_rate_mbps", scaled(positive(row.get(9)), 1e6))
    put(out, "rx_rate_mbps", scaled(positive(row.get(10)), 1e6))
    return out

