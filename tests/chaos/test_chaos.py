"""The chaos cases, short: real Mosquitto, InfluxDB 1.6.7, `meshmon serve` processes, real
agent Publishers, a tmpfs that fills up. Each asserts where every published report went
(`bench/chaos.py` runs the same cases longer and prints the table)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.chaos import scenarios
from tests.integration.scripted_mesh import WebhookReceiver


def show(outcome: scenarios.Outcome) -> None:
    print(f"\n{scenarios.TABLE_HEAD}\n{outcome.row()}")


async def test_collector_killed_keeps_what_was_published_while_it_was_down(
    tmp_path: Path,
) -> None:
    outcome = await scenarios.collector_killed(tmp_path, flush_interval_s=0.2, before_s=2,
                                               down_s=2, after_s=2)
    show(outcome)
    assert outcome.while_down_missing == []  # type: ignore[attr-defined]
    # what SIGKILL takes is only the flush window: reports received, not yet written (the
    # writer needs up to a flush interval plus the write itself, on a busy machine)
    assert all(s < 1.0 for s in outcome.lost_before_kill_s)  # type: ignore[attr-defined]
    # and the restarted collector counted them by the gap in their seq
    assert outcome.uncounted == 0
    assert outcome.out_of_order == 0


async def test_influxdb_outage_loses_only_the_counted_overflow(tmp_path: Path) -> None:
    outcome = await scenarios.influx_down(tmp_path, rate=3, before_s=2, down_s=4, after_s=2)
    show(outcome)
    assert outcome.reports_in_sqlite == outcome.reports_published  # type: ignore[attr-defined]
    assert outcome.counted_dropped > 0, "the buffer was meant to overflow"
    assert outcome.uncounted == 0
    assert outcome.stored + outcome.counted_dropped == outcome.published


async def test_broker_restart_delivers_queued_reports_in_order(tmp_path: Path) -> None:
    outcome = await scenarios.broker_restarts(tmp_path, before_s=2, down_s=2, after_s=3)
    show(outcome)
    assert (outcome.stored, outcome.counted_dropped, outcome.uncounted) == (
        outcome.published, 0, 0)
    assert outcome.out_of_order == 0


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_full_disk_is_logged_counted_and_survived(tmp_path: Path,
                                                       hook: WebhookReceiver) -> None:
    outcome = await scenarios.disk_full(
        tmp_path, hook.url, lambda: len(hook.of("outage", "firing")), before_s=2, full_s=4,
        after_s=2)
    show(outcome)
    assert outcome.counted_dropped > 0, "the queue was meant to overflow while full"
    assert outcome.uncounted == 0
    assert outcome.stored > 0
    stored_after, published_after = outcome.after_room  # type: ignore[attr-defined]
    assert stored_after == published_after > 0, "writing resumes once there is room"
    log: str = outcome.log  # type: ignore[attr-defined]
    assert "database or disk is full" in log and "again after" in log
    assert "Traceback" not in log
