"""WireGuard peers from `wg show all dump`: one `vpn` link per peer that has had a handshake."""

from __future__ import annotations

import re
from typing import Any

_KEY = re.compile(r"^[A-Za-z0-9+/]{42,43}=$")
_DIGITS = re.compile(r"^\d+$")
KEY_ID_CHARS = 12
"""characters of the public key in the id of a peer that `peer_names` does not name"""


def key_id(public_key: str) -> str:
    """A node id for a peer known only by its public key: `wg-` + its first characters.

    A public key is no address, so it may name a node; `+` and `/` are not id characters.
    """
    return "wg-" + public_key[:KEY_ID_CHARS].replace("+", "-").replace("/", "_")


def parse_dump(text: str, names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """`wg show all dump` → `vpn` links with `handshake_ts`, `rx_bytes`, `tx_bytes`.

    Peer lines have 9 tab-separated fields (interface, public key, preshared key,
    endpoint, allowed IPs, latest handshake, rx bytes, tx bytes, keepalive); interface
    lines have 5 and are skipped (they hold the private key, which is never read). A peer
    without a handshake (0) has no tunnel, so no link.
    """
    names = names or {}
    links: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.strip().split()
        if len(fields) != 9 or not _KEY.match(fields[1]):
            continue
        iface, key, handshake, rx, tx = fields[0], fields[1], fields[5], fields[6], fields[7]
        if not (_DIGITS.match(handshake) and _DIGITS.match(rx) and _DIGITS.match(tx)):
            continue
        if int(handshake) == 0:
            continue
        links.append({
            "peer": names.get(key) or key_id(key),
            "iface": iface[:128],
            "kind": "vpn",
            "handshake_ts": int(handshake),
            "rx_bytes": int(rx),
            "tx_bytes": int(tx),
        })
    return links
