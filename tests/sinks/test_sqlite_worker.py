"""The SQLite store's worker process (`[storage] worker = "process"`): it survives the
signals a stop sends to the whole process group, a new one takes over when it is killed
(nothing stored is lost, what was queued is stored), it ends with the collector, its log
records reach the collector's logging, and the thread variant stores the same."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from meshmon.history.chunks import BucketsInMemory, bucket_of
from meshmon.history.query import Window, node_series, read, window
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import COARSE, HistoryTables, Retention
from meshmon.sinks.sqlite import SqliteStore
from tests.sinks.reports import DSTS, NOW, report

NODE = SeriesKey("node", "n1")
ROOT = Path(__file__).resolve().parents[2]


def store_at(tmp_path: Path, **kw) -> SqliteStore:
    kw.setdefault("worker", "process")
    return SqliteStore(tmp_path / "m.sqlite", flush_interval_s=60, clock=lambda: NOW + 100,
                       **kw)


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether process `pid` ended (and was reaped, or is a zombie) within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


async def test_the_worker_is_another_process_and_ignores_stop_signals(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    await store.start()
    pid = store.worker_pid
    assert pid is not None and pid != os.getpid()
    # Ctrl-C and systemd's stop reach every process of the group: the collector stops
    # the worker after its last write, the signals do not
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    store.write_report(report(ts=NOW, seq=0), NOW, DSTS)
    await store.flush()
    assert [s["ts"] for s in await store.samples(NODE)] == [NOW]
    assert store.worker_pid == pid
    await store.close()
    assert wait_gone(pid, 10)


async def test_a_killed_worker_is_replaced_and_nothing_stored_or_queued_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = store_at(tmp_path)
    await store.start()
    for i in range(3):
        store.write_report(report(ts=NOW + 30 * i, seq=i), NOW + 30 * i, DSTS)
    await store.flush()
    first = store.worker_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert wait_gone(first, 10)
    for i in range(3, 6):  # queued while no worker runs
        store.write_report(report(ts=NOW + 30 * i, seq=i), NOW + 30 * i, DSTS)
    with caplog.at_level(logging.ERROR, "meshmon.sinks.sqlite"):
        await store.flush()  # fails: the worker died
        await store.flush()  # a new worker writes what was queued
    assert "the worker process" in caplog.text and "ended" in caplog.text
    second = store.worker_pid
    assert second is not None and second != first
    assert [s["seq"] for s in await store.samples(NODE)] == [0, 1, 2, 3, 4, 5]
    stats = store.stats()
    # the killed worker held nothing that was not stored yet
    assert stats["worker_losses"] == 0 and stats["dropped_points"] == 0
    assert stats["write_errors"] == 1 and store.reports_settled == 6
    assert store.worker_deaths == 1
    await store.close()


def test_the_worker_ends_when_the_collector_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from meshmon.sinks.sqlite import SqliteStore

        async def main():
            store = SqliteStore({str(tmp_path / "m.sqlite")!r}, worker="process")
            await store.start()
            print(store.worker_pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        worker = int(proc.stdout.readline())
        assert not wait_gone(worker, 0.5)  # alive while the collector is
        proc.kill()
        proc.wait(10)
        assert wait_gone(worker, 10)
    finally:
        proc.kill()
        proc.wait(10)


async def test_the_workers_log_records_reach_the_collectors_logging(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = store_at(tmp_path)
    await store.start()
    with caplog.at_level(logging.WARNING):
        await store.read_history(log_a_warning)
        await store.flush()  # (records are handed over in order, behind the call)
        deadline = time.monotonic() + 10
        while "from the worker" not in caplog.text:
            assert time.monotonic() < deadline, "the record never arrived"
            await store.flush()
    record = next(r for r in caplog.records if "from the worker" in r.getMessage())
    assert record.name == "meshmon.history.test" and record.process == store.worker_pid
    await store.close()


def log_a_warning(_tables, _in_memory) -> None:
    """(in the worker process)"""
    logging.getLogger("meshmon.history.test").warning("a warning from the worker")


@pytest.mark.parametrize("worker", ["process", "thread"])
async def test_both_workers_store_the_same(tmp_path: Path, worker: str) -> None:
    store = store_at(tmp_path / worker, worker=worker)
    (tmp_path / worker).mkdir()
    await store.start()
    assert (store.worker_pid == os.getpid()) == (worker == "thread")
    for i in range(4):
        store.write_report(report(ts=NOW + 30 * i, seq=i), NOW + 30 * i, DSTS)
    await store.flush()
    got = await store.samples(NODE)
    assert [s["seq"] for s in got] == [0, 1, 2, 3]
    assert got[0]["load1"] == 0.5
    await store.close()


def hourly_load(win: Window, now: float, tables: HistoryTables, in_memory: BucketsInMemory
                ) -> dict[str, Any]:
    """(in the worker) n1's load over a window the collector made (pickled to a process)."""
    return read(tables, in_memory, node_series(tables, "n1"), ["load1"], win, ("mean",), now)


async def test_both_workers_answer_a_history_read_the_same(tmp_path: Path) -> None:
    # three hours every 5 minutes, then the first bucket of the next hour: the hour
    # before it is read from history_5min (it goes up into history_1h when the series
    # stores a bucket of the next one), the older ones from history_1h. The worker
    # tells the levels apart by identity: the window's is pickled to a process
    first = bucket_of(NOW, 3600) + 3600
    times = [first + 300 * i for i in range(37)]
    now = times[-1] + 60
    win = window({"range": "7d"}, now, Retention())
    assert win.level is COARSE
    answers = {}
    for worker in ("thread", "process"):
        (tmp_path / worker).mkdir()
        store = store_at(tmp_path / worker, worker=worker)
        await store.start()
        for i, ts in enumerate(times):
            store.write_report(report(ts=ts, seq=i), ts, DSTS)
        await store.flush()
        answers[worker] = await store.read_history(functools.partial(hourly_load, win, now))
        await store.close()
    assert answers["process"] == answers["thread"]
    (series,) = answers["process"]["series"]
    shown = {t for t, mean in zip(answers["process"]["t"], series["mean"], strict=True)
             if mean is not None}
    assert shown == {bucket_of(ts, 3600) for ts in times} == {first + 3600 * h
                                                               for h in range(4)}


def stops(_tables: HistoryTables, _in_memory: BucketsInMemory) -> None:
    """(in the worker) a reader with a bug that lets a StopIteration out"""
    next(iter(()))


@pytest.mark.parametrize("worker", ["process", "thread"])
async def test_a_call_that_raises_stop_iteration_fails_instead_of_hanging(
        tmp_path: Path, worker: str) -> None:
    store = store_at(tmp_path, worker=worker)
    await store.start()
    async with asyncio.timeout(10):  # (asyncio cannot set a StopIteration on a future)
        with pytest.raises(RuntimeError, match="StopIteration"):
            await store.read_history(stops)
        assert await store.samples(NODE) == []  # the worker still answers
    await store.close()

