"""What the collector knows about each node and link right now (plain data, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import msgspec

from meshmon.model import wire
from meshmon.model import wire_structs as fastwire_structs
from meshmon.model.fastwire import AnyReport
from meshmon.model.wire import LINK_METRICS, Info


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
    last_report: AnyReport | None = None
    """the latest report without its links (those are in the topology's LinkStates)"""
    interval_s: float = 30.0
    """the node's report interval (from its last report or info)"""

    @property
    def is_gateway(self) -> bool:
        return bool(self.info and self.info.gateway)

    @property
    def via(self) -> str | None:
        """The bridge that speaks for this node (`info.source.via`); None for an agent."""
        info = self.info
        return info.source.via if info is not None and info.source is not None else None


@dataclass(slots=True)
class BridgeState:
    """One `meshmon-bridge` as its retained status says: online or not, since when."""

    id: str
    online: bool
    since: float
    """collector clock of the last change of `online`"""
    last_seen: float
    """collector clock of its last status message"""
    ts: float | None = None
    """the bridge's own clock in that message (None in its last will)"""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "online": self.online, "since": self.since,
                "last_seen": self.last_seen, "ts": self.ts}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BridgeState:
        return cls(str(d["id"]), bool(d["online"]), float(d["since"]), float(d["last_seen"]),
                   None if d.get("ts") is None else float(d["ts"]))


class LinkKey(NamedTuple):
    """A directed link as seen by `src`: peer is a node id, or `mac:xx:..` while unresolved."""

    src: str
    peer: str
    iface: str
    kind: str


class LinkSample(msgspec.Struct, gc=False, omit_defaults=True):
    """The metrics of one link reading: `wire.Link` without its identity, in a fraction of
    the memory (the collector holds one per directed link).

    Treated as immutable: the topology builds a new one per report and the renderers tell
    fresh data by identity. Not `frozen=True` because a frozen dataclass sets each field
    through `object.__setattr__`, which made construction ~9x slower (4.6 vs 0.5 µs) on
    the ingest hot path. A Struct, not a dataclass: built in C (~0.5 instead of ~0.8 µs),
    and untracked by the garbage collector (`gc=False`: it holds numbers and a tuple of
    numbers, never a cycle) — five are made per report and each lives until its link's
    next report, so as a tracked object each was scanned by two collections on its way to
    the oldest generation. Encoded to JSON with `msgspec.json.encode` (None fields left
    out: `omit_defaults`).
    """

    signal_dbm: float | None = None
    signal_avg_dbm: float | None = None
    noise_dbm: float | None = None
    snr_db: float | None = None
    tx_rate_mbps: float | None = None
    rx_rate_mbps: float | None = None
    expected_tput_mbps: float | None = None
    tx_retries: int | None = None
    tx_failed: int | None = None
    inactive_ms: int | None = None
    tq: int | None = None
    lq: float | None = None
    nlq: float | None = None
    etx: float | None = None
    cost: float | None = None
    rxcost: float | None = None
    chains_dbm: tuple[float, ...] | None = None

    @classmethod
    def from_link(cls, link: wire.Link | fastwire_structs.Link) -> LinkSample:
        """The metrics of a validated wire link (a decoded Struct or a model)."""
        # positional, in field order (a test checks it); a model's values from its
        # __dict__, where pydantic keeps them, because getattr costs 3x as much (hot path)
        values = (_metric_items(link.__dict__) if isinstance(link, wire.Link)
                  else _metric_values(link))
        sample = cls(*values)
        if sample.chains_dbm is not None:
            sample.chains_dbm = tuple(sample.chains_dbm)
        return sample

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkSample:
        """From stored JSON (a dumped `wire.Link` or `to_dict()`); other keys are ignored."""
        chains = data.get("chains_dbm")
        values = [data.get(name) for name in LINK_METRICS]
        values.append(None if chains is None else tuple(chains))
        return cls(*values)

    def to_dict(self) -> dict[str, Any]:
        """The metrics present (absent stays absent), chains_dbm as a list."""
        out = {name: value for name in LINK_METRICS if (value := getattr(self, name)) is not None}
        if self.chains_dbm is not None:
            out["chains_dbm"] = list(self.chains_dbm)
        return out


_metric_items = itemgetter(*LINK_METRICS, "chains_dbm")
_metric_values = attrgetter(*LINK_METRICS, "chains_dbm")


@dataclass(slots=True)
class LinkState:
    """The latest reading of one directed link, from its source node's report."""

    key: LinkKey
    dst: str | None
    """resolved peer node id, None while the peer MAC is unknown"""
    peer_mac: str | None
    sample: LinkSample
    """latest metrics as reported (a new object per report)"""
    first_seen: float
    last_seen: float
    """collector clock"""
    report_ts: float = 0.0
    """agent clock of the report that carried the sample"""


@dataclass(frozen=True, slots=True)
class LinkRef:
    """An undirected radio link between two nodes, `a` < `b`."""

    a: str
    b: str
    kind: str = "other"

    @classmethod
    def of(cls, x: str, y: str, kind: str = "other") -> LinkRef:
        return cls(x, y, kind) if x <= y else cls(y, x, kind)

    def __str__(self) -> str:
        return f"{self.a}–{self.b}"
