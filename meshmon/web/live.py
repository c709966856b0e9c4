"""Who is watching which node live (installer view), and waking them when it changes.

The hub follows the core's change log: after each ingest batch and tick the collector
lets it catch up, and it wakes the watchers of every node an entry names (a reporting
node and each peer its report names, both ends of links that came or went, nodes whose
info or presence changed). A stream handler waits on its node's event and sends what is
new. Nothing is queued here: a watcher that wakes reads the current state, so a slow
browser never holds data back; with nobody watching, catching up costs nothing.
"""

from __future__ import annotations

import asyncio

from meshmon.model.changelog import Cursor, nodes_named


class LiveHub:
    """Per-node wake-ups for live views."""

    def __init__(self, cursor: Cursor | None = None) -> None:
        self.cursor = cursor
        self._watchers: dict[str, set[asyncio.Event]] = {}

    def __bool__(self) -> bool:
        return bool(self._watchers)

    def watch(self, node: str) -> asyncio.Event:
        """An event set whenever `node` (or a link to it) changes; `unwatch` it when done."""
        event = asyncio.Event()
        self._watchers.setdefault(node, set()).add(event)
        return event

    def unwatch(self, node: str, event: asyncio.Event) -> None:
        watchers = self._watchers.get(node)
        if watchers is not None:
            watchers.discard(event)
            if not watchers:
                del self._watchers[node]

    def watchers(self, node: str) -> int:
        return len(self._watchers.get(node, ()))

    def changed(self, node: str) -> None:
        """Wake everyone watching `node`."""
        for event in self._watchers.get(node, ()):
            event.set()

    def catch_up(self) -> None:
        """Wake the watchers of every node named in the change log since the last call."""
        cursor = self.cursor
        if cursor is None:
            return
        if not self._watchers:
            cursor.skip()
            return
        read = cursor.read()
        woken = set(self._watchers) if read.reset else nodes_named(read.entries)
        for node in woken & self._watchers.keys():
            self.changed(node)
