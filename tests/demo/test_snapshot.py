"""`meshmon demo --snapshot FILE`: another community's map file as the demo network."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from meshmon.config import Config
from meshmon.demo.runner import run_demo
from meshmon.demo.snapshot import SnapshotError, network_from_snapshot
from meshmon.model.addresses import looks_like_address
from tests.bridge.ff_helpers import DATA, load_snapshot, snapshot_file
from tests.servers import free_port
from tests.web.privacy import leaks


def test_ulm_snapshot_becomes_a_connected_demo_network_without_addresses() -> None:
    net = network_from_snapshot(snapshot_file("ulm"))
    source = load_snapshot("ulm")
    online = sum(n["is_online"] for n in source["nodes"])
    assert len(net.nodes) == online == 213  # Ulm's connected part: its online nodes
    assert len(net.links) == len(source["links"]) == 234
    assert net.is_connected() and net.community == "freifunk-ulm-meshviewer"
    assert all(not looks_like_address(n.id) for n in net.nodes)
    assert leaks([[n.id, n.hostname] for n in net.nodes]) == []
    assert {n.id for n in net.nodes if n.is_gateway} == {"vpn11", "vpn12", "vpn22"}
    assert sum(n.uplink for n in net.nodes) == 169
    assert {lk.type for lk in net.links} == {"vpn", "other"}


def test_hopglass_files_and_bad_files() -> None:
    net = network_from_snapshot(DATA / "hopglass/nodes.json")
    assert len(net.nodes) == 15 and net.is_connected()
    with pytest.raises(SnapshotError, match=r"neither a meshviewer\.json"):
        network_from_snapshot(DATA / "respondd/nodeinfo.json")


def test_cli_refuses_a_file_it_cannot_play(tmp_path: Path) -> None:
    bad = tmp_path / "nodes.json"
    bad.write_text(json.dumps({"nodes": []}))
    done = subprocess.run([sys.executable, "-m", "meshmon.cli", "demo", "--snapshot", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "graph.json" in done.stderr


async def test_demo_plays_the_cologne_bonn_snapshot(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = Config()
    cfg.storage.path = str(tmp_path / "demo.sqlite")
    port = free_port()
    path = snapshot_file("cologne-bonn-area")
    expected = {n.id for n in network_from_snapshot(path).subset(25).nodes}
    task = asyncio.create_task(run_demo(cfg, port, 25, 1.0, None, path))

    def nodes() -> list[dict[str, object]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nodes", timeout=2) as r:
            return json.loads(r.read())["nodes"]

    seen: list[dict[str, object]] = []
    try:
        for _ in range(150):
            await asyncio.sleep(0.1)
            try:
                seen = await asyncio.to_thread(nodes)
            except OSError:
                continue
            if len(seen) == 25 and all(n.get("online") for n in seen):
                break
        assert {n["id"] for n in seen} == expected
        assert "meshmon demo: 25 nodes" in capsys.readouterr().out
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
