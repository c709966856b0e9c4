"""`meshmon silence|silences|weak-points|outages` against a running collector."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from meshmon.admin_cli import format_weak_points, parse_duration
from tests.integration.harness import collector_config, eventually, started
from tests.integration.scripted_mesh import ScriptedMesh


def test_durations() -> None:
    assert parse_duration("2h") == 7200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90
    assert parse_duration("1d") == 86_400
    for bad in ("", "2x", "h", "2h garbage"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_weak_point_table_orders_by_nodes_cut_off() -> None:
    text = format_weak_points({
        "nodes": [{"node": "small", "cut_off": ["x"], "cut_off_count": 1},
                  {"node": "big", "cut_off": ["a", "b", "c"], "cut_off_count": 3}],
        "links": [{"a": "p", "b": "q", "cut_off": ["q", "x"], "cut_off_count": 2}],
        "without_gateway": [], "fading_links": [],
    })
    rows = [line.split()[1] for line in text.splitlines()[2:]]
    assert rows == ["big", "p", "small"]


async def _meshmon(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshmon.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_commands_against_a_running_collector(tmp_path: Path) -> None:
    config = collector_config(tmp_path, None)
    service = await started(config)
    edges = [("gw", "r1"), ("r1", "b"), ("b", "l1"), ("b", "l2"), ("l1", "l2")]
    mesh = ScriptedMesh(service.mqtt_address.port, edges, {"gw"})
    url = service.http_url
    cfg_file = tmp_path / "meshmon.toml"
    cfg_file.write_text(f'[storage]\npath = "{tmp_path / "meshmon.sqlite"}"\n')
    try:
        await mesh.start()

        async def linked() -> bool:
            return service.topology.graph.number_of_edges() == len(edges)
        await eventually(linked, 15, "topology")
        code, out, _ = await _meshmon("weak-points", "--url", url)
        assert code == 0
        row = next(line.split() for line in out.splitlines() if line.startswith("node  b "))
        assert row[:3] == ["node", "b", "2"]  # b cuts off l1 and l2
        code, out, _ = await _meshmon("outages", "--url", url)
        assert (code, out.strip()) == (0, "No outage.")
        # the token comes from the admin-token file next to the database (via -c)
        code, out, err = await _meshmon("silence", "b", "--for", "1h", "--reason", "roof",
                                        "-c", str(cfg_file), "--url", url)
        assert code == 0, err
        assert out.startswith("silence 1: alerts naming b held until")
        code, out, _ = await _meshmon("silences", "-c", str(cfg_file), "--url", url)
        assert "roof" in out and " b " in out
        code, out, _ = await _meshmon("silences", "--end", "1", "-c", str(cfg_file), "--url", url)
        assert (code, out.strip()) == (0, "silence 1 ended")
        code, out, _ = await _meshmon("silences", "-c", str(cfg_file), "--url", url)
        assert out.strip() == "No silence."
        # a wrong token is refused with the collector's message
        code, _, err = await _meshmon("silences", "--token", "nope", "--url", url)
        assert code == 1 and "401" in err
    finally:
        await mesh.stop()
        await service.stop()
