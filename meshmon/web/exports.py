"""Exports for the map frontends communities already run: `/data/meshviewer.json` (yanic's
meshviewer format, read by the freifunk/meshviewer frontend) and `/data/nodelist.json`
(the freifunk API nodelist yanic writes). See docs/freifunk.md, "Exports".

Public rules hold (DESIGN.md, HTTP): node ids are meshmon's public ids (never a MAC),
`mac` is `""`, `addresses` and link `source_addr`/`target_addr` are empty, owner contacts
are never written, free text that hides an address is replaced, and a node that is not
public gets its location snapped to the privacy grid, as the map shows it. Fields the
collector does not know get what the frontend accepts: `autoupdater` `{enabled: false}`,
`nproc` 1, `loadavg` 0, clients counted as "other" (no band split); `uptime`,
`memory_usage`, `model`, `gateway` are left out when unknown.

Links: meshviewer draws routing links with a TQ-like quality from each end, so each
resolved link that carries one (batman-adv TQ / 255, else OLSR LQ, else 1 / ETX) is
written once per pair of directions, with the other end's view as `target_tq` (the same
value when only one end reports it, as yanic does). Radio-only readings (signal without a
routing metric) are not written.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from meshmon.model.addresses import safe_text
from meshmon.model.state import LinkKey, LinkSample, NodeState
from meshmon.model.topology import Topology
from meshmon.web.context import CTX, json_response
from meshmon.web.public import dump, public_location

Json = dict[str, Any]
NODELIST_VERSION = "1.0.1"
_WIFI_IFACE = re.compile(r"^(wifi|wlan|wl|mesh\d|ibss|radio|ath|phy)", re.IGNORECASE)


def yanic_time(ts: float) -> str:
    """`2020-05-13T13:11:52+0000`, the time format yanic writes and meshviewer reads."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


def link_type(kind: str, iface: str) -> str:
    """meshviewer's link type (wifi, vpn, other) of a wire link kind and interface."""
    if kind in ("vpn", "wifi"):
        return kind
    if kind == "batman" and _WIFI_IFACE.match(iface):
        return "wifi"
    return "other"


def quality(sample: LinkSample) -> float | None:
    """A 0–1 link quality as meshviewer shows it: TQ / 255, else LQ, else 1 / ETX."""
    if sample.tq is not None:
        return round(sample.tq / 255, 6)
    if sample.lq is not None:
        return sample.lq
    if sample.etx is not None and sample.etx >= 1:
        return round(1 / sample.etx, 6)
    return None


def meshviewer_node(node: NodeState, grid: float, now: float) -> Json:
    """One node in yanic's meshviewer format (public fields only)."""
    info, report = node.info, node.last_report
    sys = report.sys if report is not None else None
    clients = report.clients if report is not None and node.online else None
    out: Json = {
        "node_id": node.id,
        "hostname": (safe_text(info.hostname) if info else None) or node.id,
        "is_online": node.online,
        "is_gateway": bool(info and info.gateway),
        "firstseen": yanic_time(node.first_seen or now),
        "lastseen": yanic_time(node.last_seen or now),
        "clients": clients or 0, "clients_wifi24": 0, "clients_wifi5": 0,
        "clients_other": clients or 0,
        "rootfs_usage": round(sys.rootfs_used_pct / 100, 4)
        if sys and sys.rootfs_used_pct is not None else 0,
        "loadavg": sys.load[0] if sys and sys.load else 0,
        "nproc": 1,
        "mac": "",
        "addresses": [],
        "firmware": {"release": fw} if info and (fw := safe_text(info.firmware)) else {},
        "autoupdater": {"enabled": False, "branch": ""},
    }
    if sys is not None and sys.mem_total_kb and sys.mem_avail_kb is not None:
        out["memory_usage"] = round(1 - sys.mem_avail_kb / sys.mem_total_kb, 4)
    if sys is not None and sys.uptime_s is not None and node.last_seen is not None:
        out["uptime"] = yanic_time(node.last_seen - sys.uptime_s)
    model = safe_text(info.model) if info else None
    if model:
        out["model"] = model
    location = public_location(info, grid)
    if location is not None:
        out["location"] = {"latitude": location["lat"], "longitude": location["lon"]}
    return out


def meshviewer_links(topology: Topology) -> list[Json]:
    """Every resolved link with a quality, once per pair of directions."""
    out: list[Json] = []
    done: set[LinkKey] = set()
    nodes = topology.nodes
    for key in sorted(topology.links):
        link = topology.links[key]
        if key in done or link.dst is None or link.dst not in nodes or key.src not in nodes:
            continue
        done.add(key)
        reverse = topology.reverse(key)
        if reverse is not None:
            done.add(reverse.key)
        ours = quality(link.sample)
        theirs = quality(reverse.sample) if reverse is not None else None
        if ours is None and theirs is None:
            continue
        out.append({
            "type": link_type(key.kind, key.iface),
            "source": key.src, "target": link.dst,
            "source_tq": ours if ours is not None else theirs,
            "target_tq": theirs if theirs is not None else ours,
            "source_addr": "", "target_addr": "",
        })
    return out


def meshviewer_document(topology: Topology, grid: float, now: float) -> Json:
    """`/data/meshviewer.json`."""
    return {
        "timestamp": yanic_time(now),
        "nodes": [meshviewer_node(topology.nodes[nid], grid, now)
                  for nid in sorted(topology.nodes)],
        "links": meshviewer_links(topology),
    }


def nodelist_document(topology: Topology, grid: float, now: float) -> Json:
    """`/data/nodelist.json` (the freifunk API nodelist, version 1.0.1)."""
    nodes = []
    for nid in sorted(topology.nodes):
        node = topology.nodes[nid]
        report = node.last_report
        entry: Json = {
            "id": nid,
            "name": (safe_text(node.info.hostname) if node.info else None) or nid,
            "status": {
                "online": node.online,
                "lastcontact": yanic_time(node.last_seen or now),
                "clients": (report.clients or 0) if report is not None and node.online else 0,
            },
        }
        location = public_location(node.info, grid)
        if location is not None:
            entry["position"] = {"lat": location["lat"], "long": location["lon"]}
        nodes.append(entry)
    return {"version": NODELIST_VERSION, "updated_at": yanic_time(now), "nodes": nodes}


def _export(request: web.Request, name: str, build: Any) -> web.Response:
    ctx = request.app[CTX]
    grid = ctx.config.privacy.coarsen_grid_deg
    response = json_response(ctx.cached(name, lambda: dump(build(ctx.topology, grid,
                                                                  ctx.clock()))))
    # map frontends are served from their own host: let them fetch across origins
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-cache"
    return response


async def meshviewer_json(request: web.Request) -> web.Response:
    """yanic's meshviewer.json of the whole network."""
    return _export(request, "export_meshviewer", meshviewer_document)


async def nodelist_json(request: web.Request) -> web.Response:
    """The freifunk API nodelist of the whole network."""
    return _export(request, "export_nodelist", nodelist_document)


def register(app: web.Application) -> None:
    """Add `/data/meshviewer.json` and `/data/nodelist.json`."""
    app.router.add_get("/data/meshviewer.json", meshviewer_json, name="export_meshviewer")
    app.router.add_get("/data/nodelist.json", nodelist_json, name="export_nodelist")
