"""A database written by an earlier release (c21697b, before schema versions; 0cf8116, the
release of stop 18, schema version 3) opened by a real collector
of this version: state, history, the open incident, alert log, silences and the pending
notifications are all there, and the notifications go out to a real webhook receiver.

The file's times are from when it was made, so the collector runs on a clock set to just
after that (`made_at` in the manifest): a real clock, shifted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshmon.history.samples import SeriesKey
from meshmon.service import Service
from meshmon.storage.migrations import SCHEMA_VERSION
from tests.integration.harness import collector_config, eventually
from tests.integration.scripted_mesh import WebhookReceiver
from tests.storage.schema import (
    RELEASES,
    as_moved,
    moved_samples,
    old_db_copy,
    old_db_manifest,
    user_version,
)

SINCE_MADE_S = 5.0
"""the collector starts this long after the file was made (its nodes count as online for
three 60 s intervals after their last report: long enough for the test)"""


def shifted_clock(made_at: float) -> Any:
    shift = time.time() - (made_at + SINCE_MADE_S)
    return lambda: time.time() - shift


@pytest.mark.parametrize("release", RELEASES)
async def test_an_old_release_database_opens_with_everything_in_it(tmp_path: Path,
                                                                  release: str) -> None:
    path = old_db_copy(tmp_path, release)
    old = old_db_manifest(release)
    hook = WebhookReceiver()
    await hook.start()
    config = collector_config(
        tmp_path, None, http={"admin_token": old["token"]},
        storage={"path": str(path)},
        notifiers=[{"name": "hook", "type": "webhook", "url": hook.url, "timeout_s": 2}],
    )  # fmt: skip
    service = Service(config, clock=shifted_clock(old["made_at"]))
    await service.start()
    auth = {"Authorization": f"Bearer {old['token']}"}
    try:
        assert user_version(path) == SCHEMA_VERSION
        store = service.store
        assert store is not None

        async with aiohttp.ClientSession(service.http_url, headers=auth) as http:
            async def get(url: str) -> Any:
                async with http.get(url) as r:
                    assert r.status == 200, (url, r.status, await r.text())
                    return await r.json()

            # current state, as the old collector answered it
            nodes = await get("/api/v1/nodes")
            assert [(n["id"], n["online"], n["hostname"], n["location"]) for n in nodes["nodes"]] \
                == [(n["id"], n["online"], n["hostname"], n["location"])
                    for n in old["nodes"]["nodes"]]
            assert await get("/api/v1/links") == old["links"]
            # the open outage (from the saved engine state), the log, the silences
            # (the view only grows: all the old one said, plus the new `why`)
            outages, before = (await get("/api/v1/outages"))["outages"], old["outages"]["outages"]
            assert [{key: o[key] for key in b} for o, b in zip(outages, before, strict=True)] \
                == before
            assert len(outages) == 1 and outages[0]["why"] == "cuts off 2 nodes from every gateway"
            alerts = await get("/api/v1/alerts")
            assert alerts["log"][: len(old["alerts"])] == old["alerts"]
            assert {a["id"] for a in alerts["open"]} >= {
                o["id"] for o in old["outages"]["outages"]}
            silences = (await get("/api/v1/silences?all=1"))["silences"]
            assert silences == old["silences"]["silences"]
            active = (await get("/api/v1/silences"))["silences"]
            assert [s["node"] for s in active] == ["hill-*"]

        # history, moved into the history tables, through the store's own reader and the
        # history API of each node
        moved = moved_samples(old)
        for key, samples in moved.items():
            assert as_moved(await store.samples(key), samples) == samples, key
        assert sum(len(s) for s in old["link_history"].values()) == 50
        async with aiohttp.ClientSession(service.http_url) as http:
            for node in old["node_history"]:
                async with http.get(f"/api/v1/nodes/{node}/history?step=raw&metrics=load1"
                                    f"&from={old['made_at'] - 600}") as r:
                    assert r.status == 200, await r.text()
                    answer = await r.json()
                (load,) = [s for s in answer["series"] if s["kind"] == "node"]
                assert load["mean"] == [s["load1"] for s in moved[SeriesKey("node", node)]]
        assert (await store.events(0))[: len(old["events"])] == old["events"]

        # the notifications the old collector could not deliver go out now, in order
        pending = old["pending_deliveries"]
        # (0cf8116 makes one notice fewer: flapping counts a node's own failures only)
        assert len(pending) == {"c21697b": 4, "0cf8116": 3}[release]

        async def all_delivered() -> bool:
            return len(hook.received) >= len(pending)

        await eventually(all_delivered, 15, "pending notifications delivered")
        assert [(a["id"], a["status"]) for a in hook.received[: len(pending)]] == [
            (p["alert_id"], p["status"]) for p in pending]
        await eventually(_none_pending(service), 5, "deliveries marked delivered")
    finally:
        await service.stop()
        await hook.stop()


def _none_pending(service: Service) -> Any:
    async def check() -> bool:
        return await service.alerting.store.pending_deliveries() == []
    return check
