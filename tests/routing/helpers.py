"""Checks shared by the routing source tests: every update as a validated wire message."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshmon_bridge.source import BridgeContext, NodeUpdate
from meshmon_bridge.sources.routing import RoutingConfig, RoutingSource, create_routing_sources

from meshmon.model import wire
from meshmon.model.addresses import looks_like_address

DATA = Path(__file__).parents[1] / "data" / "routing"
KEY = "test-bridge-secret"


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


def publish(updates: list[NodeUpdate], ts: float = 1_700_000_000.0) -> Published:
    """Validate every update as the bridge would publish it; node ids hold no address."""
    out = Published()
    for seq, update in enumerate(updates):
        assert not looks_like_address(update.node), update.node
        node = update.node
        when = update.ts if update.ts is not None else ts
        if update.info is not None:
            out.info[node] = wire.Info.model_validate({"v": 1, "node": node, **update.info})
        if update.online is not None:
            status = wire.Status.model_validate(
                {"v": 1, "node": node, "online": update.online, "ts": when}
            )
            out.online[node] = status.online
        if update.report is not None:
            payload: dict[str, Any] = {"v": 1, "node": node, "ts": when, "seq": seq,
                                       **update.report}  # fmt: skip
            report = wire.Report.model_validate(payload)
            # nothing was dropped by validation (an IP-address peer would be)
            assert len(report.links) == len(update.report["links"])
            for link in report.links:
                assert link.peer is not None and not looks_like_address(link.peer)
            out.reports[node] = report
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
