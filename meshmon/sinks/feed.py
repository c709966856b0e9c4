"""What the core changed, out to the sinks: samples and events, and the state saved.

`SinkFeed` takes the effects of each core call as they come and hands an applied report
to each report sink (`write_report`) and every node that came online or went offline as
an `event` to each event sink. It also holds each report's MQTT acknowledgement until
the sinks it waits for have settled the report (`hold`, `settled_tokens`).

`StateSaver` follows the change log to keep the SQLite copy of the current state (so a
restart resumes where it was): it notes which nodes changed and which links left, and
saves the oldest changed nodes with their outgoing links a slice at a time, so a large
network never stalls the loop.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence

from meshmon.model import wire
from meshmon.model.changelog import (
    Cursor,
    InfoChanged,
    LinksAdded,
    LinksRemoved,
    Presence,
    Reported,
)
from meshmon.model.core import Effects
from meshmon.model.fastwire import AnyReport, Message, Report
from meshmon.model.state import LinkKey
from meshmon.model.topology import Topology
from meshmon.sinks.base import Event, Sink
from meshmon.sinks.sqlite import SqliteStore

_REPORT_TYPES = (Report, wire.Report)

_SUMMARY = {
    ("report", True): "{} is reporting",
    ("status", True): "{} is online",
    ("status", False): "{} is offline",
    ("timeout", False): "{} stopped reporting",
}


def presence_event(at: float, node: str, online: bool, why: str) -> Event:
    """The `online`/`offline` event of one node."""
    text = _SUMMARY.get((why, online), "{} is " + ("online" if online else "offline"))
    return Event(at, "online" if online else "offline", node, text.format(node))


class SinkFeed:
    """The effects of each core call into the sinks: a report's samples, presence events;
    and the acknowledgements that wait for the samples to be stored."""

    def __init__(self, sinks: Sequence[Sink], event_sinks: Sequence[Sink] | None = None,
                 ack_sinks: Sequence[Sink] = ()) -> None:
        self.sinks = list(sinks)
        """where reports go"""
        self.event_sinks = list(sinks if event_sinks is None else event_sinks)
        self.ack_sinks = list(ack_sinks)
        """a report is acknowledged once each of these has settled it"""
        self.reports_written = 0
        """reports handed to the sinks"""
        self._held: deque[tuple[int, int]] = deque()
        """(reports written up to and with this message, its ack token), in arrival order"""

    def write(self, effects: Effects, message: Message | wire.Report | None = None) -> None:
        """Queue what one `apply(message)` or `tick` changed (never blocks)."""
        for entry in effects.entries:
            if type(entry) is Reported and isinstance(message, _REPORT_TYPES):
                self.write_report(message, entry.at, entry.dsts)
            elif type(entry) is Presence:
                for node in entry.nodes:
                    self.emit(presence_event(entry.at, node, entry.online, entry.why))

    def write_report(self, report: AnyReport, received_at: float,
                     dsts: Sequence[str | None]) -> None:
        """Queue one report's samples in every report sink."""
        self.reports_written += 1
        for sink in self.sinks:
            sink.write_report(report, received_at, dsts)

    def emit(self, event: Event) -> None:
        """Queue one event in every event sink."""
        for sink in self.event_sinks:
            sink.write_event(event)

    def hold(self, token: int) -> None:
        """Hold the acknowledgement of the message just handled (after `write`) until
        everything written so far is settled; token 0 (nothing to acknowledge) is skipped."""
        if token:
            self._held.append((self.reports_written, token))

    @property
    def held(self) -> int:
        """Acknowledgements waiting for the sinks."""
        return len(self._held)

    def settled_tokens(self) -> list[int]:
        """The held tokens whose reports every ack sink has settled, in arrival order."""
        held = self._held
        if not held:
            return []
        sinks = self.ack_sinks
        # the sinks count the reports they settled since they started; the feed counts
        # from the same start (one feed per set of sinks)
        settled = min(s.reports_settled for s in sinks) if sinks else self.reports_written
        out: list[int] = []
        while held and held[0][0] <= settled:
            out.append(held.popleft()[1])
        return out


class StateSaver:
    """Saves changed nodes and their outgoing links to the store, a slice at a time."""

    def __init__(self, cursor: Cursor, topology: Topology, store: SqliteStore) -> None:
        self.cursor = cursor
        self.topology = topology
        self.store = store
        self._nodes: dict[str, None] = {}
        """nodes whose state or outgoing links changed since saved (insertion-ordered)"""
        self._removed: set[LinkKey] = set()

    @property
    def pending(self) -> int:
        """Changed nodes not saved yet."""
        return len(self._nodes)

    def catch_up(self) -> None:
        """Note what changed since the last call."""
        read = self.cursor.read()
        nodes = self._nodes
        if read.reset:  # whatever we missed: everything is saved again
            nodes.update(dict.fromkeys(self.topology.nodes))
        for entry in read.entries:
            if isinstance(entry, Reported | InfoChanged):
                nodes[entry.node] = None
            elif isinstance(entry, Presence):
                nodes.update(dict.fromkeys(entry.nodes))
            elif isinstance(entry, LinksAdded):
                nodes.update(dict.fromkeys(key.src for key in entry.keys))
            elif isinstance(entry, LinksRemoved):
                self._removed.update(entry.keys)

    def save(self, limit: int) -> None:
        """Hand the oldest `limit` changed nodes (with their outgoing links) and the links
        that left to the store."""
        self.catch_up()
        topo = self.topology
        pending = self._nodes
        chosen = list(itertools.islice(pending, limit))
        for node in chosen:
            del pending[node]
        nodes = [topo.nodes[n] for n in chosen if n in topo.nodes]
        links = [ls for n in chosen for ls in topo.links_from(n)]
        # a link that left and came back (re-added within the slice) is not deleted
        removed = [key for key in self._removed if key not in topo.links]
        self._removed.clear()
        if nodes or links or removed:
            self.store.save_state(nodes, links, removed)
