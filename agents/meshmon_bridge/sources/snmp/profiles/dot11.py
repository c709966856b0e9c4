"""The generic fallback for any 802.11 device: IEEE802dot11-MIB product name and version
(model and firmware) and the current channel of each radio interface."""

from __future__ import annotations

from meshmon_bridge.sources.snmp.client import oid
from meshmon_bridge.sources.snmp.profiles.base import (
    DeviceView,
    Identity,
    Snapshot,
    channel_to_mhz,
    columns,
    positive,
    text,
)

RESOURCE_INFO_ENTRY = oid("1.2.840.10036.3.1.2.1")  # .3 product name, .4 product version
PHY_DSSS_CURRENT_CHANNEL = oid("1.2.840.10036.4.5.1.1")  # dot11CurrentChannel.ifIndex
PHY_OFDM_CURRENT_FREQUENCY = oid("1.2.840.10036.4.11.1.1")  # dot11CurrentFrequency


class Dot11:
    """IEEE802dot11-MIB."""

    name = "dot11"
    anchors = ()
    gets = ()
    static_gets = ()
    walks = ()
    static_walks = (*columns(RESOURCE_INFO_ENTRY, 3, 4), PHY_DSSS_CURRENT_CHANNEL,
                    PHY_OFDM_CURRENT_FREQUENCY)

    def candidate(self, identity: Identity) -> bool:
        """Always (devices without the MIB answer nothing)."""
        return True

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Model, firmware and channels, where no vendor profile gave them."""
        for _, row in sorted(snap.table(RESOURCE_INFO_ENTRY).items()):
            view.set_info("model", text(row.get(3)))
            view.set_info("firmware", text(row.get(4)))
        # both columns hold a channel number (OFDM's "current frequency" too)
        for column in (PHY_DSSS_CURRENT_CHANNEL, PHY_OFDM_CURRENT_FREQUENCY):
            depth = len(column)
            for name, value in sorted(snap.values.items()):
                channel = positive(value)
                if name[:depth] != column or len(name) != depth + 1 or channel is None:
                    continue
                radio = view.radio(view.iface(name[depth]))
                if "freq_mhz" not in radio:
                    radio["channel"] = channel
                    radio["freq_mhz"] = channel_to_mhz(channel)
