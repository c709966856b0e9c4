"""Who is watching which node live (installer view), and waking them when it changes.

The service calls `changed(node)` for the reporting node and each peer its report names;
a stream handler waits on its node's event and sends what is new. Nothing is queued here:
a watcher that wakes reads the current state, so a slow browser never holds data back.
"""

from __future__ import annotations

import asyncio


class LiveHub:
    """Per-node wake-ups for live views."""

    def __init__(self) -> None:
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
