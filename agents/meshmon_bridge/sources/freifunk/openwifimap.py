"""OpenWiFiMap node documents (CouchDB view rows, as OLSR communities such as Berlin's
publish them) → `Snapshot`.

Accepted: `{"rows": [...]}` where a row has `id` and `value` (the `view_nodes_spatial`
shape: `hostname`, `latlng [lat, lon]`, `links`, `mtime`, `ctime`) or `doc` (whole node
documents: `hostname`, `latitude`, `longitude`, `links`, `mtime`, `ctime`,
`updateInterval`, `firmware`, `hardware`, `system`), a plain list of node documents, or
either wrapped in an object one of whose members holds them (Berlin's map page serves
`{"JSON": {"rows": …}}`). Rows of the API's newer view carry no `links`: the source
fetches their node documents (owm_documents.py) and `parse` takes them as `fetched`.

Each document lists its own links `{id: neighbour document id, quality: 0–1,
olsr_ipv4|olsr_ipv6: {...}, wifi/signal/noise}`. The OLSR part is what the node's
OpenWiFiMap client copied from olsrd's jsoninfo `/links` (`linkQuality`,
`neighborLinkQuality`, `linkCost`: ETX × 1024 as an integer before olsrd 0.9, the ETX
itself as a decimal since), or, in the API's README, `lq`, `nlq`, `etx`. Such a link is an
`olsr` link with LQ/NLQ/ETX; without the OLSR part it is an `other` link whose `lq` is the
quality. A Wi-Fi neighbour's `signal`/`noise` (dBm) go along. The OLSR IP addresses are
never used: document ids name the peers.

A node is online when its `mtime` is within 3 × its `updateInterval` (or the source's
`offline_after_s`) of the newest `mtime` in the file; a file with no times at all (an old
view without `mtime`) lists the nodes that report, so all of them count as online.
Uptime (`system.uptime[0]`, as of `mtime`) and load (`system.loadavg[0]`) come from whole
documents; the model from `system.sysinfo[1]` (the board name the client reads) or a
documented `hardware {manufacturer, model}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshmon_bridge.sources.freifunk.formats import not_a
from meshmon_bridge.sources.freifunk.snapshot import (
    LinkEnd,
    MapLink,
    MapNode,
    Snapshot,
    as_dict,
    dbm,
    first_number,
    location,
    merge_directions,
    number,
    parse_time,
    snapshot_time,
    text,
    uptime_from_boot,
)

STALE_AFTER_INTERVALS = 3
LINK_COST_BROKEN = 4096.0
"""olsrd's cost of a link that does not work (1 << 22 before the ×1024 scaling)"""
OLSR_COST_SCALE = 1024
"""olsrd before 0.9 prints link costs as integers: the ETX × 1024"""


def rows_of(data: Any, where: str) -> list[Any]:
    """The rows (or documents) of an OpenWiFiMap answer; SourceError if there are none."""
    rows = data.get("rows") if isinstance(data, dict) else data
    if isinstance(data, dict) and rows is None:  # a wrapper such as Berlin's {"JSON": {…}}
        inner = [v["rows"] for v in data.values()
                 if isinstance(v, dict) and isinstance(v.get("rows"), list)]
        rows = inner[0] if len(inner) == 1 else None
    if not isinstance(rows, list):
        raise not_a("openwifimap", where, data, "no `rows` list")
    return rows


def documents(rows: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(document id, document or view value) of every node row, first of each id."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        found = _document(row)
        if found is not None and found[0] not in seen:
            seen[found[0]] = found[1]
    return list(seen.items())


def without_links(docs: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Ids of the rows that do not carry their links (the API's newer view)."""
    return [key for key, doc in docs if "links" not in doc]


def parse(data: Any, where: str, now: float,
          fetched: Mapping[str, dict[str, Any]] | None = None) -> Snapshot:
    """OpenWiFiMap rows (or node documents) as a `Snapshot`; SourceError if not those.

    `fetched`: whole node documents by id, for rows that came without their links."""
    nodes: dict[str, MapNode] = {}
    uptimes: dict[str, float] = {}
    links: list[MapLink] = []
    for key, doc in documents(rows_of(data, where)):
        full = (fetched or {}).get(key)
        if full is not None:
            doc = {**full, **{k: v for k, v in doc.items() if k not in full}}
        node = _node(key, doc)
        if node is None:
            continue
        nodes[key] = node
        links += _links(key, doc.get("links"))
        uptime = first_number(as_dict(doc.get("system")).get("uptime"))
        if uptime is not None and node.last_seen is not None:
            uptimes[key] = node.last_seen - uptime
    time = snapshot_time(None, nodes.values())
    if time is None:  # no node carries a time: every listed node reports
        for node in nodes.values():
            node.online = True
        time = now
    for key, boot in uptimes.items():
        nodes[key].uptime_s = uptime_from_boot(boot, time)
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
    system = as_dict(doc.get("system"))
    return MapNode(
        key=key,
        hostname=text(doc.get("hostname")),
        model=_model(doc.get("hardware"), system.get("sysinfo")),
        firmware=_joined(doc.get("firmware"), "name", "revision"),
        location=where,
        last_seen=parse_time(doc.get("mtime")),
        first_seen=parse_time(doc.get("ctime")),
        stale_after_s=STALE_AFTER_INTERVALS * interval if interval and interval > 0 else None,
        load=first_number(system.get("loadavg")),
    )


def _model(hardware: Any, sysinfo: Any) -> str | None:
    # the OpenWrt client writes sysinfo = [system (the CPU), model (the board), memory]
    # and `hardware` = the CPU; the README documents hardware {manufacturer, model}
    if isinstance(sysinfo, list) and len(sysinfo) > 1 and text(sysinfo[1]):
        return text(sysinfo[1])
    return _joined(hardware, "manufacturer", "model")


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
        wifi = as_dict(raw.get("wifi"))
        view = LinkEnd(signal_dbm=dbm(raw.get("signal", wifi.get("signal"))),
                       noise_dbm=dbm(raw.get("noise", wifi.get("noise"))))
        if olsr is not None:
            view.lq = _fraction(olsr.get("lq", olsr.get("linkQuality")))
            view.nlq = _fraction(olsr.get("nlq", olsr.get("neighborLinkQuality")))
            view.etx = _etx(olsr)
            kind = "olsr"
        else:
            view.lq, kind = _fraction(raw.get("quality")), "other"
        out.append(MapLink(source=key, target=peer, kind=kind, medium=kind,
                           source_view=view, target_view=None))
    return out


def _fraction(value: Any) -> float | None:
    x = number(value)
    return x if x is not None and 0 <= x <= 1 else None


def _etx(olsr: dict[str, Any]) -> float | None:
    if "etx" in olsr:
        x = number(olsr["etx"])
    else:
        cost = olsr.get("linkCost")
        x = number(cost)
        if x is not None and isinstance(cost, int) and not isinstance(cost, bool):
            x /= OLSR_COST_SCALE  # olsrd < 0.9: an integer, ETX × 1024
    return x if x is not None and 0 <= x < LINK_COST_BROKEN else None
