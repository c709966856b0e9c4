"""What the collector knows about each node and link right now (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from meshmon.model.wire import Info, Link, Report


@dataclass(slots=True)
class NodeState:
    """One node: its announced info, online flag and the latest report."""

    id: str
    info: Info | None = None
    online: bool = False
    first_seen: float | None = None
    """collector clock, unix seconds"""
    last_seen: float | None = None
    """collector clock of the last status/info/report from this node"""
    last_report: Report | None = None
    interval_s: float = 30.0
    """the node's report interval (from its last report or info)"""

    @property
    def is_gateway(self) -> bool:
        return bool(self.info and self.info.gateway)


class LinkKey(NamedTuple):
    """A directed link as seen by `src`: peer is a node id, or `mac:xx:..` while unresolved."""

    src: str
    peer: str
    iface: str
    kind: str


@dataclass(slots=True)
class LinkState:
    """The latest reading of one directed link, from its source node's report."""

    key: LinkKey
    dst: str | None
    """resolved peer node id, None while the peer MAC is unknown"""
    peer_mac: str | None
    sample: Link
    """latest metrics as reported"""
    first_seen: float
    last_seen: float
    """collector clock"""
    report_ts: float = 0.0
    """agent clock of the report that carried the sample"""
    history: list[tuple[float, float | None]] = field(default_factory=list)
    """reserved for the health engine (baselines); not filled by the topology core"""
