"""Linux and OpenWrt with net-snmp `extend` scripts as LibreNMS ships them (NET-SNMP-EXTEND-MIB
nsExtendOutput1Line): `distro`, `hardware`, `interfaces` ("ifname,description" lines) and per
wireless interface `clients-IF`, `frequency-IF`, `noise-floor-IF`, `snr-IF-{min,avg,max}`,
`rate-{tx,rx}-IF-{min,avg,max}` (bit/s). Each becomes the interface's radio entry."""

from __future__ import annotations

import re

from meshmon_bridge.sources.snmp.client import Oid, oid
from meshmon_bridge.sources.snmp.profiles.base import DeviceView, Identity, Snapshot, text

NET_SNMP = oid("1.3.6.1.4.1.8072")
OUTPUT_1LINE = oid("1.3.6.1.4.1.8072.1.3.2.3.1.1")
OUTPUT_FULL = oid("1.3.6.1.4.1.8072.1.3.2.3.1.2")
_PER_IFACE = re.compile(
    r"^(?:(clients|frequency|noise-floor)-(\S+)|snr-(\S+)-(min|avg|max)"
    r"|rate-(tx|rx)-(\S+)-(min|avg|max))$")
_SUFFIX = {"min": "_min", "avg": "", "max": "_max"}


def _extends(snap: Snapshot, root: Oid) -> dict[str, str]:
    """Extend name → output, from OIDs `root.<len>.<name bytes>`."""
    out: dict[str, str] = {}
    depth = len(root)
    for name, value in snap.values.items():
        if name[:depth] != root or len(name) < depth + 2:
            continue
        length, chars = name[depth], name[depth + 1:]
        if length != len(chars) or not all(0 < c < 128 for c in chars):
            continue
        output = text(value)
        if output is not None:
            out["".join(map(chr, chars))] = output
    return out


def _number(value: str) -> float | int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number == int(number) else number


class NetSnmpExtend:
    """NET-SNMP-EXTEND-MIB with LibreNMS' OpenWrt scripts."""

    name = "netsnmp_extend"
    anchors = (OUTPUT_1LINE,)
    gets = ()
    static_gets = ()
    walks = (OUTPUT_1LINE,)
    static_walks = (OUTPUT_FULL,)

    def candidate(self, identity: Identity) -> bool:
        """net-snmp agents (sysObjectID) or a Linux sysDescr."""
        return identity.under(NET_SNMP) or identity.descr.startswith("Linux")

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Model and firmware, one radio per wireless interface."""
        lines = _extends(snap, OUTPUT_1LINE)
        view.set_info("model", lines.get("hardware"))
        distro = lines.get("distro") or ""
        found = re.match(r"(?:OpenWrt|LEDE)\s+(\S+)", distro)
        view.set_info("firmware", found.group(1) if found else distro or None)
        for name, output in sorted(lines.items()):
            match = _PER_IFACE.match(name)
            value = _number(output)
            if match is None or value is None:
                continue
            simple, iface, snr_if, snr_stat, direction, rate_if, rate_stat = match.groups()
            if simple == "clients":
                view.radio(iface)["clients"] = int(value)
            elif simple == "frequency":
                view.radio(iface)["freq_mhz"] = value
            elif simple == "noise-floor":
                view.radio(iface)["noise_dbm"] = value
            elif snr_if:
                view.radio(snr_if)[f"snr{_SUFFIX[snr_stat]}_db"] = value
            else:
                view.radio(rate_if)[f"{direction}_rate{_SUFFIX[rate_stat]}_mbps"] = round(
                    value / 1e6, 3)
        if "clients-wlan" in lines:  # the scripts' total over every wireless interface
            view.radios.pop("wlan", None)
            view.add_clients(int(_number(lines["clients-wlan"]) or 0))
        else:
            for radio in view.radios.values():
                view.add_clients(radio.get("clients"))
