"""batman-adv neighbours from `batctl nj` + `batctl oj` (JSON) or the text `batctl n` + `o`.

The text tables differ by batctl version and routing algorithm (batctl's cmd/neighbors.c and
cmd/originators.c): BATMAN_IV neighbour rows are `IF MAC last-seen`, BATMAN_V ones
`MAC last-seen (throughput) [IF]`; originator rows are `[*] ORIG last-seen (TQ) NEXTHOP [IF]`,
where BATMAN_V prints a throughput (with a decimal point) in place of the TQ, and the old
debugfs tables (before batctl read netlink) mark no best route: they list only the best one,
followed by `: potential next hops`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")
_BRACKETS = re.compile(r"\[([^\]]*)\]")
_TQ_TEXT = re.compile(r"\(\s*(\d+)\s*\)")
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


def _new_link(mac: str, iface: str) -> dict[str, Any]:
    return {"peer_mac": mac, "iface": iface[:128], "kind": "batman"}


def _best_route(
    links: dict[tuple[str, str], dict[str, Any]], orig: str | None, neigh: str | None,
    iface: str, tq: Any,
) -> None:
    """LibreMesh's rule: a best route whose originator is its next hop is a neighbour's link,
    and its TQ is that link's."""
    if neigh is None or orig != neigh:
        return
    link = links.setdefault((neigh, iface), _new_link(neigh, iface))
    checked = _tq(tq, neigh)
    if checked is not None:
        link["tq"] = checked


def parse_json(nj_text: str, oj_text: str | None = None) -> list[dict[str, Any]]:
    """`batctl nj` (+ `batctl oj`) → `batman` links with `inactive_ms` and `tq`.

    A neighbour's tq is that of the `oj` entry marked best whose originator is the neighbour
    itself (LibreMesh's rule); its last-seen comes from the `nj` entry.
    """
    links: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in _entries(nj_text):
        mac, iface = _mac(entry.get("neigh_address")), entry.get("hard_ifname")
        if mac is None or not isinstance(iface, str):
            continue
        link = _new_link(mac, iface)
        seen = entry.get("last_seen_msecs")
        if isinstance(seen, int) and not isinstance(seen, bool) and seen >= 0:
            link["inactive_ms"] = seen
        links[(mac, iface)] = link
    for entry in _entries(oj_text or "[]"):
        iface = entry.get("hard_ifname")
        if entry.get("best") and isinstance(iface, str):
            _best_route(links, _mac(entry.get("orig_address")), _mac(entry.get("neigh_address")),
                        iface, entry.get("tq"))
    return list(links.values())


def _bracketed(text: str) -> str | None:
    """The interface name in the first `[ … ]` of `text` (batctl pads it with blanks)."""
    found = _BRACKETS.search(text)
    name = found.group(1).strip() if found else ""
    return name if name and len(name.split()) == 1 else None


def _neighbour_row(line: str) -> tuple[str, str, int | None] | None:
    """(MAC, interface, last-seen ms) of a `batctl n` row of either algorithm."""
    words = line.split()
    macs = [i for i, w in enumerate(words) if _MAC.match(w)]
    if not macs or line.lstrip().startswith("["):
        return None
    at = macs[0]
    iface = words[at - 1] if at > 0 else _bracketed(line)
    if iface is None:
        return None
    seen = None
    for word in words[at + 1 :]:
        seconds = _SECONDS.match(word)
        if seconds:
            seen = round(float(seconds.group(1)) * 1000)
            break
    return words[at].lower(), iface, seen


def _originator_row(line: str) -> tuple[bool, str, str, str, int | None] | None:
    """(marked best, originator, next hop, interface, TQ) of a `batctl o` row."""
    body = line.strip()
    marked = body.startswith("*")
    body = body[1:].lstrip() if marked else body
    start = body.find("[")
    if start < 0:
        return None
    # a header row leaves no route; a row without `]` no interface
    iface, route = _bracketed(body[start:]), body[:start]
    macs = [w.lower() for w in route.split() if _MAC.match(w)]
    if iface is None or len(macs) < 2:
        return None
    tq = _TQ_TEXT.search(route)
    return marked, macs[0], macs[-1], iface, int(tq.group(1)) if tq else None


def parse_text(text: str, originators: str | None = None) -> list[dict[str, Any]]:
    """Text `batctl n` (+ `batctl o`) → `batman` links with `inactive_ms` (and `tq`).

    The tq follows the JSON rule; a table that marks no route with `*` lists best routes only.
    """
    links: dict[tuple[str, str], dict[str, Any]] = {}
    for line in text.splitlines():
        row = _neighbour_row(line)
        if row is None:
            continue
        mac, iface, seen = row
        link = _new_link(mac, iface)
        if seen is not None:
            link["inactive_ms"] = seen
        links[(mac, iface)] = link
    rows = [r for r in map(_originator_row, (originators or "").splitlines()) if r is not None]
    marked = any(r[0] for r in rows)
    for best, orig, neigh, iface, tq in rows:
        if best or not marked:
            _best_route(links, orig, neigh, iface, tq)
    return list(links.values())
