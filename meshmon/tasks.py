"""Who owns a component's background tasks.

The collector runs every task (MQTT, ticks, sink flushers, alert delivery, live views'
renewals, …) in one `asyncio.TaskGroup`, so a task that dies is reported and stops the
process instead of vanishing while the rest goes on. Components start theirs with
`spawn(coro, name)`: inside `owned_by(owner)` (the service's start-up) the owner creates
it; elsewhere (a component used on its own, as in tests and tools) it is a plain task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
"""(coroutine, task name) → the running task"""

_owner: ContextVar[Spawn | None] = ContextVar("meshmon_task_owner", default=None)


def plain_task(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """A task nobody owns (the default outside a service)."""
    return asyncio.create_task(coro, name=name)


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start a background task with the current owner (see `owned_by`)."""
    owner = _owner.get()
    return (owner or plain_task)(coro, name)


@contextlib.contextmanager
def owned_by(owner: Spawn) -> Iterator[None]:
    """Tasks that components `spawn` meanwhile (in this context) belong to `owner`."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)
