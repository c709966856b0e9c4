"""One object living in a process of its own, called from the event loop.

The collector's SQLite store can do its CPU work (history extraction, bucket rows, JSON
of the state) in such a process (`[storage] worker = "process"`): as a thread it shares
the interpreter lock with the event loop, which then slept 15–20 % of its stalls under
load (bench/README.md).

The process comes from multiprocessing's fork server (forked from a clean process that
imported the worker's module once: ~20 ms, and none of the collector's threads or locks
are copied). It ignores SIGINT and SIGTERM (a Ctrl-C or systemd's stop reaches the whole
process group; the collector stops it after its last write) and exits by itself when the
collector is gone. Its log records are handled by the collector's logging.

`call(method, *args)` runs `method` of the object in the process; the arguments and the
answer are pickled (functions must be module-level or `functools.partial` of one). When
the process dies (killed, out of memory), the call raises `WorkerDied` and the next
`start` makes a new one.

`WorkerThread` has the same interface and keeps the object in a thread of this process
(`[storage] worker = "thread"`, the default: one process, ~100 MB less; and the
benchmarks that count a report's instructions or memory in one process).
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

PARENT_CHECK_S = 1.0
"""how often the process looks whether the collector still runs"""

_object: Any = None
"""the object of this process (in the worker process)"""


class WorkerDied(RuntimeError):
    """The worker process ended while a call ran or waited (it is made again by `start`)."""


def _context(preload: str) -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([preload])  # (only before the fork server's first start)
    return ctx


def _init(log_queue: Any, parent: int, level: int) -> None:
    """In the new process: signals, logging through the collector, the parent watch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    root.setLevel(level)
    threading.Thread(target=_exit_without, args=(parent,), daemon=True,
                     name="parent-watch").start()


def _exit_without(parent: int) -> None:
    """End this process once the collector's process is gone (killed: nothing stops us)."""
    while True:
        time.sleep(PARENT_CHECK_S)
        try:
            os.kill(parent, 0)
        except (ProcessLookupError, PermissionError):  # (or a pid taken again by another
            os._exit(1)  # user's process)


def _create(factory: Callable[..., Any], args: tuple[Any, ...]) -> int:
    global _object
    _object = _answering(factory, *args)
    return os.getpid()


def _call(method: str, args: tuple[Any, ...]) -> Any:
    return _answering(getattr(_object, method), *args)


def _answering(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`, with a StopIteration it lets out raised as a RuntimeError: asyncio
    cannot set a StopIteration on the caller's future, which would never be done."""
    try:
        return fn(*args)
    except StopIteration as exc:
        raise RuntimeError(f"{getattr(fn, '__qualname__', fn)!s} raised StopIteration"
                           ) from exc


class _ForwardRecords(logging.Handler):
    """Hands the worker's log records to the collector's loggers (a QueueListener's
    handler: the records keep their logger name, level and message)."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


class WorkerProcess:
    """An object made by `factory(*args)` in a process of its own (`module` names the
    module the fork server imports ahead: the factory's)."""

    def __init__(self, name: str, module: str, factory: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        self.name = name
        self.module = module
        self.factory = factory
        self.args = args
        self.pid: int | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._listener: logging.handlers.QueueListener | None = None

    @property
    def running(self) -> bool:
        return self._pool is not None

    async def start(self) -> None:
        """Start the process and make the object in it (its errors are raised here)."""
        ctx = _context(self.module)
        log_queue = ctx.Queue()
        self._listener = logging.handlers.QueueListener(log_queue, _ForwardRecords())
        self._listener.start()
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=ctx, initializer=_init,
            initargs=(log_queue, os.getpid(), logging.getLogger().getEffectiveLevel()))
        try:
            self.pid = await self._run(_create, self.factory, self.args)
        except BaseException:
            await self.stop()
            raise

    async def call(self, method: str, *args: Any) -> Any:
        """`object.method(*args)` in the process."""
        return await self._run(_call, method, args)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"{self.name}: the worker process is not started")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool as exc:
            code = self._exit_code(pool)
            await self.stop()
            raise WorkerDied(f"{self.name}: the worker process (pid {self.pid}) ended"
                             + ("" if code is None else f" with exit code {code}")) from exc

    @staticmethod
    def _exit_code(pool: ProcessPoolExecutor) -> int | None:
        procs = getattr(pool, "_processes", None) or {}
        codes = [p.exitcode for p in list(procs.values())]
        return codes[0] if codes else None

    async def stop(self) -> None:
        """End the process (after the calls queued so far)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            await asyncio.to_thread(listener.stop)


class WorkerThread:
    """`WorkerProcess`'s interface, the object in a thread of this process (its calls'
    arguments and answers are not copied)."""

    def __init__(self, name: str, module: str, factory: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        self.name = name
        self.factory = factory
        self.args = args
        self.pid: int | None = None
        self.object: Any = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._pool is not None

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        try:
            self.object = await self._run(self.factory, *self.args)
        except BaseException:
            await self.stop()
            raise
        self.pid = os.getpid()

    async def call(self, method: str, *args: Any) -> Any:
        return await self._run(getattr(self.object, method), *args)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._pool is None:
            raise RuntimeError(f"{self.name}: the worker thread is not started")
        return await asyncio.get_running_loop().run_in_executor(self._pool, _answering,
                                                                fn, *args)

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)


WORKERS: dict[str, type[WorkerProcess] | type[WorkerThread]] = {
    "process": WorkerProcess, "thread": WorkerThread}
"""where a worker runs, by name (`[storage] worker`)"""
