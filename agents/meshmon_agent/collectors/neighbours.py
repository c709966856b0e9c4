"""Who is behind a routing neighbour's IP address: a configured name, or its MAC address.

Node ids are public and must not hold an address, so a routing link (OLSR, Babel) names its
peer by `peer_names` (address → node id) or by the MAC address the collector resolves
through the MACs nodes announce: from the ARP table for IPv4, from the EUI-64 interface id
of an IPv6 link-local address (`fe80::…ff:fe…`, the default on Linux) for IPv6.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_LINK_LOCAL = bytes.fromhex("fe80000000000000")


def is_mac(text: str) -> bool:
    """Whether `text` is a MAC address written `aa:bb:cc:dd:ee:ff`."""
    return _MAC.match(text) is not None


def parse_arp(text: str) -> dict[str, tuple[str, str]]:
    """`/proc/net/arp` → {IPv4 address: (MAC, device)} of complete entries (flags 0x2)."""
    table: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 6 or not _MAC.match(words[3]) or words[2] == "0x0":
            continue
        mac = words[3].lower()
        if mac != "00:00:00:00:00:00":
            table[words[0]] = (mac, words[5])
    return table


def mac_from_link_local(address: str) -> str | None:
    """The MAC inside an EUI-64 IPv6 link-local address, or None (random interface id)."""
    try:
        packed = ipaddress.IPv6Address(address.strip().split("%")[0]).packed
    except ValueError:
        return None
    if packed[:8] != _LINK_LOCAL or packed[11:13] != b"\xff\xfe":
        return None
    # interface id AABB:CCff:feDD:EEFF carries the MAC (AA xor 2):BB:CC:DD:EE:FF
    mac = bytes([packed[8] ^ 0x02, *packed[9:11], *packed[13:16]])
    return ":".join(f"{b:02x}" for b in mac)


def identify(
    address: str,
    iface: str | None,
    names: dict[str, str],
    arp: dict[str, tuple[str, str]],
) -> dict[str, Any] | None:
    """`peer`/`peer_mac` and `iface` of a neighbour at `address`; None when it cannot be named."""
    out: dict[str, Any] = {}
    entry = arp.get(address)
    mac = entry[0] if entry else mac_from_link_local(address)
    if mac is not None:
        out["peer_mac"] = mac
    if names.get(address):
        out["peer"] = names[address]
    if not out:
        return None
    device = iface or (entry[1] if entry else None)
    if not device:
        return None
    out["iface"] = device[:128]
    return out
