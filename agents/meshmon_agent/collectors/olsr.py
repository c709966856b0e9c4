"""OLSR v1 links of this node from olsrd's jsoninfo (`/links`), txtinfo or netjsoninfo.

Only the node's own links are read (the routing table knows links between other nodes
too, which their own agents report): jsoninfo's `links`, txtinfo's `Table: Links`, or the
links of a NetJSON NetworkGraph whose `source` is its `router_id`.
"""

from __future__ import annotations

import json
import math
from typing import Any

ETX_SCALE = 1024
"""olsrd before 0.9 writes link costs as integers, ETX times 1024"""
ETX_MAX = 1_000_000


def _quality(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 1 else None


def _etx(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    etx = value / ETX_SCALE if isinstance(value, int) else float(value)
    return etx if math.isfinite(etx) and 0 <= etx <= ETX_MAX else None


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return None


def _entry(address: Any, iface: Any, lq: Any, nlq: Any, etx: Any) -> dict[str, Any] | None:
    if not isinstance(address, str) or not address:
        return None
    entry: dict[str, Any] = {"address": address}
    if isinstance(iface, str) and iface:
        entry["iface"] = iface
    for name, value in (("lq", _quality(lq)), ("nlq", _quality(nlq)), ("etx", _etx(etx))):
        if value is not None:
            entry[name] = value
    return entry


def _json_links(data: dict[str, Any]) -> list[dict[str, Any]]:
    if data.get("type") == "NetworkGraph":
        router = data.get("router_id")
        metric_is_etx = str(data.get("metric", "")).upper() == "ETX"
        found = []
        for link in data.get("links") or []:
            if not isinstance(link, dict) or router is None or link.get("source") != router:
                continue
            cost: Any = link.get("cost")
            # NetJSON costs are plain numbers (never ETX x 1024)
            number = isinstance(cost, int | float) and not isinstance(cost, bool)
            etx = float(cost) if metric_is_etx and number else None
            entry = _entry(link.get("target"), None, None, None, etx)
            if entry is not None:
                found.append(entry)
        return found
    found = []
    for link in data.get("links") or []:
        if not isinstance(link, dict):
            continue
        iface = link.get("olsrInterface") or link.get("ifName")
        entry = _entry(link.get("remoteIP"), iface, link.get("linkQuality"),
                       link.get("neighborLinkQuality"), link.get("linkCost"))
        if entry is not None:
            found.append(entry)
    return found


def _txt_links(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    columns: list[str] | None = None
    in_links = False
    for line in text.splitlines():
        words = line.split()
        if line.strip().startswith("Table:"):
            in_links = words[1:2] == ["Links"]
            columns = None
            continue
        if not in_links or not words:
            continue
        if columns is None:
            # `Local IP`, `Remote IP`: one word each
            header = line.replace(" IP", "IP")
            columns = header.split()
            continue
        row = dict(zip(columns, words, strict=False))
        entry = _entry(row.get("RemoteIP"), None, _number(row.get("LQ", "")),
                       _number(row.get("NLQ", "")), _number(row.get("Cost", "")))
        if entry is not None:
            found.append(entry)
    return found


def parse(text: str) -> list[dict[str, Any]]:
    """Own links from jsoninfo, netjsoninfo or txtinfo → `[{address, iface?, lq, nlq, etx}]`."""
    body = text.lstrip()
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return []
        return _json_links(data) if isinstance(data, dict) else []
    return _txt_links(text)
