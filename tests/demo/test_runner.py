"""`run_demo`: embedded broker + collector + a small simulated network, end to end."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from meshmon.config import Config
from meshmon.demo.network import load_network
from meshmon.demo.runner import demo_config, installer_example, run_demo
from tests.servers import free_port


def test_demo_config_picks_a_free_embedded_port_unless_set() -> None:
    cfg = demo_config(Config(), 8123)
    assert cfg.mqtt.embedded.port == 0 and cfg.http.port == 8123
    user = Config.model_validate({"mqtt": {"embedded": {"port": 2883}}})
    assert demo_config(user, 1).mqtt.embedded.port == 2883
    ext = Config.model_validate({"mqtt": {"broker": "external", "port": 1884}})
    assert demo_config(ext, 1).mqtt.port == 1884


async def test_run_demo_fills_the_collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    cfg = Config()
    cfg.storage.path = str(tmp_path / "demo.sqlite")
    port = free_port()
    task = asyncio.create_task(run_demo(cfg, port, 20, 1.0, None))

    def nodes() -> list[dict[str, object]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nodes", timeout=2) as r:
            body = json.loads(r.read())
        return body if isinstance(body, list) else body["nodes"]

    seen: list[dict[str, object]] = []
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            try:
                seen = await asyncio.to_thread(nodes)
            except OSError:
                continue
            if len(seen) == 20 and all(n.get("online") for n in seen):
                break
        assert len(seen) == 20
        out = capsys.readouterr().out
        assert f"meshmon demo: 20 nodes, open http://127.0.0.1:{port}/" in out
        # the installer example is a node on the map with radio links, not the first id
        # (a VPN server or a cellar router with only its tunnel)
        net = load_network(20)
        example = installer_example(net)
        assert f"/install/{example.id}" in out and example.id != net.nodes[0].id
        assert example.location is not None
        ends = [(lk.source, lk.target) for lk in net.links if lk.type == "wifi"]
        assert sum(example.id in pair for pair in ends) >= 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_history_days_back_fill_every_range(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`meshmon demo --history-days 3`: each node's page has data over the days before."""
    cfg = Config()
    cfg.storage.path = str(tmp_path / "demo.sqlite")
    port = free_port()
    task = asyncio.create_task(run_demo(cfg, port, 20, 1.0, None, history_days=3))
    node = installer_example(load_network(20)).id

    def history(range_: str) -> dict[str, Any]:
        url = (f"http://127.0.0.1:{port}/api/v1/nodes/{node}/history?range={range_}"
               "&metrics=load1,availability,signal_dbm&stats=mean")
        with urllib.request.urlopen(url, timeout=5) as r:
            doc: dict[str, Any] = json.loads(r.read())
        return doc

    try:
        for _ in range(600):
            await asyncio.sleep(0.1)
            if "history back-filled" in capsys.readouterr().out:
                break
        else:
            raise AssertionError("the back-fill did not finish in 60 s")
        counts = {}
        for range_ in ("24h", "7d", "30d", "1y"):
            doc = await asyncio.to_thread(history, range_)
            load = next(s for s in doc["series"] if s["metric"] == "load1")
            counts[range_] = sum(v is not None for v in load["mean"])
            signal = [s for s in doc["series"] if s["metric"] == "signal_dbm"]
            assert len(signal) >= 4, range_  # its radio links, both ends
            assert all(any(v is not None for v in s["mean"]) for s in signal), range_
        # a point every 5 minutes over the last day (less the node's downtimes), then
        # hourly: three days of hours, and three or four days
        assert counts["24h"] > 200 and 60 <= counts["7d"] <= 73 and 3 <= counts["1y"] <= 4, \
            counts
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
