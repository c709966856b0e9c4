"""Large garbage freed off the event loop, a slice at a time, by a thread of its own.

Freeing a few hundred thousand objects at once — a store's written batch after a drain:
every link's state row, thousands of reports — holds the thread that drops the last
reference for tens of milliseconds, in one C call that never gives the interpreter
lock (GIL) away. Freed by the event loop, that is a stall every page waits for. Here a
thread empties the containers a slice at a time (`SLICE`), so between slices the loop
takes the GIL back within a switch interval (1 ms).
"""

from __future__ import annotations

import threading
from collections import deque
from queue import SimpleQueue
from typing import Any

SLICE = 1000
"""entries freed at a time"""

Container = list[Any] | deque[Any] | dict[Any, Any] | set[Any]


class Disposer:
    """A daemon thread that empties the containers it is given (`dispose`)."""

    def __init__(self, name: str = "meshmon-disposal") -> None:
        self._name = name
        self._queue: SimpleQueue[list[Container]] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def dispose(self, *containers: Container) -> None:
        """Empty `containers` in the thread, freeing what they held. They must be the
        caller's own: nothing else may use them afterwards (what they hold may be held
        elsewhere too; it is then only not freed)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name,
                                                daemon=True)
                self._thread.start()
        self._queue.put(list(containers))

    def _run(self) -> None:
        get = self._queue.get
        while True:
            containers = get()
            while containers:
                empty(containers.pop())


def empty(container: Container) -> None:
    """Empty `container` `SLICE` entries at a time (each slice one step of Python, so
    another thread may take the GIL in between)."""
    if isinstance(container, list):
        while container:
            del container[-SLICE:]
    elif isinstance(container, dict):
        popitem = container.popitem
        while container:
            for _ in range(min(SLICE, len(container))):
                popitem()
    else:  # deque, set
        pop = container.pop
        while container:
            for _ in range(min(SLICE, len(container))):
                pop()


DISPOSER = Disposer()
"""the process's disposal thread (started at the first `dispose`)"""
