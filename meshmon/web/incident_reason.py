"""Why an incident matters, in words: the `why` of the outage and incident views.

The health core decides an outage's severity (critical when it cuts nodes off, when a
gateway is down or when a link is down; else warning); the pages need that reason said
plainly ("cuts off 10 nodes from every gateway", "gateway gw-1 is down"). This derives it
from the incident's own data and the nodes' gateway flag, without touching the core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from meshmon.alerts.messages import human_duration
from meshmon.model.topology import Topology

Json = dict[str, Any]
MAX_NAMED = 3


def severity_reason(view: Json, is_gateway: Callable[[str], bool]) -> str:
    """One short phrase: why this incident is open and has its severity."""
    kind = view.get("kind")
    cause = view.get("cause") or {}
    nodes: list[str] = list(cause.get("nodes") or [])
    links: list[Json] = list(cause.get("links") or [])
    count = int(view.get("affected_count") or 0)
    details = view.get("details") or {}
    if kind == "outage":
        return _outage_reason(nodes, links, count, is_gateway)
    if kind == "flapping":
        changes = details.get("changes", "several")
        window = float(details.get("window_s") or 0)
        return f"failed {changes} times" + (f" within {human_duration(window)}" if window else "")
    if kind == "silent":
        return "its agent stopped reporting, but neighbours still hear the router"
    if kind == "degraded":
        reasons = sorted({r for rs in details.values() if isinstance(rs, list) for r in rs})
        return "below the link thresholds" + (f": {', '.join(reasons)}" if reasons else "")
    if kind == "weak_point":
        return f"{_count(count, 'node')} would lose every gateway if it failed"
    if kind == "bridge_silent":
        return (f"the meshmon-bridge is gone: its {_count(count, 'device')} unmonitored, "
                "no outage for them until it is back")
    return ""


def _outage_reason(nodes: list[str], links: list[Json], count: int,
                   is_gateway: Callable[[str], bool]) -> str:
    parts = []
    if count:
        parts.append(f"cuts off {_count(count, 'node')} from every gateway")
    gateways = [n for n in nodes if is_gateway(n)]
    if gateways:
        word = "gateway" if len(gateways) == 1 else "gateways"
        parts.append(f"{word} {_names(gateways)} {_is_are(gateways)} down")
    if len(links) == 1:
        link = links[0]
        parts.append(f"link {link.get('a')} — {link.get('b')} is down")
    elif links:
        parts.append(f"{len(links)} links are down")
    if parts:
        return "; ".join(parts)
    if not nodes:
        return "nobody else is cut off"
    return f"nobody else is cut off: only {_names(nodes)} {_is_are(nodes)} down"


def explained(views: list[Json], topology: Topology) -> list[Json]:
    """The views with their `why` added (the node's gateway flag from its info)."""
    nodes = topology.nodes

    def is_gateway(node: str) -> bool:
        state = nodes.get(node)
        return state is not None and state.is_gateway

    return [{**view, "why": severity_reason(view, is_gateway)} for view in views]


def _names(nodes: Sequence[str]) -> str:
    shown = ", ".join(nodes[:MAX_NAMED])
    return shown + (f" and {len(nodes) - MAX_NAMED} more" if len(nodes) > MAX_NAMED else "")


def _is_are(items: Sequence[str]) -> str:
    return "is" if len(items) == 1 else "are"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
