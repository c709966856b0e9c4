"""Every task of the collector runs in its one TaskGroup: a component task that fails is
reported (logged, /healthz, `failed`) and stops the collector instead of vanishing while
the rest goes on."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from meshmon.service import Service
from tests import servers
from tests.integration.harness import collector_config, started


async def healthz(service: Service) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(
            service.http_url + "/healthz") as response:
        return response.status, await response.json()


async def test_a_failing_component_task_is_reported_and_stops_the_collector(
        mosquitto: servers.Server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = collector_config(tmp_path, mosquitto.port, notifiers=[
        {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}])
    service = await started(config)
    try:
        status, body = await healthz(service)
        assert status == 200 and body["ok"] is True
        assert service.store is not None
        # the components' own tasks are the group's: the SQLite writer, alert delivery
        owned = {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(
            ("sink-", "notify-"))}
        assert {"sink-sqlite", "notify-hook", "notify-persist"} <= owned

        async def component() -> None:  # a background task of some component, with a bug
            await asyncio.sleep(0)
            raise RuntimeError("a bug")

        caplog.set_level(logging.CRITICAL, logger="meshmon.service")
        task = service.spawn(component(), "some-component")
        async with asyncio.timeout(10):
            await service.failed.wait()
        assert task.done() and isinstance(task.exception(), RuntimeError)
        failures = [r for r in caplog.records if r.levelno == logging.CRITICAL]
        assert failures and "some-component" in failures[0].getMessage()
        assert failures[0].exc_info is not None  # with its traceback
        # the whole collector stopped with it: the MQTT connections and every other task
        assert service.ingest is not None
        async with asyncio.timeout(10):
            while service.ingest.connected.is_set():
                await asyncio.sleep(0.02)
        left = {t.get_name() for t in asyncio.all_tasks()} & (owned | {"mqtt", "tick"})
        assert not left
        status, body = await healthz(service)  # HTTP still answers, and says so
        assert status == 503 and body["ok"] is False
        assert body["failure"] == "task some-component failed (RuntimeError)"
    finally:
        async with asyncio.timeout(30):  # stopping after a failure does not hang
            await service.stop()


async def test_a_writer_reports_a_failing_task_and_stops(
        mosquitto: servers.Server, influxdb1: servers.Server, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """`--role writer` holds its tasks (MQTT, acknowledgements, the InfluxDB flusher) in one
    TaskGroup too: one failing stops the writer, /healthz says so, and `meshmon serve`
    exits non-zero on `failed` (cli._serve)."""
    from meshmon.writer import Writer

    config = collector_config(
        tmp_path, mosquitto.port, roles={"share_group": "tasks-test"},
        influxdb={"enabled": True, "api": "v1", "url": influxdb1.url, "database": "tasks_test"})
    writer = Writer(config)
    await writer.start()
    try:
        await asyncio.wait_for(writer.ingest.connected.wait(), 10)
        url = writer.http_url + "/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200 and (await response.json())["ok"] is True
        flushers = [t for t in asyncio.all_tasks() if t.get_name().startswith("sink-")]
        assert len(flushers) == 1  # the InfluxDB sink's flusher, owned by the group

        async def component() -> None:
            await asyncio.sleep(0)
            raise RuntimeError("a bug")

        caplog.set_level(logging.CRITICAL, logger="meshmon.writer")
        writer.tasks.spawn(component(), "some-component")
        async with asyncio.timeout(10):
            await writer.tasks.failed.wait()
        assert any("some-component" in r.getMessage() for r in caplog.records
                   if r.levelno == logging.CRITICAL)
        async with asyncio.timeout(10):  # the group cancelled the rest: MQTT, the flusher
            while writer.ingest.connected.is_set() or not flushers[0].done():
                await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            body = await response.json()
            assert response.status == 503 and body["ok"] is False
            assert body["failure"] == "task some-component failed (RuntimeError)"
    finally:
        async with asyncio.timeout(30):
            await writer.stop()
