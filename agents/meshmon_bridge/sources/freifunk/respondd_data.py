"""respondd answers as Gluon sends them → `info` and `report` fields (no sockets here).

An answer to `GET nodeinfo statistics neighbours` is one raw-deflate compressed JSON object
`{"nodeinfo": …, "statistics": …, "neighbours": …}` (a plain request such as `nodeinfo`
gets uncompressed JSON). What is read (docs/freifunk.md, "respondd"):

- nodeinfo → info: `hostname`, `hardware.model`, `software.firmware.release`, `location`
  (`latitude`, `longitude`, `altitude`), MACs (`network.mac` and every
  `network.mesh.*.interfaces.*` MAC: only for resolving peers), `gateway`. The owner
  contact is dropped. A gateway is what yanic calls one (`nodeinfo.vpn`: the VPN server
  itself); a node whose mesh VPN has an established peer (Gluon's uplink node) is none:
  it gets the `uplink` tag.
- statistics → report: `uptime`, `loadavg`, `memory` (kB; available, or free + buffers +
  cached as Gluon's status page counts), `rootfs_usage`, `clients.total`, `traffic`
  (Gluon's bat0 counters; br-client on its babel mesh).
- neighbours → links: `batadv` (TQ and `lastseen` → `inactive_ms`; the interface type —
  wireless, tunnel, other — from nodeinfo's mesh interface lists), `wifi` (`signal`,
  `noise`, `inactive`) and `babel` (`cost`, `rxcost`; link-local peers are resolved
  through the other nodes' babel addresses or their EUI-64 MAC).
"""

from __future__ import annotations

import ipaddress
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshmon_bridge.sources.freifunk.snapshot import (
    UPLINK_TAG,
    as_dict,
    capped_links,
    location,
    normal_mac,
    number,
    text,
)

REQUEST = b"GET nodeinfo statistics neighbours"
MAX_ANSWER_BYTES = 1 << 20
"""an inflated answer larger than this is dropped (a Gluon answer is a few kB)"""
TQ_MAX = 255
MESH_MEDIUM = {"wireless": "wifi", "tunnel": "vpn"}
"""nodeinfo mesh interface list → link medium (everything else: `other`)"""


class BadAnswer(ValueError):
    """An answer that cannot be read: not deflated JSON, not an object, no node id."""


@dataclass(slots=True)
class Answer:
    """One node's answer, decoded."""

    node_id: str
    """Gluon's node id (a MAC without colons): private"""
    nodeinfo: dict[str, Any] | None = None
    statistics: dict[str, Any] | None = None
    neighbours: dict[str, Any] | None = None


def decode(payload: bytes) -> Answer:
    """A datagram as an `Answer` (raw deflate or plain JSON); BadAnswer otherwise."""
    if payload[:1] != b"{":
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            payload = inflater.decompress(payload, MAX_ANSWER_BYTES)
        except zlib.error as exc:
            raise BadAnswer(f"not raw deflate: {exc}") from None
        if inflater.unconsumed_tail:
            raise BadAnswer(f"inflates to more than {MAX_ANSWER_BYTES} bytes")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadAnswer(f"not JSON: {str(exc)[:100]}") from None
    if not isinstance(data, dict):
        raise BadAnswer("not a JSON object")
    parts = {name: data.get(name) if isinstance(data.get(name), dict) else None
             for name in ("nodeinfo", "statistics", "neighbours")}
    if not any(parts.values()) and isinstance(data.get("node_id"), str):
        parts["nodeinfo"] = data  # a plain `nodeinfo` answer is the object itself
    ids = {p.get("node_id") for p in parts.values() if p is not None}
    ids.discard(None)
    if len(ids) != 1 or not isinstance(node_id := next(iter(ids)), str) or not node_id:
        raise BadAnswer(f"no single node_id (found {sorted(map(str, ids))[:3]})")
    return Answer(node_id=node_id.lower(), **parts)


def _mesh_entries(nodeinfo: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(interface kind, entry) of `network.mesh.*.interfaces.*`: MACs under batman-adv,
    link-local IPv6 addresses under Gluon's babel mesh."""
    out = []
    for mesh in as_dict(as_dict(nodeinfo.get("network")).get("mesh")).values():
        for kind, entries in as_dict(as_dict(mesh).get("interfaces")).items():
            out += [(kind, entry) for entry in (entries if isinstance(entries, list) else ())]
    return out


def mesh_interfaces(nodeinfo: Mapping[str, Any]) -> dict[str, str]:
    """Every mesh interface MAC of a node → its medium (wifi, vpn, other)."""
    out: dict[str, str] = {}
    for kind, entry in _mesh_entries(nodeinfo):
        mac = normal_mac(entry)
        if mac is not None:
            out[mac] = MESH_MEDIUM.get(kind, "other")
    return out


def node_macs(nodeinfo: Mapping[str, Any]) -> list[str]:
    """The node's primary MAC and its mesh interface MACs."""
    primary = normal_mac(as_dict(nodeinfo.get("network")).get("mac"))
    found = ([primary] if primary else []) + list(mesh_interfaces(nodeinfo))
    return list(dict.fromkeys(found))[:128]


def babel_addresses(answer: Answer) -> list[str]:
    """The node's own babel link-local addresses: its babel mesh interfaces in nodeinfo
    and `neighbours.babel.IFACE.ll-addr`."""
    found = [entry for _, entry in _mesh_entries(answer.nodeinfo or {})]
    found += [as_dict(iface).get("ll-addr")
              for iface in as_dict(as_dict(answer.neighbours).get("babel")).values()]
    return [addr for addr in (_ipv6(x) for x in found) if addr is not None]


def info_fields(nodeinfo: Mapping[str, Any], statistics: Mapping[str, Any] | None
                ) -> dict[str, Any]:
    """The `info` fields a nodeinfo (and the node's statistics, for its VPN) give."""
    info: dict[str, Any] = {"gateway": is_gateway(nodeinfo), "macs": node_macs(nodeinfo)}
    if statistics is not None and _established(statistics.get("mesh_vpn")):
        info["tags"] = [UPLINK_TAG]
    hostname = text(nodeinfo.get("hostname"))
    model = text(as_dict(nodeinfo.get("hardware")).get("model"))
    firmware = as_dict(as_dict(nodeinfo.get("software")).get("firmware"))
    release = text(firmware.get("release")) or text(firmware.get("base"))
    for name, value in (("hostname", hostname), ("model", model), ("firmware", release)):
        if value is not None:
            info[name] = value
    loc = as_dict(nodeinfo.get("location"))
    where = location(loc.get("latitude"), loc.get("longitude"))
    if where is not None:
        info["location"] = {"lat": where[0], "lon": where[1]}
        alt = number(loc.get("altitude"))
        if alt is not None and -500 <= alt <= 10_000:
            info["location"]["alt_m"] = alt
    return info


def is_gateway(nodeinfo: Mapping[str, Any]) -> bool:
    """yanic's gateway: `nodeinfo.vpn`, which a gateway server announces about itself."""
    return nodeinfo.get("vpn") is True


def _established(tree: Any) -> bool:
    if not isinstance(tree, dict):
        return False
    if isinstance(tree.get("established"), int | float) and not isinstance(
            tree.get("established"), bool):
        return True
    return any(_established(v) for v in tree.values())


def report_fields(statistics: Mapping[str, Any] | None, nodeinfo: Mapping[str, Any]
                  ) -> dict[str, Any]:
    """`sys`, `clients` and `ifaces` (the traffic counters) from statistics."""
    if statistics is None:
        return {}
    out: dict[str, Any] = {}
    sys: dict[str, Any] = {}
    uptime = number(statistics.get("uptime"))
    if uptime is not None and uptime >= 0:
        sys["uptime_s"] = uptime
    load = number(statistics.get("loadavg"))
    if load is not None and 0 <= load <= 10_000:
        sys["load"] = [load]
    sys.update(_memory(as_dict(statistics.get("memory"))))
    rootfs = number(statistics.get("rootfs_usage"))
    if rootfs is not None and 0 <= rootfs <= 1:
        sys["rootfs_used_pct"] = round(rootfs * 100, 2)
    if sys:
        out["sys"] = sys
    clients = as_dict(statistics.get("clients"))
    total = _count(clients.get("total"))
    if total is None:
        total = _count(clients.get("wifi"))
    if total is not None:
        out["clients"] = total
    traffic = as_dict(statistics.get("traffic"))
    # Gluon counts bat0 (batman-adv) or br-client (its babel mesh)
    babel = "babeld" in as_dict(nodeinfo.get("software"))
    iface: dict[str, Any] = {"name": "br-client" if babel else "bat0"}
    for direction in ("rx", "tx"):
        for what in ("bytes", "packets"):
            value = _count(as_dict(traffic.get(direction)).get(what))
            if value is not None:
                iface[f"{direction}_{what}"] = value
    if len(iface) > 1:
        out["ifaces"] = [iface]
    return out


def _memory(memory: Mapping[str, Any]) -> dict[str, int]:
    total = _count(memory.get("total"))
    if not total:
        return {}
    avail = _count(memory.get("available"))
    if avail is None:
        parts = [_count(memory.get(k)) for k in ("free", "buffers", "cached")]
        avail = sum(p for p in parts if p is not None) if parts[0] is not None else None
    out = {"mem_total_kb": total}
    if avail is not None:
        out["mem_avail_kb"] = min(avail, total)
    return out


@dataclass(slots=True)
class Directory:
    """Who owns which MAC and babel address, from every node's last answer."""

    macs: dict[str, str] = field(default_factory=dict)
    """MAC → Gluon node id"""
    babel: dict[str, str] = field(default_factory=dict)
    """link-local IPv6 → Gluon node id"""

    def learn(self, answer: Answer) -> None:
        """Note the MACs and babel addresses an answer announces."""
        if answer.nodeinfo is not None:
            for mac in node_macs(answer.nodeinfo):
                self.macs[mac] = answer.node_id
        for addr in babel_addresses(answer):
            self.babel[addr] = answer.node_id


def links(answer: Answer, mediums: Mapping[str, str], directory: Directory,
          public_id: Any) -> list[dict[str, Any]]:
    """The wire links of a node's neighbours answer.

    `mediums`: the node's mesh interface MAC → medium; `public_id(gluon_id)`: the peer's
    public node id or None (then the link names the peer by `peer_mac`).
    """
    if answer.neighbours is None:
        return []
    out: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    counters: dict[str, int] = {}

    def label(own_mac: str, fallback: str) -> tuple[str, str]:
        # one label per own interface, shared by its batman-adv and Wi-Fi neighbours
        mac = normal_mac(own_mac) or own_mac
        medium = mediums.get(mac, fallback)
        if mac not in labels:
            counters[medium] = counters.get(medium, 0) + 1
            labels[mac] = medium if counters[medium] == 1 else f"{medium}{counters[medium]}"
        return labels[mac], medium

    neighbours = answer.neighbours
    for own_mac, peer_mac, metrics in _entries(neighbours.get("batadv")):
        iface, medium = label(own_mac, "other")
        link = _peer(peer_mac, directory, public_id, answer.node_id)
        if link is not None:
            link.update(iface=iface, kind="vpn" if medium == "vpn" else "batman",
                        **_batman_metrics(metrics))
            out.append(link)
    for own_mac, peer_mac, metrics in _entries(neighbours.get("wifi")):
        link = _peer(peer_mac, directory, public_id, answer.node_id)
        if link is not None:
            link.update(iface=label(own_mac, "wifi")[0], kind="wifi", **_wifi_metrics(metrics))
            out.append(link)
    for ifname, addr, metrics in _entries(neighbours.get("babel")):
        link = _babel_peer(addr, directory, public_id, answer.node_id)
        if link is not None:
            link.update(iface=text(ifname, 32) or "babel", kind="babel",
                        **_babel_metrics(metrics))
            out.append(link)
    return capped_links(as_dict(answer.nodeinfo).get("hostname") or answer.node_id, out)


def _entries(section: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(own interface, neighbour, its metrics) of one neighbours section."""
    for own, entry in sorted(as_dict(section).items()):
        for neighbour, metrics in as_dict(as_dict(entry).get("neighbours")).items():
            yield own, neighbour, as_dict(metrics)


def _batman_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tq = _count(metrics.get("tq"))
    if tq is not None:
        out["tq"] = min(tq, TQ_MAX)
    seen = number(metrics.get("lastseen"))
    if seen is not None and seen >= 0:
        out["inactive_ms"] = round(seen * 1000)
    return out


def _peer(peer_mac: Any, directory: Directory, public_id: Any, own: str
          ) -> dict[str, Any] | None:
    mac = normal_mac(peer_mac)
    if mac is None:
        return None
    owner = directory.macs.get(mac)
    if owner == own:
        return None
    peer = public_id(owner) if owner is not None else None
    return {"peer": peer} if peer is not None else {"peer_mac": mac}


def _babel_peer(addr: Any, directory: Directory, public_id: Any, own: str
                ) -> dict[str, Any] | None:
    ip = _ipv6(addr)
    if ip is None:
        return None
    owner = directory.babel.get(ip)
    if owner is not None:
        peer = public_id(owner) if owner != own else None
        return {"peer": peer} if peer is not None else None
    mac = eui64_mac(ip)
    return _peer(mac, directory, public_id, own) if mac is not None else None


def _wifi_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, wire in (("signal", "signal_dbm"), ("noise", "noise_dbm")):
        value = number(metrics.get(name))
        if value is not None and -150 <= value <= 40 and value != 0:
            out[wire] = value
    inactive = _count(metrics.get("inactive"))
    if inactive is not None:
        out["inactive_ms"] = inactive
    return out


def _babel_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("cost", "rxcost"):
        value = number(metrics.get(name))
        if value is not None and 0 <= value <= 1_000_000:
            out[name] = value
    return out


def eui64_mac(addr: str) -> str | None:
    """The MAC inside an EUI-64 IPv6 interface id (`…:xxff:fexx:…`), else None."""
    try:
        packed = ipaddress.IPv6Address(addr.split("%")[0]).packed
    except ValueError:
        return None
    iid = packed[8:]
    if iid[3:5] != b"\xff\xfe":
        return None
    mac = bytes([iid[0] ^ 0x02, *iid[1:3], *iid[5:8]])
    return ":".join(f"{b:02x}" for b in mac)


def _ipv6(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.IPv6Address(value.split("%")[0]))
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    x = number(value)
    return round(x) if x is not None and x >= 0 else None

