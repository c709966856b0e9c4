"""What the core changed, out to the sinks: samples and events, and the state saved.

`SinkFeed` takes the effects of each core call as they come and hands an applied report
to each sink (`write_report`) and every node that came online or went offline as an
`event`. `StateSaver` follows the change log to keep the SQLite copy of the current state
(so a restart resumes where it was): it notes which nodes changed and which links left,
and saves the oldest changed nodes with their outgoing links a slice at a time, so a
large network never stalls the loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from meshmon.model.changelog import (
    Cursor,
    InfoChanged,
    LinksAdded,
    LinksRemoved,
    Presence,
    Reported,
)
from meshmon.model.core import Effects
from meshmon.model.state import LinkKey
from meshmon.model.topology import Topology
from meshmon.model.wire import Message, Report
from meshmon.sinks.base import Event, Sink
from meshmon.sinks.sqlite import SqliteStore

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
    """The effects of each core call into the sinks: a report's samples, presence events."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    def write(self, effects: Effects, message: Message | None = None) -> None:
        """Queue what one `apply(message)` or `tick` changed (never blocks)."""
        sinks = self.sinks
        for entry in effects.entries:
            if isinstance(entry, Reported) and isinstance(message, Report):
                for sink in sinks:
                    sink.write_report(message, entry.at, entry.dsts)
            elif isinstance(entry, Presence):
                for node in entry.nodes:
                    self.emit(presence_event(entry.at, node, entry.online, entry.why))

    def emit(self, event: Event) -> None:
        """Queue one event in every sink."""
        for sink in self.sinks:
            sink.write_event(event)


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
        links = [ls for n in chosen for ls in topo.node_links(n) if ls.key.src == n]
        # a link that left and came back (re-added within the slice) is not deleted
        removed = [key for key in self._removed if key not in topo.links]
        self._removed.clear()
        if nodes or links or removed:
            self.store.save_state(nodes, links, removed)
