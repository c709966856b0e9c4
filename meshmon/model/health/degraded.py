"""Degraded links: signal, SNR, TQ or ETX past their thresholds, or signal far below the
link's own baseline, for `samples_to_change` samples in a row (`linkhealth.LinkTracker`).

One `degraded` incident per radio link (node pair and kind) while a direction of it is
degraded after having been good: a link poor from its first sample is no news.
"""

from __future__ import annotations

import math
import time
from typing import Any

from meshmon.model.changelog import Entry, Reported
from meshmon.model.health.detector import Detector, pair_of
from meshmon.model.health.incidents import Incident, incident_id
from meshmon.model.linkhealth import LinkTracker
from meshmon.model.state import LinkKey, LinkRef, LinkState

SLICE_S = 0.02
"""link samples judged per tick at most this long; the rest on the next tick"""
BACKLOG_MAX = 100_000
"""samples waiting beyond this are all judged at once (memory stays bounded when the
ticks cannot keep up)"""
CHECK_EVERY = 512

Link = tuple[str, str, str]
"""an undirected radio link: smaller node id, larger node id, kind"""


class DegradedDetector(Detector):
    """Feeds every new link sample to its link's tracker; opens and resolves incidents."""

    kind = "degraded"
    observes = (Reported,)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.trackers: dict[LinkKey, LinkTracker] = {}
        self.incidents: dict[Link, Incident] = {}
        self._sampled: list[LinkState] = []
        """links with a new sample since the last evaluation (a link may be here twice)"""

    def observe(self, entry: Entry) -> None:
        if isinstance(entry, Reported):
            self._sampled += entry.links

    def evaluate(self, now: float) -> None:
        sampled, self._sampled = self._sampled, []
        trackers, cfg = self.trackers, self.settings
        changed: set[Link] = set()
        seen: set[int] = set()
        deadline = time.perf_counter() + SLICE_S if len(sampled) < BACKLOG_MAX else math.inf
        observe = LinkTracker.observe
        for start in range(0, len(sampled), CHECK_EVERY):
            if start and time.perf_counter() > deadline:
                # the rest waits for the next tick (each link once: a link seen here
                # already gave its latest sample), so a tick never holds the loop long
                self._sampled = [s for s in sampled[start:] if id(s) not in seen]
                break
            for state in sampled[start:start + CHECK_EVERY]:
                # each link once, with its latest sample (a node may have reported twice)
                sid = id(state)
                if sid in seen or state.dst is None:
                    continue
                seen.add(sid)
                key = state.key
                tracker = trackers.get(key)
                if tracker is None:
                    tracker = trackers[key] = LinkTracker()
                if observe(tracker, state.sample, now, cfg):
                    changed.add(pair_of(key))
        for link in sorted(changed):
            self._update(link, now)

    def _update(self, link: Link, now: float) -> None:
        a, b, kind = link
        directions = [
            (k, t) for k in self._keys(a, b, kind)
            if (t := self.trackers.get(k)) is not None and t.degraded and t.was_good
        ]  # fmt: skip
        open_inc = self.incidents.get(link)
        if directions and open_inc is None:
            ref = LinkRef(a, b, kind)
            since = min(t.since for _, t in directions)
            inc = Incident(
                incident_id("degraded", [str(ref), kind], since), "degraded", "warning", since,
                cause_links=[ref],
                details={f"{k.src}->{k.peer}": t.reasons for k, t in directions},
            )
            self.incidents[link] = inc
            self.book.announce(inc)
        elif not directions and open_inc is not None:
            del self.incidents[link]
            if open_inc.id in self.book.open:
                self.book.close(open_inc, now)

    def _keys(self, a: str, b: str, kind: str) -> list[LinkKey]:
        return [ls.key for ls in self.topology.node_links(a)
                if ls.key.kind == kind and {ls.key.src, ls.key.peer} == {a, b}]

    # ------------------------------------------------------------------ queries
    def link_condition(self, key: LinkKey) -> str:
        """`degraded` or `up`."""
        tracker = self.trackers.get(key)
        return "degraded" if tracker is not None and tracker.degraded else "up"

    def fading_links(self) -> list[dict[str, Any]]:
        """Links whose recent signal is below their baseline by half the drop threshold."""
        out = []
        cfg = self.settings
        for key, tracker in self.trackers.items():
            base = tracker.baseline(cfg)
            mean = tracker.recent
            if base is None or mean is None or key not in self.topology.links:
                continue
            if mean < base - cfg.baseline_drop_db / 2:
                out.append({"src": key.src, "dst": key.peer, "iface": key.iface,
                            "kind": key.kind, "baseline_dbm": round(base, 1),
                            "signal_dbm": round(mean, 1), "degraded": tracker.degraded})
        return sorted(out, key=lambda d: d["signal_dbm"] - d["baseline_dbm"])

    def restore(self, snap: dict[str, Any], now: float) -> None:
        self.incidents = {
            (ln.a, ln.b, ln.kind): inc for inc in self.book.of_kind("degraded")
            if (ln := inc.cause_links[0] if inc.cause_links else None) is not None
        }
