"""AlertStore on a real SQLite file: engine state, alert log, silences, delivery queue."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshmon.alerts.model import Alert, LinkRef, Silence
from meshmon.alerts.store import AlertStore
from meshmon.sinks.base import Event
from meshmon.sinks.sqlite import SqliteStore

NOW = 1_700_000_000.0
DAY = 86400.0


def alert(n: int, status: str = "firing", sent_at: float = NOW) -> Alert:
    return Alert(
        id=f"outage-n{n}-{int(NOW)}",
        status=status,  # type: ignore[arg-type]
        kind="outage",
        severity="critical",
        summary=f"n{n} is down since 10:00, 3 nodes cut off",
        started_at=NOW - 600,
        ended_at=NOW if status == "resolved" else None,
        cause_nodes=[f"n{n}"],
        cause_links=[LinkRef.of("n9", f"n{n}", "wifi")],
        affected=["n5", "n6", "n7"],
        tags=["roof"],
        sent_at=sent_at,
        url=f"https://mesh.example/alerts/outage-n{n}",
        details={"last_seen": NOW - 600, "gateway": False},
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    s = AlertStore(tmp_path / "meshmon.sqlite", clock=lambda: NOW)
    await s.start()
    yield s
    await s.close()


async def test_engine_state_replaced_whole_and_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "meshmon.sqlite"
    s = AlertStore(path)
    await s.start()
    assert await s.load_engine_state() is None
    await s.save_engine_state({"open": {"a": {"since": NOW}}, "seq": 1})
    await s.save_engine_state({"open": {}, "seq": 2})
    await s.close()

    s = AlertStore(path)
    await s.start()
    assert await s.load_engine_state() == {"open": {}, "seq": 2}
    await s.close()


async def test_alert_log_round_trip(store: AlertStore) -> None:
    firing = alert(1, sent_at=NOW)
    resolved = alert(1, status="resolved", sent_at=NOW + 60)
    await store.log_alert(firing, ["webhook", "email"], silenced=False)
    await store.log_alert(resolved, [], silenced=True)

    rows = await store.alerts()
    assert [r["status"] for r in rows] == ["firing", "resolved"]
    first = rows[0]
    assert first["ts"] == NOW
    assert first["id"] == firing.id
    assert (first["kind"], first["severity"]) == ("outage", "critical")
    assert first["summary"] == firing.summary
    assert first["notifiers"] == ["webhook", "email"]
    assert first["silenced"] is False
    assert rows[1]["silenced"] is True
    assert Alert.from_payload(first["payload"]) == firing
    assert Alert.from_payload(rows[1]["payload"]) == resolved


async def test_alert_log_since_and_limit_keep_the_newest_oldest_first(store: AlertStore) -> None:
    for i in range(10):
        await store.log_alert(alert(i, sent_at=NOW + i), ["webhook"], silenced=False)
    assert [r["ts"] for r in await store.alerts(limit=3)] == [NOW + 7, NOW + 8, NOW + 9]
    assert [r["ts"] for r in await store.alerts(since=NOW + 8)] == [NOW + 8, NOW + 9]


async def test_silences_active_future_end_early_and_expiry(store: AlertStore) -> None:
    active = await store.add_silence(
        Silence(node="n1*", starts_at=NOW - 60, ends_at=NOW + 3600, reason="antenna work",
                created_by="ana", created_at=NOW - 60)
    )  # fmt: skip
    future = await store.add_silence(Silence(tag="roof", starts_at=NOW + 600, ends_at=NOW + 900))
    past = await store.add_silence(Silence(node="n2", starts_at=NOW - 900, ends_at=NOW - 600))
    assert None not in (active.id, future.id, past.id)
    assert len({active.id, future.id, past.id}) == 3

    listed = await store.silences(NOW)
    assert listed == [active, future]
    assert listed[0].active(NOW) and not listed[1].active(NOW)
    assert [s.id for s in await store.silences(NOW, include_expired=True)] == [
        past.id, active.id, future.id,
    ]  # fmt: skip

    # ending early: gone from the active list, kept (marked) in the full one
    assert active.id is not None and past.id is not None
    assert await store.end_silence(active.id, NOW + 10)
    assert await store.silences(NOW + 10) == [future]
    ended = next(s for s in await store.silences(NOW, include_expired=True) if s.id == active.id)
    assert ended.ended_early and ended.ends_at == NOW + 10
    assert not ended.active(NOW + 10)
    # unknown, already ended, already over
    assert not await store.end_silence(9999, NOW)
    assert not await store.end_silence(active.id, NOW + 20)
    assert not await store.end_silence(past.id, NOW)

    # expiry is by `now`
    assert await store.silences(NOW + 901) == []


async def test_delivery_queue_lifecycle(store: AlertStore) -> None:
    a, b, c = (alert(i).to_payload() for i in range(3))
    ida = await store.enqueue_delivery("webhook", a, None, NOW)
    idb = await store.enqueue_delivery("email", b, "owner@example.org", NOW + 1)
    idc = await store.enqueue_delivery("webhook", c, None, NOW + 2)
    assert ida < idb < idc

    pending = await store.pending_deliveries()
    assert [p.id for p in pending] == [ida, idb, idc]
    assert pending[1].notifier == "email"
    assert pending[1].payload == b
    assert pending[1].recipient == "owner@example.org"
    assert (pending[1].attempts, pending[1].next_at, pending[1].created_at) == (0, NOW + 1, NOW + 1)

    await store.mark_failed(ida, 2, NOW + 30, "connection refused")
    await store.mark_delivered([idb], NOW + 5)
    await store.drop_delivery(idc, "gave up")
    pending = await store.pending_deliveries()
    assert [(p.id, p.attempts, p.next_at) for p in pending] == [(ida, 2, NOW + 30)]

    log = {r["id"]: r for r in await store.deliveries()}
    assert log[ida]["last_error"] == "connection refused"
    assert log[idb]["delivered_at"] == NOW + 5
    assert log[idc]["drop_reason"] == "gave up"
    assert log[idc]["alert_id"] == c["id"]


async def test_start_prunes_finished_rows_older_than_30_days(tmp_path: Path) -> None:
    path = tmp_path / "meshmon.sqlite"
    clock = [NOW]
    s = AlertStore(path, clock=lambda: clock[0])
    await s.start()
    old_done = await s.enqueue_delivery("webhook", alert(1).to_payload(), None, NOW)
    old_pending = await s.enqueue_delivery("webhook", alert(2).to_payload(), None, NOW)
    await s.mark_delivered([old_done], NOW)
    await s.log_alert(alert(1, sent_at=NOW), ["webhook"], silenced=False)
    await s.add_silence(Silence(node="n1", starts_at=NOW, ends_at=NOW + 60))
    recent = await s.enqueue_delivery("webhook", alert(3).to_payload(), None, NOW + 20 * DAY)
    await s.mark_delivered([recent], NOW + 20 * DAY)
    await s.log_alert(alert(3, sent_at=NOW + 20 * DAY), ["webhook"], silenced=False)
    silent = dataclasses.replace(alert(4, sent_at=NOW + 1), id="silent-n4", kind="silent")
    await s.log_alert(silent, ["webhook"], silenced=False)
    await s.close()

    clock[0] = NOW + 31 * DAY
    s = AlertStore(path, clock=lambda: clock[0])
    await s.start()
    assert {r["id"] for r in await s.deliveries()} == {old_pending, recent}
    # outage notices stay a year (the node pages list a year of outages), others 30 days
    assert [r["ts"] for r in await s.alerts()] == [NOW, NOW + 20 * DAY]
    assert await s.silences(0, include_expired=True) == []
    await s.close()

    clock[0] = NOW + 367 * DAY
    s = AlertStore(path, clock=lambda: clock[0])
    await s.start()
    assert [r["ts"] for r in await s.alerts()] == [NOW + 20 * DAY]
    await s.close()


async def test_shares_the_file_with_the_collector_store(tmp_path: Path) -> None:
    path = tmp_path / "meshmon.sqlite"
    collector = SqliteStore(path, flush_interval_s=60)
    alerts = AlertStore(path)
    await collector.start()
    await alerts.start()
    collector.write_event(Event(NOW, "node_offline", "n1", "n1 went offline", {}))
    await collector.flush()
    await alerts.log_alert(alert(1), ["webhook"], silenced=False)
    assert len(await collector.events(0)) == 1
    assert len(await alerts.alerts()) == 1
    await alerts.close()
    await collector.close()

    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"alert_log", "deliveries", "silences", "engine_state", "events"} <= tables


async def test_methods_fail_clearly_before_start(tmp_path: Path) -> None:
    s = AlertStore(tmp_path / "meshmon.sqlite")
    with pytest.raises(RuntimeError, match="not started"):
        await s.pending_deliveries()
    await s.close()  # closing a store never started is fine
