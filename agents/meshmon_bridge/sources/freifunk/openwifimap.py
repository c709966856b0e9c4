"""OpenWiFiMap node documents (CouchDB view rows, as OLSR communities such as Berlin's
publish them) → `Snapshot`.

Accepted: `{"rows": [...]}` where a row has `id` and `value` (the `view_nodes_spatial`
shape: `hostname`, `latlng [lat, lon]`, `links`, `mtime`, `ctime`) or `doc` (whole node
documents: `hostname`, `latitude`, `longitude`, `links`, `mtime`, `ctime`,
`updateInterval`, `firmware`, `hardware`), or a plain list of node documents.

Each document lists its own links `{id: neighbour document id, quality: 0–1,
olsr_ipv4|olsr_ipv6: {local_ip, neighbor_ip, lq, nlq, etx}}`: an `olsr` link with OLSR's
LQ/NLQ/ETX when the OLSR part is there, else an `other` link whose `lq` is the quality.
The OLSR IP addresses are never used: document ids name the peers. A node is online when
its `mtime` is within 3 × its `updateInterval` (or the source's `offline_after_s`) of the
newest `mtime` in the file.
"""

from __future__ import annotations

from typing import Any

from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.freifunk.snapshot import (
    LinkEnd,
    MapLink,
    MapNode,
    Snapshot,
    as_dict,
    location,
    merge_directions,
    number,
    parse_time,
    snapshot_time,
    text,
)

STALE_AFTER_INTERVALS = 3


def parse(data: Any, where: str, now: float) -> Snapshot:
    """OpenWiFiMap rows (or node documents) as a `Snapshot`; SourceError if not those."""
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise SourceError(f"{where}: not OpenWiFiMap rows (no `rows` list)")
    nodes: dict[str, MapNode] = {}
    links: list[MapLink] = []
    for row in rows:
        found = _document(row)
        if found is None:
            continue
        key, doc = found
        node = _node(key, doc)
        if node is None or key in nodes:
            continue
        nodes[key] = node
        links += _links(key, doc.get("links"))
    time = snapshot_time(None, nodes.values()) or now
    return Snapshot(nodes=list(nodes.values()), links=merge_directions(links), time=time)


def _document(row: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(row, dict):
        return None
    doc = as_dict(row.get("doc")) or as_dict(row.get("value")) or row
    if doc.get("type", "node") != "node":
        return None
    key = text(row.get("id")) or text(doc.get("_id")) or text(doc.get("id"))
    return (key, doc) if key is not None else None


def _node(key: str, doc: dict[str, Any]) -> MapNode | None:
    latlng = doc.get("latlng")
    if isinstance(latlng, list) and len(latlng) == 2:
        where = location(latlng[0], latlng[1])
    else:
        where = location(doc.get("latitude"), doc.get("longitude"))
    interval = number(doc.get("updateInterval"))
    return MapNode(
        key=key,
        hostname=text(doc.get("hostname")),
        model=_joined(doc.get("hardware"), "manufacturer", "model"),
        firmware=_joined(doc.get("firmware"), "name", "revision"),
        location=where,
        last_seen=parse_time(doc.get("mtime")),
        first_seen=parse_time(doc.get("ctime")),
        stale_after_s=STALE_AFTER_INTERVALS * interval if interval and interval > 0 else None,
    )


def _joined(part: Any, *names: str) -> str | None:
    if not isinstance(part, dict):
        return None
    words = [w for w in (text(part.get(n), 64) for n in names) if w]
    return " ".join(words)[:128] or None


def _links(key: str, raw_links: Any) -> list[MapLink]:
    out = []
    for raw in raw_links if isinstance(raw_links, list) else ():
        peer = text(raw.get("id")) if isinstance(raw, dict) else None
        if peer is None or peer == key:
            continue
        olsr = next((raw[k] for k in ("olsr_ipv4", "olsr_ipv6") if isinstance(raw.get(k), dict)),
                    None)
        if olsr is not None:
            view = LinkEnd(lq=_fraction(olsr.get("lq")), nlq=_fraction(olsr.get("nlq")),
                           etx=_etx(olsr.get("etx")))
            kind = "olsr"
        else:
            view, kind = LinkEnd(lq=_fraction(raw.get("quality"))), "other"
        out.append(MapLink(source=key, target=peer, kind=kind, medium=kind,
                           source_view=view, target_view=None))
    return out


def _fraction(value: Any) -> float | None:
    x = number(value)
    return x if x is not None and 0 <= x <= 1 else None


def _etx(value: Any) -> float | None:
    x = number(value)
    return x if x is not None and 0 <= x <= 1_000_000 else None
