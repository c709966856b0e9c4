"""A file with three days of history written by meshmon 0d25ead (schema version 4, before
the daily level) opened by a real collector of this version: the migration adds
history_1d from the hourly records, and the history API answers what 0d25ead answered
(`tests/data/db/make_history_fixture.py` made both), within the stored scale's rounding."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshmon.history.chunks import scale_for
from meshmon.history.resolution import rounding_for
from meshmon.service import Service
from meshmon.storage.migrations import SCHEMA_VERSION
from tests.integration.harness import collector_config

DB = Path(__file__).parent.parent / "data" / "db" / "meshmon-0d25ead-history.sqlite"
NODES = ("a", "b", "c")


def shifted_clock(made_at: float) -> Any:
    shift = time.time() - (made_at + 5.0)
    return lambda: time.time() - shift


def same_numbers(got: list[Any], want: list[Any], metric: str, stat: str, where: str) -> None:
    """Equal within the metric's stored scale (0.01 dBm, 1 bit/s): 0d25ead answered from
    the open bucket in memory (as reported), this file holds it rounded to the scale; and
    the days rebuilt by the upgrade hold their figures at the stored resolution
    (`resolution.py`: a mean of clients to 0.1)."""
    assert [v is None for v in got] == [v is None for v in want], where
    scale = scale_for(metric)
    rounding = rounding_for(metric, scale)
    for g, w in zip(got, want, strict=True):
        if w is not None:
            step = 1 / scale + rounding.error(stat, w, scale)
            assert g == pytest.approx(w, abs=step * 1.01), where


def same_answer(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert {k: got.get(k) for k in ("from", "to", "step", "source", "t")} == \
        {k: want.get(k) for k in ("from", "to", "step", "source", "t")}, where
    series = got["series"]
    if got["step"] == 0 and not any(w["metric"] == "availability" for w in want["series"]):
        # newer than the fixture: a raw answer carries availability (in 5-minute steps)
        series = [g for g in series if g["metric"] != "availability"]
    assert len(series) == len(want["series"]), where
    for g, w in zip(series, want["series"], strict=True):
        key = {k: v for k, v in w.items() if not isinstance(v, list)}
        assert {k: g.get(k) for k in key} == key, where
        assert g.get("t") == w.get("t"), (where, key)
        for stat in ("mean", "min", "max"):
            assert (stat in g) == (stat in w), (where, key, stat)
            if stat in w:
                same_numbers(g[stat], w[stat], w["metric"], stat, f"{where} {key} {stat}")


async def test_history_of_schema_4_answers_the_same_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "meshmon.sqlite"
    shutil.copyfile(DB, path)
    old = json.loads(DB.with_suffix(".json").read_text())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    service = Service(collector_config(tmp_path, None, storage={"path": str(path)}),
                      clock=shifted_clock(old["made_at"]))
    await service.start()
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            # every series' days before its newest are in history_1d
            assert conn.execute("SELECT count(DISTINCT series) FROM history_1d").fetchone()[0] \
                == conn.execute("SELECT count(*) FROM history_series").fetchone()[0]
        async with aiohttp.ClientSession(service.http_url) as http:
            for q, answers in old["answers"].items():
                params = json.loads(q)
                paths = {f"node {n}": f"/api/v1/nodes/{n}/history" for n in NODES}
                paths["link b c"] = "/api/v1/links/b/c/history"
                for name, url in paths.items():
                    async with http.get(url, params=params) as r:
                        assert r.status == 200, (url, params, await r.text())
                        same_answer(await r.json(), answers[name], f"{name} {params}")
    finally:
        await service.stop()
