"""Build the small hopglass and OpenWiFiMap samples in this folder from real data.

Run once by a developer (tests only read the output files):

    python tests/data/freifunk/build_samples.py /work/shared/data

- hopglass/nodes.json + graph.json: 14 nodes of one mesh cloud (Hagen im Bremischen) of
  Freifunk Bremen's meshviewer snapshot (2020-05-13) and the VPN server it hangs off,
  written the way hopglass-server's `modules/provider/hopglass.js` writes them
  (nodes.json version 2 with respondd `nodeinfo`, `flags`, `statistics`; graph.json with
  one link per direction, the target being the node that measured `tq` = 255 / TQ,
  interface types from the node's mesh interface lists). One link to a neighbour outside
  the sample is kept, so the graph has a node without `node_id`, as hopglass-server writes
  for MACs it cannot place. The last node of the cloud is written as hopglass-server
  writes an offline node (`flags.online` false, no statistics, none of its own links).
- openwifimap/rows.json: netjsongraph.js' demo map of the Ninux OLSR network (55 named
  nodes with demo-shifted locations, 25 links with OLSR ETX) as OpenWiFiMap
  `view_nodes_spatial` rows: each node lists its links with `olsr_ipv4` {local_ip,
  neighbor_ip, etx} and `quality` = 1/ETX, as the OpenWiFiMap README describes. LQ/NLQ
  are not in the source and are left out, except on one link where they were added by
  hand (lq 0.8, nlq 0.9; etx 1/(lq·nlq)) to cover them. Document ids are `<name>.olsr`
  (lower case), like Berlin's; `mtime` is the node's `properties.time` or the graph's
  `date`; one node's `mtime` is set two days back so the sample has an offline node; the
  first row is a whole document (`doc`) instead of a view `value`.
- openwifimap/client-view.json + client-documents.json: the same Ninux mesh as the
  OpenWrt OpenWiFiMap client (luci `owm.lua` / `owm_olsr.lua`) writes its documents: each
  link `{id, quality, sourceAddr4, destAddr4, interface, olsr_ipv4}` where `olsr_ipv4`
  is olsrd's jsoninfo `/links` entry (the fields of tests/data/olsr/jsoninfo-links-1-link.json,
  a real olsrd 0.9 answer): `linkQuality`, `neighborLinkQuality` (√(1/ETX) each, rounded
  to olsrd's 1/255 steps) and `linkCost` as olsrd 0.9 prints it (the ETX as a decimal),
  except for the nodes of `OLD_OLSRD`, whose client ran olsrd 0.6 (an integer, ETX × 1024).
  Neighbours on a Wi-Fi interface carry the station's `wifi {signal, noise}`, `signal`,
  `noise` and its `mac` (a locally administered placeholder). `system {uptime, loadavg,
  sysinfo}`, `hardware` (the CPU), `firmware {name, revision}`, `updateInterval` as the
  client writes them. client-view.json is the old CouchDB spatial view of those documents
  (value = hostname, ctime, mtime, id, latlng, links) wrapped as Berlin's map page serves
  it, `{"JSON": {"rows": …}}`; client-documents.json maps each document id to its
  document, for a test that serves the API's newer view (rows without links) and `db/ID`.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CLOUD_START = "FF-Hagen-Cux-Amtsdamm"
CLOUD_SIZE = 14
HOPGLASS_TYPE = {"wifi": "wireless", "vpn": "tunnel", "other": "other"}


def _iso(text: str) -> str:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").isoformat()


def _inverse(fraction: float) -> float:
    return round(1 / fraction, 6) if fraction > 0 else 255.0


def hopglass(snapshot: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """nodes.json and graph.json of one mesh cloud of a meshviewer snapshot."""
    nodes = {n["node_id"]: n for n in snapshot["nodes"]}
    start = next(k for k, n in nodes.items() if n["hostname"] == CLOUD_START)
    adj: dict[str, list[dict[str, Any]]] = {}
    for lk in snapshot["links"]:
        adj.setdefault(lk["source"], []).append(lk)
        adj.setdefault(lk["target"], []).append(lk)
    cloud, queue = [start], deque([start])
    while queue and len(cloud) < CLOUD_SIZE:
        here = queue.popleft()
        for lk in adj.get(here, []):
            other = lk["target"] if lk["source"] == here else lk["source"]
            if lk["type"] != "vpn" and other not in cloud and len(cloud) < CLOUD_SIZE:
                cloud.append(other)
                queue.append(other)
    server = next(lk["target"] if lk["source"] in cloud else lk["source"]
                  for lk in snapshot["links"] if lk["type"] == "vpn"
                  and (lk["source"] in cloud) != (lk["target"] in cloud))
    keep = [*cloud, server]
    links = [lk for lk in snapshot["links"] if lk["source"] in keep and lk["target"] in keep]
    outside = next(lk for lk in snapshot["links"]
                   if (lk["source"] in cloud and lk["target"] not in keep)
                   or (lk["target"] in cloud and lk["source"] not in keep))
    ifaces: dict[str, dict[str, list[str]]] = {k: {} for k in keep}
    for lk in [*links, outside]:
        for end, addr in ((lk["source"], lk["source_addr"]), (lk["target"], lk["target_addr"])):
            if end in ifaces:
                kind = HOPGLASS_TYPE[lk["type"]]
                if addr not in ifaces[end].setdefault(kind, []):
                    ifaces[end][kind].append(addr)
    out_nodes = []
    offline = cloud[-1]
    for key in keep:
        n = dict(nodes[key], is_online=key != offline and nodes[key]["is_online"])
        boot = datetime.strptime(n["uptime"], "%Y-%m-%dT%H:%M:%S%z")
        seen = datetime.strptime(n["lastseen"], "%Y-%m-%dT%H:%M:%S%z")
        nodeinfo: dict[str, Any] = {
            "node_id": key, "hostname": n["hostname"],
            "hardware": {"model": n.get("model"), "nproc": n["nproc"]},
            "software": {"firmware": n["firmware"], "autoupdater": n["autoupdater"]},
            "network": {"mac": n["mac"], "mesh": {"bat0": {"interfaces": ifaces[key]}}},
            "system": {"domain_code": n.get("domain")},
        }
        if "location" in n:
            nodeinfo["location"] = n["location"]
        if n["is_gateway"]:
            nodeinfo["vpn"] = True
        statistics = {"uptime": round((seen - boot).total_seconds(), 2),
                      "loadavg": n["loadavg"], "rootfs_usage": n["rootfs_usage"],
                      "memory_usage": n["memory_usage"], "clients": n["clients"],
                      "gateway": n.get("gateway")} if n["is_online"] else {}
        out_nodes.append({
            "nodeinfo": nodeinfo,
            "flags": {"online": n["is_online"], "gateway": n["is_gateway"]},
            "statistics": statistics,
            "lastseen": _iso(n["lastseen"]), "firstseen": _iso(n["firstseen"]),
        })
    graph_nodes: list[dict[str, Any]] = []
    index: dict[str, int] = {}

    def at(addr: str, owner: str | None) -> int:
        if addr not in index:
            index[addr] = len(graph_nodes)
            graph_nodes.append({"id": addr, **({"node_id": owner} if owner else {})})
        return index[addr]

    graph_links = []
    for lk in [*links, outside]:
        src_in, dst_in = lk["source"] in keep, lk["target"] in keep
        a = at(lk["source_addr"], lk["source"] if src_in else None)
        b = at(lk["target_addr"], lk["target"] if dst_in else None)
        kind = HOPGLASS_TYPE[lk["type"]]
        # the source measured source_tq of the target: target index a → measured by a
        # hopglass-server writes only online nodes' links, tq = 255 / TQ (255 for TQ 0)
        if src_in and nodes[lk["source"]]["is_online"] and lk["source"] != offline:
            graph_links.append({"source": b, "target": a, "tq": _inverse(lk["source_tq"]),
                                "type": kind})
        if dst_in and nodes[lk["target"]]["is_online"] and lk["target"] != offline:
            graph_links.append({"source": a, "target": b, "tq": _inverse(lk["target_tq"]),
                                "type": kind})
    timestamp = _iso(snapshot["timestamp"])
    nodes_json = {"version": 2, "timestamp": timestamp, "nodes": out_nodes}
    graph_json = {"version": 1, "timestamp": timestamp,
                  "batadv": {"multigraph": False, "directed": True, "graph": None,
                             "nodes": graph_nodes, "links": graph_links}}
    return nodes_json, graph_json


def openwifimap(netjsonmap: dict[str, Any]) -> dict[str, Any]:
    """OpenWiFiMap spatial-view rows of a NetJSON NetworkGraph with names and locations."""
    doc_id = {n["id"]: n["name"].lower() + ".olsr" for n in netjsonmap["nodes"]}
    links: dict[str, list[dict[str, Any]]] = {n["id"]: [] for n in netjsonmap["nodes"]}
    for i, lk in enumerate(netjsonmap["links"]):
        for here, there in ((lk["source"], lk["target"]), (lk["target"], lk["source"])):
            olsr: dict[str, Any] = {"local_ip": here, "neighbor_ip": there, "etx": lk["cost"]}
            if i == 0:
                olsr.update(lq=0.8, nlq=0.9, etx=round(1 / (0.8 * 0.9), 4))
            links[here].append({"id": doc_id[there], "quality": round(1 / olsr["etx"], 4),
                                "olsr_ipv4": olsr})
    rows = []
    for i, n in enumerate(netjsonmap["nodes"]):
        stamp = n.get("properties", {}).get("time") or netjsonmap["date"]
        mtime = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if i == 5:
            mtime -= timedelta(days=2)
        value = {"hostname": n["name"], "ctime": "2019-01-01T00:00:00.000Z",
                 "mtime": mtime.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "id": doc_id[n["id"]],
                 "latlng": [n["location"]["lat"], n["location"]["lng"]],
                 "links": links[n["id"]]}
        if i == 0:
            doc = {"_id": doc_id[n["id"]], "type": "node", "hostname": n["name"],
                   "latitude": value["latlng"][0], "longitude": value["latlng"][1],
                   "updateInterval": 3600, "ctime": value["ctime"], "mtime": value["mtime"],
                   "links": value["links"]}
            rows.append({"id": doc_id[n["id"]], "key": doc_id[n["id"]], "doc": doc})
        else:
            rows.append({"id": doc_id[n["id"]], "value": value})
    return {"update_seq": len(rows), "rows": rows}


OLD_OLSRD = 3
"""every third node's client ran olsrd 0.6 (integer link costs)"""
WIFI_EVERY = 2
"""every second link is on a Wi-Fi interface"""


def _lq_step(value: float) -> float:
    return round(round(value * 255) / 255, 3)


def openwifimap_client(netjsonmap: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenWrt client's documents of the Ninux mesh, and their old spatial view."""
    doc_id = {n["id"]: n["name"].lower() + ".olsr" for n in netjsonmap["nodes"]}
    order = {n["id"]: i for i, n in enumerate(netjsonmap["nodes"])}
    links: dict[str, list[dict[str, Any]]] = {n["id"]: [] for n in netjsonmap["nodes"]}
    for i, lk in enumerate(netjsonmap["links"]):
        quality = _lq_step((1 / max(lk["cost"], 1.0)) ** 0.5)
        for here, there in ((lk["source"], lk["target"]), (lk["target"], lk["source"])):
            etx = round(1 / (quality * quality), 3)
            old = order[here] % OLD_OLSRD == 0
            entry: dict[str, Any] = {
                "localIP": here, "remoteIP": there, "olsrInterface": "wlan0",
                "ifName": "wlan0", "validityTime": 137982, "symmetryTime": 123021,
                "currentLinkStatus": "SYMMETRIC", "hysteresis": 0.0,
                "linkCost": round(etx * 1024) if old else etx,
                "linkQuality": quality, "neighborLinkQuality": quality}
            link: dict[str, Any] = {"id": doc_id[there], "quality": quality,
                                    "sourceAddr4": here, "destAddr4": there,
                                    "interface": "wireless0" if i % WIFI_EVERY == 0 else "lan",
                                    "olsr_ipv4": entry}
            if i % WIFI_EVERY == 0:
                signal = -60 - (i % 25)
                link.update(mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                            ifname="wlan0", signal=signal, noise=-95,
                            wifi={"signal": signal, "noise": -95, "inactive": 20})
            links[here].append(link)
    docs, rows = {}, []
    for i, n in enumerate(netjsonmap["nodes"]):
        stamp = n.get("properties", {}).get("time") or netjsonmap["date"]
        mtime = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if i == 5:
            mtime -= timedelta(days=2)
        key = doc_id[n["id"]]
        doc = {"_id": key, "id": key, "type": "node", "hostname": n["name"],
               "latitude": n["location"]["lat"], "longitude": n["location"]["lng"],
               "updateInterval": 3600, "ctime": "2019-01-01T00:00:00.000Z",
               "mtime": mtime.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
               "hardware": "Atheros AR7241 rev 1",
               "firmware": {"name": "Freifunk Berlin", "revision": "1.0.2"},
               "system": {"uptime": [86400 + 3600 * i], "loadavg": [0.05 * (i % 7), 0.1, 0.1],
                          "sysinfo": ["Atheros AR7241 rev 1", "Ubiquiti Nanostation M", 30000]},
               "links": links[n["id"]]}
        docs[key] = doc
        rows.append({"id": key, "key": key, "value": {
            "hostname": doc["hostname"], "ctime": doc["ctime"], "mtime": doc["mtime"],
            "id": key, "latlng": [doc["latitude"], doc["longitude"]], "links": doc["links"]}})
    return {"JSON": {"update_seq": len(rows), "rows": rows}}, docs


def main(shared: Path) -> None:
    """Write the samples next to this file."""
    bremen = json.loads((shared / "freifunk/freifunk-bremen-meshviewer.json").read_text())
    nodes_json, graph_json = hopglass(bremen)
    for name, doc in (("nodes.json", nodes_json), ("graph.json", graph_json)):
        (HERE / "hopglass" / name).write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    ninux = json.loads((shared / "routing/ninux/netjsonmap.json").read_text())
    (HERE / "openwifimap/rows.json").write_text(json.dumps(openwifimap(ninux), indent=1))
    view, docs = openwifimap_client(ninux)
    (HERE / "openwifimap/client-view.json").write_text(json.dumps(view, indent=1))
    (HERE / "openwifimap/client-documents.json").write_text(json.dumps(docs, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
