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
import logging
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


class TaskGroupOwner:
    """One `asyncio.TaskGroup` that a process's tasks run in (`spawn`), held by a task of
    its own: a task that fails is logged, `failure` says which and `failed` is set, and
    the group cancels the rest, so nothing dies silently while the process goes on."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        """the process, as the log names it (e.g. "collector")"""
        self.log = logger
        self.failed = asyncio.Event()
        """set when a task failed (the group stopped: `failure` says why)"""
        self.failure = ""
        self._holder: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None

    async def open(self) -> None:
        """Open the group: from now on `spawn` creates tasks in it."""
        opened = asyncio.get_running_loop().create_future()
        self._holder = asyncio.create_task(self._hold(opened), name=self.what)
        await opened

    async def _hold(self, opened: asyncio.Future[None]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                opened.set_result(None)
                await asyncio.get_running_loop().create_future()  # until cancelled
        except Exception as exc:
            if not opened.done():
                opened.set_exception(exc)
            self.failed.set()
            raise
        finally:
            self._group = None

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` as a task of the group (a plain task once the group is gone, e.g.
        a last write while stopping). If it fails, the failure is logged and the whole
        group stops (`failed` is set)."""
        group = self._group
        if group is None:
            return plain_task(coro, name)
        return group.create_task(self._reported(coro, name), name=name)

    async def _reported(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:
        try:
            return await coro
        except Exception as exc:
            # (public on /healthz: the task and the kind of error; the log has the rest)
            self.failure = f"task {name} failed ({type(exc).__name__})"
            self.log.critical("the %s's task %s failed; stopping", self.what, name,
                              exc_info=True)
            raise

    async def close(self) -> None:
        """Cancel what is left of the group and wait for it (a failure was logged when
        it happened)."""
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await holder
