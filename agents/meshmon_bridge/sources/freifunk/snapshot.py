"""A community map snapshot (meshviewer, hopglass, OpenWiFiMap) as plain data, and how it
becomes node updates.

The parsers (`meshviewer`, `hopglass`, `openwifimap`) fill a `Snapshot`: nodes under the
source's own keys (MACs, IPs, document ids: private) and links between those keys with
each end's view of the link. `node_updates` gives them public ids (`node_ids`) and turns
them into `NodeUpdate`s:

- every node: `info` and a status; online as the snapshot says (`is_online`, hopglass'
  `flags.online`) or, when it says nothing, last seen within `offline_after_s` of the
  snapshot's own time (its newest timestamp), so an old file imports as the network was;
- an online node: a report with what the snapshot has (uptime, load, rootfs, clients) and
  its links as it sees them; an offline node sends no report (a report means "heard now").
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meshmon_bridge.ratelog import RateLimitedLog
from meshmon_bridge.source import NodeUpdate
from meshmon_bridge.sources.freifunk.node_ids import Candidate, PublicIds

log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(log)
TQ_MAX = 255
MAX_LINKS = 512
"""links one report may carry (wire contract); a VPN server with more neighbours reports
the first 512 and the rest are known from their own side"""
UPLINK_TAG = "uplink"
"""the tag of a node with a VPN tunnel to a gateway server (Gluon's uplink node)"""
EARLIEST_BOOT = 946_684_800.0
"""2000-01-01: an older boot time is a placeholder (`1970-01-01T00:00:00`), not a boot"""
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_BARE_MAC_RE = re.compile(r"^[0-9a-fA-F]{12}$")


@dataclass(slots=True)
class MapNode:
    """One node of a snapshot, under the source's own (private) key."""

    key: str
    hostname: str | None = None
    model: str | None = None
    firmware: str | None = None
    location: tuple[float, float] | None = None
    """(lat, lon)"""
    online: bool | None = None
    """as the snapshot says; None: judge from `last_seen`"""
    last_seen: float | None = None
    first_seen: float | None = None
    server: bool = False
    """a gateway server: the map says so, or another node selected it as its gateway"""
    uplink: bool = False
    """has a VPN link to a gateway server (Gluon's uplink node)"""
    stale_after_s: float | None = None
    """offline when last seen longer ago than this (the node's own update interval × 3);
    None: the source's `offline_after_s`"""
    uptime_s: float | None = None
    load: float | None = None
    rootfs_used_pct: float | None = None
    clients: int | None = None
    macs: list[str] = field(default_factory=list)
    """the node's interface MACs (only for resolving peers: never published as ids)"""

    @property
    def gateway(self) -> bool:
        """`info.gateway`: only a gateway server is one. An uplink node reaches the servers
        through its tunnel, a link like any other: losing it is an outage of the nodes
        behind it, not "a gateway is down" (it gets the `uplink` tag instead)."""
        return self.server


@dataclass(slots=True)
class LinkEnd:
    """One end's view of a link: its metrics about the other end."""

    tq: int | None = None
    lq: float | None = None
    nlq: float | None = None
    etx: float | None = None
    signal_dbm: float | None = None
    noise_dbm: float | None = None

    def metrics(self) -> dict[str, Any]:
        """The wire link metrics this end has (absent stays absent)."""
        out: dict[str, Any] = {}
        for name in ("tq", "lq", "nlq", "etx", "signal_dbm", "noise_dbm"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(slots=True)
class MapLink:
    """A link between two nodes of the snapshot (keys), seen from one or both ends."""

    source: str
    target: str
    kind: str
    """wire link kind: batman, vpn, olsr, other …"""
    medium: str
    """what the map calls it (wifi, vpn, other): becomes the interface label"""
    source_view: LinkEnd | None
    """the source's view of the link to the target; None: the source does not report it"""
    target_view: LinkEnd | None


@dataclass(slots=True)
class Snapshot:
    """What one map file says about the network, as of `time`."""

    nodes: list[MapNode]
    links: list[MapLink]
    time: float
    """the snapshot's own time: its declared timestamp or newest last-seen"""


@dataclass(frozen=True, slots=True)
class SnapshotOptions:
    """Per-source choices for turning a snapshot into updates."""

    interval_s: float
    offline_after_s: float
    public: bool = True
    tags: tuple[str, ...] = ()


MILLISECONDS_FROM = 1e11
"""a number of seconds this large is in the year 5138: it counts milliseconds (JavaScript's
`Date.now()`, as some generators write `lastseen`)"""


def parse_time(value: Any) -> float | None:
    """Unix seconds from an ISO 8601 text (`Z`, `+0200` or no zone = UTC), from seconds or
    from milliseconds since 1970."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        return value / 1000 if abs(value) >= MILLISECONDS_FROM else float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)  # +0200 → +02:00
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def number(value: Any) -> float | None:
    """A finite number, also one written as a string (`"0.12"`: some generators quote
    them); None for anything else (JSON from the field has nulls, NaN and words)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def dbm(value: Any) -> float | None:
    """A signal or noise level in dBm, when it is one (-150 … 40)."""
    level = number(value)
    return level if level is not None and -150 <= level <= 40 else None


def first_number(values: Any) -> float | None:
    """The first entry of a list as a number (OpenWiFiMap's `[uptime]`, `[load1, …]`)."""
    return number(values[0]) if isinstance(values, list) and values else None


def text(value: Any, limit: int = 128) -> str | None:
    """A non-empty string cut to `limit`, or None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] or None


def firmware_of(raw: Any) -> str | None:
    """The firmware of a map node's `firmware {base, release}` (or a plain text): the
    release, with the base before it when that is not Gluon's (`Debian 10 1.4.0` on
    servers)."""
    if not isinstance(raw, dict):
        return text(raw)
    base, release = text(raw.get("base")), text(raw.get("release"))
    if release and base and not base.startswith("gluon") and base != "-":
        return f"{base} {release}"[:128]
    return release or (base if base != "-" else None)


def location(lat: Any, lon: Any) -> tuple[float, float] | None:
    """(lat, lon) when both are numbers in range and not the (0, 0) placeholder."""
    la, lo = number(lat), number(lon)
    if la is None or lo is None or not (-90 <= la <= 90 and -180 <= lo <= 180):
        return None
    if la == 0 and lo == 0:
        return None
    return (la, lo)


def normal_mac(value: Any) -> str | None:
    """`aa:bb:cc:dd:ee:ff` from a MAC with colons or 12 bare hex digits; None otherwise."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if _BARE_MAC_RE.match(value):
        value = ":".join(value[i:i + 2] for i in range(0, 12, 2))
    return value if MAC_RE.match(value) else None


VPN_TYPES = frozenset({"vpn", "tunnel", "fastd", "l2tp", "wireguard"})
"""link types of a VPN tunnel (yanic writes `vpn`, hopglass-server the interface kinds)"""


def medium_of(link_type: Any) -> str:
    """The medium label of a map link's `type`: `vpn` for tunnels, `wifi` for radio
    (`wifi`, the frontend's `wifi24`/`wifi5`, hopglass' `wireless`), else `other`."""
    name = link_type.strip().lower() if isinstance(link_type, str) else ""
    if name in VPN_TYPES:
        return "vpn"
    return "wifi" if name.startswith("wifi") or name == "wireless" else "other"


def tq_from_fraction(value: Any) -> int | None:
    """batman-adv TQ (0–255) from the 0–1 fraction map files give."""
    fraction = number(value)
    if fraction is None or fraction < 0:
        return None
    return min(TQ_MAX, round(fraction * TQ_MAX))


def snapshot_time(declared: float | None, nodes: Iterable[MapNode]) -> float | None:
    """The newest of the declared timestamp and every node's last-seen."""
    times = [n.last_seen for n in nodes if n.last_seen is not None]
    if declared is not None:
        times.append(declared)
    return max(times) if times else None


def uptime_from_boot(boot: float | None, now: float) -> float | None:
    """Seconds since a boot time, or None for a placeholder or a boot after `now`."""
    if boot is None or boot < EARLIEST_BOOT or boot > now:
        return None
    return now - boot


def node_updates(snap: Snapshot, ids: PublicIds, options: SnapshotOptions) -> list[NodeUpdate]:
    """The node updates a snapshot gives (see the module docstring)."""
    nodes = {n.key: n for n in snap.nodes}
    names = ids.assign(Candidate(n.key, n.hostname, n.first_seen) for n in nodes.values())
    # a neighbour listed without a node of its own: a MAC stays a MAC (the collector
    # resolves it), other keys (OpenWiFiMap document ids) get a public id by the same rule
    strangers = {k for lk in snap.links for k in (lk.source, lk.target)} - nodes.keys()
    names.update(ids.assign(Candidate(k, k) for k in sorted(strangers) if normal_mac(k) is None))
    online = {key: _is_online(n, snap.time, options.offline_after_s) for key, n in nodes.items()}
    links_of: dict[str, list[dict[str, Any]]] = {key: [] for key in nodes}
    for link, iface in zip(snap.links, interface_labels(snap.links), strict=True):
        for here, there, view in ((link.source, link.target, link.source_view),
                                  (link.target, link.source, link.target_view)):
            if view is None or here not in nodes or not online[here]:
                continue
            entry = _peer(there, names)
            if entry is None:
                continue
            entry.update({"iface": iface, "kind": link.kind, **view.metrics()})
            links_of[here].append(entry)
    updates = []
    for key, node in nodes.items():
        report = _report(node, links_of[key], options) if online[key] else None
        updates.append(NodeUpdate(node=names[key], info=_info(node, options),
                                  online=online[key], report=report, ts=snap.time))
    return updates


def mark_uplinks(nodes: dict[str, MapNode], links: Iterable[MapLink]) -> None:
    """Mark Gluon's uplink nodes: those with a `vpn` link to a gateway server."""
    servers = {key for key, n in nodes.items() if n.server}
    for link in links:
        if link.medium != "vpn":
            continue
        for end, other in ((link.source, link.target), (link.target, link.source)):
            if other in servers and end in nodes:
                nodes[end].uplink = True


def merge_directions(links: Iterable[MapLink]) -> list[MapLink]:
    """One-sided links (a's view of b, b's view of a) of the same kind and medium joined
    into one two-sided link, so both directions get the same interface label."""
    out: list[MapLink] = []
    waiting: dict[tuple[str, str, str, str], list[MapLink]] = {}
    for link in links:
        if link.source_view is None or link.target_view is not None:
            out.append(link)
            continue
        partners = waiting.get((link.target, link.source, link.kind, link.medium))
        if partners:
            partner = partners.pop(0)
            partner.target_view = link.source_view
            continue
        waiting.setdefault((link.source, link.target, link.kind, link.medium), []).append(link)
        out.append(link)
    return out


def interface_labels(links: Iterable[MapLink]) -> list[str]:
    """A label per link: its medium, numbered when one pair has several (`wifi`, `wifi2`),
    the same at both ends so the collector pairs the two directions."""
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for link in links:
        pair = (min(link.source, link.target), max(link.source, link.target), link.medium)
        seen[pair] = seen.get(pair, 0) + 1
        out.append(link.medium if seen[pair] == 1 else f"{link.medium}{seen[pair]}")
    return out


def capped_links(name: str, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most `MAX_LINKS` links; more are logged (rate-limited) and left out."""
    if len(links) > MAX_LINKS:
        _rate_log.log(logging.WARNING, name, "%s has %d links, a report carries %d: the "
                      "rest are known only from their other end", name, len(links), MAX_LINKS)
    return links[:MAX_LINKS]


def _is_online(node: MapNode, now: float, offline_after_s: float) -> bool:
    if node.online is not None:
        return node.online
    limit = node.stale_after_s if node.stale_after_s is not None else offline_after_s
    return node.last_seen is not None and now - node.last_seen <= limit


def _peer(key: str, names: dict[str, str]) -> dict[str, Any] | None:
    if key in names:
        return {"peer": names[key]}
    mac = normal_mac(key)
    return {"peer_mac": mac} if mac is not None else None


def _info(node: MapNode, options: SnapshotOptions) -> dict[str, Any]:
    info: dict[str, Any] = {"gateway": node.gateway, "public": options.public,
                            "interval_s": options.interval_s}
    for name in ("hostname", "model", "firmware"):
        value = getattr(node, name)
        if value is not None:
            info[name] = value
    if node.location is not None:
        info["location"] = {"lat": node.location[0], "lon": node.location[1]}
    macs = sorted({m for m in (normal_mac(m) for m in node.macs) if m is not None})
    if macs:
        info["macs"] = macs[:128]
    tags = [*options.tags, UPLINK_TAG] if node.uplink else list(options.tags)
    if tags:
        info["tags"] = tags
    return info


def _report(node: MapNode, links: list[dict[str, Any]], options: SnapshotOptions
            ) -> dict[str, Any]:
    sys: dict[str, Any] = {}
    if node.uptime_s is not None and node.uptime_s >= 0:
        sys["uptime_s"] = round(node.uptime_s, 1)
    if node.load is not None and node.load >= 0:
        sys["load"] = [node.load]
    if node.rootfs_used_pct is not None and 0 <= node.rootfs_used_pct <= 100:
        sys["rootfs_used_pct"] = round(node.rootfs_used_pct, 2)
    report: dict[str, Any] = {"interval_s": options.interval_s,
                              "links": capped_links(node.hostname or node.key, links)}
    if sys:
        report["sys"] = sys
    if node.clients is not None and node.clients >= 0:
        report["clients"] = node.clients
    return report
