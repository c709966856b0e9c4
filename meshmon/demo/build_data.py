"""Build the demo topology (`data/freifunk-bremen.json.gz`) from a Freifunk meshviewer snapshot.

Run once by a developer, not at demo time:

    python -m meshmon.demo.build_data /work/shared/data/freifunk/freifunk-bremen-meshviewer.json

Privacy: the snapshot's `node_id` is a MAC address and `mac`/`addresses`/link
`source_addr`/`target_addr` are MAC and IP addresses; none of them is copied. Nodes get a
synthetic id derived from their hostname, and MAC-like runs of 12 hex digits in hostnames
(Gluon's default hostname is `<prefix>-<mac>`) are replaced by a sequence number.
Only the largest connected component is kept, so the demo graph is connected.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import networkx as nx

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_OUTPUT = DATA_DIR / "freifunk-bremen.json.gz"
SOURCE = (
    "mwarning/meshnet-lab @ 148b3bd9, "
    "data/freifunk/original_freifunk_data/freifunk-bremen-meshviewer.json"
)

_HEX12 = re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])")
_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                           "ß": "ss"})


def scrub_hostname(hostname: str, seq: int) -> str:
    """The hostname with MAC-like 12-hex-digit runs replaced by `node<seq>`."""
    return _HEX12.sub(f"node{seq:04d}", hostname).strip()[:128] or f"node{seq:04d}"


def id_from_hostname(hostname: str) -> str:
    """`ff-<hostname>` reduced to the wire NODE pattern (without the dedup suffix)."""
    ascii_name = unicodedata.normalize("NFKD", hostname.translate(_TRANSLIT))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()
    slug = _NOT_ID.sub("-", ascii_name).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)
    return f"ff-{slug}"[:58].rstrip("-._") if slug else "ff-node"


def _firmware(fw: dict[str, Any] | None) -> str | None:
    if not fw:
        return None
    base, release = fw.get("base") or "", fw.get("release") or ""
    if base.startswith("gluon") or not base:
        return release or base or None
    return f"{base} {release}".strip()  # e.g. "Debian 10" on the VPN servers


def build(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Trim a meshviewer snapshot to the demo format (see data/README.md)."""
    raw_nodes = {n["node_id"]: n for n in snapshot["nodes"]}
    graph: nx.Graph[str] = nx.Graph()
    graph.add_nodes_from(raw_nodes)
    raw_links = [
        lk for lk in snapshot["links"]
        if lk["source"] in raw_nodes and lk["target"] in raw_nodes and lk["source"] != lk["target"]
    ]
    graph.add_edges_from((lk["source"], lk["target"]) for lk in raw_links)
    keep = max(nx.connected_components(graph), key=len)
    gateways = {k for k in keep if raw_nodes[k].get("is_gateway")}
    uplinks = {
        end for lk in raw_links if lk.get("type") == "vpn"
        for end, other in ((lk["source"], lk["target"]), (lk["target"], lk["source"]))
        if other in gateways and end not in gateways
    }

    order = sorted(keep, key=lambda k: (raw_nodes[k].get("hostname") or "", k))
    new_id: dict[str, str] = {}
    used: Counter[str] = Counter()
    nodes: list[dict[str, Any]] = []
    for seq, key in enumerate(order, start=1):
        raw = raw_nodes[key]
        hostname = scrub_hostname(raw.get("hostname") or "", seq)
        base = id_from_hostname(hostname)
        used[base] += 1
        node_id = base if used[base] == 1 else f"{base}-{used[base]}"
        while node_id in new_id.values():  # "x" + "x-2" collisions
            used[base] += 1
            node_id = f"{base}-{used[base]}"
        new_id[key] = node_id
        loc = raw.get("location") or {}
        location = (
            {"lat": round(float(loc["latitude"]), 6), "lon": round(float(loc["longitude"]), 6)}
            if "latitude" in loc and "longitude" in loc else None
        )
        nodes.append({
            "id": node_id,
            "hostname": hostname,
            "model": raw.get("model"),
            "firmware": _firmware(raw.get("firmware")),
            "location": location,
            "is_gateway": key in gateways,
            "uplink": key in uplinks,
            "clients": int(raw.get("clients") or 0),
        })
    links = [
        {
            "source": new_id[lk["source"]],
            "target": new_id[lk["target"]],
            "type": lk["type"] if lk.get("type") in ("wifi", "vpn") else "other",
            "source_tq": round(float(lk.get("source_tq") or 0.0), 4),
            "target_tq": round(float(lk.get("target_tq") or 0.0), 4),
        }
        for lk in raw_links if lk["source"] in keep
    ]
    return {
        "source": SOURCE,
        "community": "Freifunk Bremen",
        "snapshot_time": snapshot.get("timestamp"),
        "nodes": nodes,
        "links": links,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: read a snapshot, write the trimmed gzip JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path, help="meshviewer.json of a Freifunk community")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    data = build(json.loads(args.snapshot.read_text(encoding="utf-8")))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    # mtime=0 keeps the file byte-identical between runs
    with open(args.output, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    print(f"{args.output}: {len(data['nodes'])} nodes, {len(data['links'])} links", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
