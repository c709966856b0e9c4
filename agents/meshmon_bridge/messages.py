"""Turns what sources learn (`NodeUpdate`s) into v1 contract messages.

Adds `v`, `node`, `ts`, `seq` (per node, from 0 at each bridge start) and
`info.source = {"kind": KIND, "via": BRIDGE_ID}`; `info` goes out (retained) only when it
changed, `status` (retained) only when it changed, a report for every update that has
one. Node ids are checked here once for every kind: an id that is not a public node id is
dropped, counted and logged (rate-limited).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from meshmon_bridge.ratelog import RateLimitedLog
from meshmon_bridge.section import check_node_id
from meshmon_bridge.source import NodeUpdate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One MQTT message the bridge publishes (QoS 1)."""

    topic: str
    payload: dict[str, Any]
    retain: bool

    def line(self) -> str:
        """The `--print` form: one JSON line `{"topic": …, "payload": …}`."""
        return json.dumps({"topic": self.topic, "payload": self.payload},
                          separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class _NodeState:
    kind: str
    next_seq: int = 0
    info_key: str | None = None
    online: bool | None = None


def bridge_status_topic(prefix: str, bridge_id: str) -> str:
    """`PREFIX/v1/bridge/ID/status`."""
    return f"{prefix}/v1/bridge/{bridge_id}/status"


class MessageBuilder:
    """Per-node state of one bridge run: sequence numbers, last info and status sent."""

    def __init__(self, bridge_id: str, prefix: str = "meshmon") -> None:
        self.bridge_id = bridge_id
        self.prefix = prefix
        self._nodes: dict[str, _NodeState] = {}
        self._rate_log = RateLimitedLog(log)
        self.dropped: Counter[str] = Counter()
        """updates not published, by reason (`node_id`)"""

    @property
    def nodes(self) -> int:
        """How many nodes this bridge has published so far."""
        return len(self._nodes)

    def bridge_status(self, online: bool, now: float) -> OutMessage:
        """The bridge's own retained status message."""
        payload = {"v": 1, "bridge": self.bridge_id, "online": online, "ts": round(now, 3)}
        return OutMessage(bridge_status_topic(self.prefix, self.bridge_id), payload, True)

    def build(self, kind: str, update: NodeUpdate, interval_s: float, now: float
              ) -> list[OutMessage]:
        """The messages one update turns into (info, status, report; each only if due)."""
        node = update.node
        try:
            check_node_id(node)
        except ValueError as exc:
            self.dropped["node_id"] += 1
            self._rate_log.log(logging.WARNING, f"id:{kind}:{node}",
                               "%s: update dropped, node id %s", kind, exc)
            return []
        state = self._nodes.get(node)
        if state is None:
            state = self._nodes[node] = _NodeState(kind)
        elif state.kind != kind:
            self._rate_log.log(logging.WARNING, f"twice:{node}", "node %r is published by "
                               "both %s and %s sources: give one of them another id",
                               node, state.kind, kind)
        ts = round(update.ts if update.ts is not None else now, 3)
        base = f"{self.prefix}/v1/node/{node}/"
        out: list[OutMessage] = []
        if update.info is not None:
            info = _merged({"interval_s": interval_s}, update.info)
            info["source"] = {"kind": kind, "via": self.bridge_id}
            key = json.dumps(info, sort_keys=True, default=str)
            if key != state.info_key:
                state.info_key = key
                payload = _merged({"v": 1, "node": node, "ts": ts}, info)
                out.append(OutMessage(base + "info", payload, True))
        if update.online is not None and update.online != state.online:
            state.online = update.online
            payload = {"v": 1, "node": node, "online": update.online, "ts": ts}
            out.append(OutMessage(base + "status", payload, True))
        if update.report is not None:
            head = {"v": 1, "node": node, "ts": ts, "seq": state.next_seq,
                    "interval_s": interval_s}
            report = _merged(head, update.report)
            state.next_seq += 1
            out.append(OutMessage(base + "report", report, False))
        return out


_ENVELOPE = frozenset(("v", "node", "ts", "seq"))


def _merged(head: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """`head` then the source's fields; the envelope (v, node, ts, seq) stays the bridge's."""
    out = dict(head)
    out.update((k, v) for k, v in fields.items() if k not in _ENVELOPE)
    return out
