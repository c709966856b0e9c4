"""Checks shared by the routing source tests: every update as a validated wire message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshmon_bridge.messages import MessageBuilder
from meshmon_bridge.source import BridgeContext, NodeUpdate
from meshmon_bridge.sources.routing import RoutingConfig, RoutingSource, create_routing_sources

from meshmon.model import wire
from meshmon.model.addresses import looks_like_address

DATA = Path(__file__).parents[1] / "data" / "routing"
KEY = "test-bridge-secret"
PREFIX = "meshmon"


@dataclass
class Published:
    """What one poll would publish, validated by the collector's own models."""

    info: dict[str, wire.Info] = field(default_factory=dict)
    online: dict[str, bool] = field(default_factory=dict)
    reports: dict[str, wire.Report] = field(default_factory=dict)

    def links(self) -> list[tuple[str, wire.Link]]:
        """(source node, link) of every report."""
        return [(node, link) for node, r in self.reports.items() for link in r.links]

    def pairs(self) -> set[frozenset[str]]:
        """The undirected node pairs the links join."""
        return {frozenset((node, link.peer or "")) for node, link in self.links()}


def publish(updates: list[NodeUpdate], interval_s: float = 30.0) -> Published:
    """What the bridge would publish for one poll's updates (its own message builder),
    each message decoded by the collector's decoder; node ids hold no address."""
    builder = MessageBuilder("test-bridge", PREFIX)
    out = Published()
    for update in updates:
        assert not looks_like_address(update.node), update.node
        sent = builder.build("routing", update, interval_s, 1_700_000_000.0)
        assert sent  # every update says at least online or offline
        for message in sent:
            decoded = wire.decode(PREFIX, message.topic, json.dumps(message.payload).encode())
            if isinstance(decoded, wire.Info):
                out.info[decoded.node] = decoded
            elif isinstance(decoded, wire.Status):
                out.online[decoded.node] = decoded.online
            else:
                # nothing was dropped by validation (an IP-address peer would be)
                assert len(decoded.links) == len(message.payload["links"])
                for link in decoded.links:
                    assert link.peer is not None and not looks_like_address(link.peer)
                out.reports[decoded.node] = decoded
    return out


def source(kind: str, file: Path | str | None = None, **options: Any) -> RoutingSource:
    """A `[[routing]]` source of `kind` reading `file` (relative to tests/data/routing),
    built by the kind's factory as the bridge builds it."""
    if file is not None:
        options["file"] = file
    options.setdefault("id_key", KEY)
    table = RoutingConfig.model_validate({"kind": kind, **options})
    (built,) = create_routing_sources([table], BridgeContext("test-bridge", DATA))
    assert isinstance(built, RoutingSource)
    return built


async def poll(kind: str, file: str, **options: Any) -> Published:
    """One poll of a fresh source, validated."""
    return publish(await source(kind, file, **options).poll())
