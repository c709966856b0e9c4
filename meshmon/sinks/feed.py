"""The sinks' side of the change log: samples and events out, state saved in slices.

`SinkFeed` hands every applied report to each sink (`write_report`) and every node that
came online or went offline as an `event`. `StateSaver` keeps the SQLite copy of the
current state (so a restart resumes where it was): it notes which nodes changed and
which links left, and saves the oldest changed nodes with their outgoing links a slice
at a time, so a large network never stalls the loop.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

from meshmon.model.changelog import (
    Cursor,
    InfoChanged,
    LinksAdded,
    LinksRemoved,
    Presence,
    Reported,
)
from meshmon.model.state import LinkKey
from meshmon.model.topology import Topology
from meshmon.sinks.base import Event, Sink
from meshmon.sinks.sqlite import SqliteStore

log = logging.getLogger(__name__)

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
    """Follows the change log into the sinks: reports as samples, presence as events."""

    def __init__(self, cursor: Cursor, sinks: Sequence[Sink]) -> None:
        self.cursor = cursor
        self.sinks = list(sinks)

    def catch_up(self) -> None:
        """Write what was applied since the last call."""
        read = self.cursor.read()
        if read.reset:
            log.error("sinks fell %d change log entries behind; their samples are lost",
                      read.lost)
        sinks = self.sinks
        for entry in read.entries:
            if isinstance(entry, Reported):
                for sink in sinks:
                    sink.write_report(entry.report, entry.at, entry.dsts)
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
            if isinstance(entry, Reported):
                nodes[entry.report.node] = None
            elif isinstance(entry, InfoChanged):
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
