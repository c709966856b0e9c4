"""batman-adv neighbours from `batctl nj` + `batctl oj` (JSON) or the text `batctl n`."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")
TQ_MAX = 255


def _entries(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        log.warning("batctl: output is not JSON, ignored")
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _mac(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and _MAC.match(value) else None


def _tq(value: Any, neigh: str) -> int | None:
    # TQ is 0..255 by definition; a value outside is corrupt, so it is dropped (absent),
    # not clamped: clamping 444 to 255 would report a perfect link nobody measured.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if not 0 <= value <= TQ_MAX:
        log.warning("batctl: neighbour %s has tq %s outside 0..255, dropped", neigh, value)
        return None
    return value


def parse_json(nj_text: str, oj_text: str | None = None) -> list[dict[str, Any]]:
    """`batctl nj` (+ `batctl oj`) → `batman` links with `inactive_ms` and `tq`.

    LibreMesh's rule: a neighbour's tq is that of the `oj` entry marked best whose
    originator is the neighbour itself; its last-seen comes from the `nj` entry.
    """
    links: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in _entries(nj_text):
        mac, iface = _mac(entry.get("neigh_address")), entry.get("hard_ifname")
        if mac is None or not isinstance(iface, str):
            continue
        link: dict[str, Any] = {"peer_mac": mac, "iface": iface, "kind": "batman"}
        seen = entry.get("last_seen_msecs")
        if isinstance(seen, int) and not isinstance(seen, bool) and seen >= 0:
            link["inactive_ms"] = seen
        links[(mac, iface)] = link
    for entry in _entries(oj_text or "[]"):
        mac, iface = _mac(entry.get("neigh_address")), entry.get("hard_ifname")
        if not entry.get("best") or mac is None or not isinstance(iface, str):
            continue
        if _mac(entry.get("orig_address")) != mac:
            continue
        link = links.setdefault((mac, iface), {"peer_mac": mac, "iface": iface, "kind": "batman"})
        tq = _tq(entry.get("tq"), mac)
        if tq is not None:
            link["tq"] = tq
    return list(links.values())


def parse_text(text: str) -> list[dict[str, Any]]:
    """Text `batctl n` (`IF  Neighbor  last-seen` rows) → `batman` links with `inactive_ms`."""
    links: list[dict[str, Any]] = []
    for line in text.splitlines():
        words = line.split()
        macs = [i for i, w in enumerate(words) if _MAC.match(w)]
        if not macs or macs[0] == 0 or line.lstrip().startswith("["):
            continue
        at = macs[0]
        link: dict[str, Any] = {
            "peer_mac": words[at].lower(),
            "iface": words[at - 1],
            "kind": "batman",
        }
        for word in words[at + 1 :]:
            seconds = _SECONDS.match(word)
            if seconds:
                link["inactive_ms"] = round(float(seconds.group(1)) * 1000)
                break
        links.append(link)
    return links
