"""What kind of map file a document is, so that a table given another kind's file (a
hopglass `nodes.json` in `[[meshviewer]]`, Berlin's OpenWiFiMap data in `[[hopglass]]`)
fails with an error that names the table to use."""

from __future__ import annotations

from typing import Any

from meshmon_bridge.source import SourceError

KINDS = {
    "meshviewer": "a meshviewer.json: read it with a [[meshviewer]] table",
    "hopglass-nodes": "a hopglass nodes.json: read it with a [[hopglass]] table (nodes_url)",
    "hopglass-graph": "a hopglass graph.json: read it with a [[hopglass]] table (graph_url)",
    "openwifimap": "OpenWiFiMap node data: read it with an [[openwifimap]] table",
    "ffmap-d3": "an ffmap-d3 nodes.json (ffmap-backend before 2015), which meshmon does not "
                "read: its newer nodes.json + graph.json go into a [[hopglass]] table",
}


def kind_of(doc: Any) -> str | None:
    """The map format `doc` looks like (a key of KINDS), or None."""
    if isinstance(doc, list):
        return "openwifimap" if any(_owm_document(d) for d in doc[:20]) else None
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("batadv"), dict):
        return "hopglass-graph"
    if isinstance(doc.get("rows"), list) or any(
            isinstance(_dict(v).get("rows"), list) for v in doc.values()):
        return "openwifimap"
    nodes = doc.get("nodes")
    sample = list(nodes.values())[:20] if isinstance(nodes, dict) else (
        nodes[:20] if isinstance(nodes, list) else [])
    if any("nodeinfo" in _dict(n) for n in sample):
        return "hopglass-nodes"
    if any("node_id" in _dict(n) for n in sample):
        return "meshviewer"
    if any("geo" in _dict(n) or "macs" in _dict(n) for n in sample):
        return "ffmap-d3"
    return None


NAMES = {"meshviewer": "a meshviewer.json", "hopglass-nodes": "a hopglass nodes.json",
         "hopglass-graph": "a hopglass graph.json", "openwifimap": "OpenWiFiMap rows"}


def not_a(kind: str, where: str, doc: Any, reason: str) -> SourceError:
    """The error for a document that is not of `kind` (a key of NAMES), naming what it
    looks like instead if that is another kind."""
    found = kind_of(doc)
    hint = f"; it looks like {KINDS[found]}" if found not in (None, kind) else ""
    return SourceError(f"{where}: not {NAMES[kind]} ({reason}){hint}")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _owm_document(value: Any) -> bool:
    doc = _dict(value)
    return "hostname" in doc and ("latitude" in doc or "latlng" in doc)
