"""Flapping nodes and links: `flap_changes` failures of their own within `flap_window_s`.

A flapping element gets one `flapping` incident instead of an outage per failure (it is
no root cause while it flaps) and stops flapping `flap_window_s` after its last up/down
change. Only an element's *own* failures count, so nobody is blamed for being cut off:

- a node's failure counts once its pending outage names it as the cause (the outage
  detector tells us, `Facts.own_failures`: when the outage opens, or when the node is
  back before the group wait ended); a node behind another failure never counts;
- a link's failure counts when a report drops it while both ends are up and settled
  (counted per directed link: one radio link is seen by both ends), and is taken back
  when an end turns out to have failed around then (neighbours stop hearing a router
  before its timeout or last will comes: `Facts.failed_now`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from meshmon.model.changelog import Entry, Presence, Reported, Restored
from meshmon.model.health.detector import EVIDENCE_MARGIN_S, Detector, pair_of
from meshmon.model.health.incidents import Incident, incident_id
from meshmon.model.state import LinkKey, LinkRef
from meshmon.model.topology import MAC_PREFIX

TABLE_PRUNE = 10_000
"""change histories are pruned of aged-out entries once a table holds 4× this many"""


class FlappingDetector(Detector):
    """Counts each node's and link's own failures; one incident per flapping element."""

    kind = "flapping"
    observes = (Reported, Presence, Restored)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.node_changes: dict[str, deque[float]] = {}
        """node → times of its own failures within flap_window_s"""
        self.link_changes: dict[LinkKey, deque[float]] = {}
        """directed link → times reports dropped it while both ends were up"""
        self.last_transition: dict[str, float] = {}
        """node → when it last went down or came back (links around it are settling)"""
        self.last_change: dict[str, float] = {}
        """flap key → its latest up/down change: it stops flapping flap_window_s later"""
        self.reported: dict[str, Sequence[LinkKey]] = {}
        """node → keys of the links its last report listed (the report's own list, not a
        copy: a node whose links stay the same hands the same list every time, and a set
        per node took 16 MB at 35,000 nodes)"""
        self._listing: list[tuple[LinkKey, bool, float]] = []
        """(key, now listed?, when) for links reports added or dropped since evaluate"""
        self.facts.own_failures = self.own_failures
        self.facts.failed_now = self.forget_link_failures_around

    # ------------------------------------------------------------------ inputs
    def observe(self, entry: Entry) -> None:
        if isinstance(entry, Reported):
            self._note_listing(entry)
        elif isinstance(entry, Presence):
            for node in entry.nodes:
                self._node_changed(node, entry.online, entry.at)
        elif isinstance(entry, Restored):
            self.reported.clear()

    def _node_changed(self, node: str, online: bool, now: float) -> None:
        facts = self.facts
        # coming online is a transition only after we had it down (not when first seen);
        # whether a failure was its own is known only once root cause has run
        was_down = node in facts.failed or node in facts.silent or node in facts.known_down
        if not online or was_down:
            self.last_transition[node] = now
            key = f"node:{node}"
            if key in facts.flapping:
                self.last_change[key] = now
        if not online:
            self.forget_link_failures_around(node, now)

    def _note_listing(self, entry: Reported) -> None:
        src = entry.node
        listed = entry.keys
        before = self.reported.get(src)
        self.reported[src] = listed
        if before is None or before is listed or before == listed:
            return
        at, was, now_listed = entry.at, set(before), set(listed)
        self._listing.extend((key, False, at) for key in was - now_listed)
        self._listing.extend((key, True, at) for key in now_listed - was)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, now: float) -> None:
        listing, self._listing = self._listing, []
        for key, present, at in listing:
            self._link_listing_changed(key, present, at)
        self._end_flapping(now)

    def _link_listing_changed(self, key: LinkKey, present: bool, now: float) -> None:
        if key.peer.startswith(MAC_PREFIX):
            return
        facts = self.facts
        a, b, kind = pair_of(key)
        flap_key = f"link:{a}|{b}|{kind}"
        if flap_key in facts.flapping:
            self.last_change[flap_key] = now  # any change keeps it flapping
        # a failure is a link dropping out of a report while both ends are up and settled
        if present or flap_key in facts.flapping or not (
            self._settled(key.src, now) and self._settled(key.peer, now)
        ):
            return
        history = self._count(self.link_changes, key, now)
        if len(history) >= self.settings.flap_changes and not (
            f"node:{a}" in facts.flapping or f"node:{b}" in facts.flapping
        ):
            ref = LinkRef(a, b, kind)
            inc = Incident(
                incident_id("flapping", [str(ref), ref.kind], now), "flapping", "warning",
                history[0], cause_links=[ref],
                details={"changes": len(history), "window_s": self.settings.flap_window_s},
            )
            facts.flapping[flap_key] = inc
            self.last_change[flap_key] = now
            self.book.announce(inc)

    def own_failures(self, nodes: Iterable[str], at: float, now: float) -> None:
        """Count a failure of each node's own (it was an outage's cause, at `at`); open
        `flapping` for those that failed flap_changes times within flap_window_s."""
        facts, cfg = self.facts, self.settings
        for node in nodes:
            key = f"node:{node}"
            if key in facts.flapping:
                continue
            history = self._count(self.node_changes, node, at)
            if len(history) < cfg.flap_changes:
                continue
            inc = Incident(
                incident_id("flapping", [node], now), "flapping", "warning", history[0],
                cause_nodes=[node],
                details={"changes": len(history), "window_s": cfg.flap_window_s},
            )
            facts.flapping[key] = inc
            self.last_change[key] = max(at, self.last_transition.get(node, at))
            facts.stale = True  # its outages give way to the flapping incident
            self.book.announce(inc)

    def _end_flapping(self, now: float) -> None:
        facts = self.facts
        window = self.settings.flap_window_s
        for key, inc in list(facts.flapping.items()):
            if now - self.last_change.get(key, now) < window:
                continue
            if key.startswith("node:"):
                self.node_changes.pop(key[5:], None)
            del facts.flapping[key]
            self.last_change.pop(key, None)
            facts.stale = True
            if inc.id in self.book.open:
                self.book.close(inc, now)

    def _settle_s(self, node: str) -> float:
        """How long around a node's own transition the links to it are not news: a failure
        goes unnoticed up to its offline timeout, a node coming back re-associates."""
        state = self.topology.nodes.get(node)
        wait = self.topology.offline_after(state) if state is not None else 0.0
        return wait + EVIDENCE_MARGIN_S

    def _settled(self, node: str, at: float) -> bool:
        """Up (agent too) at `at`, and neither went down nor came back shortly before."""
        facts = self.facts
        return facts.alive(node) and node not in facts.silent and (
            self.last_transition.get(node, -math.inf) < at - self._settle_s(node))

    def forget_link_failures_around(self, node: str, now: float) -> None:
        """`node` failed: links that dropped out of reports shortly before did so because
        of it (neighbours stop hearing a router before its timeout or last will)."""
        since = now - self._settle_s(node)
        table = self.link_changes
        for link in self.topology.node_links(node):
            history = table.get(link.key)
            while history and history[-1] >= since:
                history.pop()

    def _count(self, table: dict[Any, deque[float]], key: Any, now: float) -> deque[float]:
        history = table.get(key)
        if history is None:
            history = table[key] = deque()
        history.append(now)
        window = self.settings.flap_window_s
        while history and history[0] < now - window:
            history.popleft()
        if len(table) > 4 * TABLE_PRUNE and len(history) == 1:
            # drop histories that aged out, so the table does not grow with the network
            for k in [k for k, h in table.items() if h and h[-1] < now - window]:
                del table[k]
        return history

    # ------------------------------------------------------------------ queries
    def condition(self, node: str) -> str | None:
        return "flapping" if f"node:{node}" in self.facts.flapping else None

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        return {
            "node_changes": {n: list(h) for n, h in self.node_changes.items() if h},
            "flapping": {k: i.id for k, i in self.facts.flapping.items()},
            "flap_last": self.last_change,
        }

    def restore(self, snap: dict[str, Any], now: float) -> None:
        window = self.settings.flap_window_s
        self.node_changes = {
            n: deque(t for t in h if t >= now - window)
            for n, h in snap.get("node_changes", {}).items()
        }
        open_ = self.book.open
        self.facts.flapping = {k: open_[i] for k, i in snap.get("flapping", {}).items()
                               if i in open_}
        saved_last = snap.get("flap_last", {})
        self.last_change = {k: float(saved_last.get(k, now)) for k in self.facts.flapping}
