"""`meshmon silence|silences|weak-points|outages` against a running collector."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from meshmon.admin_cli import format_silences, format_weak_points, parse_duration
from tests.integration.harness import collector_config, eventually, started
from tests.integration.scripted_mesh import ScriptedMesh

ROOT = Path(__file__).resolve().parent.parent
CHAIN = [f"c{i}" for i in range(1, 21)]
"""a chain off the gateway: c1..c19 and its 20 links each cut off the rest; with the only
gateway, r1, b and their two links that makes 44 weak points, more than MAX_ROWS = 40"""


def test_durations() -> None:
    assert parse_duration("2h") == 7200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 5400  # a bare number is minutes, as on /admin
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


def test_tables_never_pass_control_characters_to_the_terminal() -> None:
    evil = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\nforged row\u202eevil"
    text = format_silences({"silences": [{
        "id": 1, "node": evil, "tag": "", "starts_at_iso": "a", "ends_at_iso": "b",
        "reason": "roof\r\nwork",
    }]})
    assert all(c.isprintable() for c in text.replace("\n", ""))
    assert len(text.splitlines()) == 2  # the header and one row: no forged line
    assert "]0;pwned [2J [31mred forged row evil" in text and "roof work" in text


async def _meshmon(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshmon.cli", *args, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_commands_against_a_running_collector(tmp_path: Path) -> None:
    config = collector_config(tmp_path, None)
    service = await started(config)
    edges = [("gw", "r1"), ("r1", "b"), ("b", "l1"), ("b", "l2"), ("l1", "l2")]
    edges += list(zip(["gw", *CHAIN], CHAIN, strict=False))
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
        assert out.splitlines()[-1] == "… 4 more, use --all"
        code, out_all, _ = await _meshmon("weak-points", "--all", "--url", url)
        rows = [line for line in out_all.splitlines() if line.startswith(("node ", "link "))]
        assert code == 0 and len(rows) == 44 and "more, use --all" not in out_all
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
        # a node id the collector never heard of is a typo until --force says otherwise
        code, out, err = await _meshmon("silence", "gw1", "--for", "2", "-c", str(cfg_file),
                                        "--url", url)
        assert code == 1 and out == ""
        assert err.startswith("meshmon silence: the collector knows no node 'gw1' "
                              "(did you mean gw?); give a glob such as 'gw1*' or --tag, "
                              "or --force")
        code, out, err = await _meshmon("silence", "new-roof", "--for", "2", "--force",
                                        "-c", str(cfg_file), "--url", url)
        assert code == 0, err
        assert out.startswith("silence 2: alerts naming new-roof held until")
        assert out.rstrip().endswith("(2m)")  # a bare number is minutes
        code, out, err = await _meshmon("silence", "zz-*", "--for", "1h", "-c", str(cfg_file),
                                        "--url", url)
        assert code == 0 and out.startswith("silence 3: alerts naming zz-*"), err
    finally:
        await mesh.stop()
        await service.stop()


async def test_commands_find_the_collector_and_token_from_the_config(tmp_path: Path) -> None:
    service = await started(collector_config(tmp_path, None))
    port = int(service.http_url.rsplit(":", 1)[1])
    url = service.http_url
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        # -c FILE: [http] host and port say where the collector is; its token file is found
        cfg_file = tmp_path / "collector.toml"
        cfg_file.write_text(f'[http]\nhost = "0.0.0.0"\nport = {port}\n'
                            f'[storage]\npath = "{tmp_path / "meshmon.sqlite"}"\n')
        code, out, err = await _meshmon("silences", "-c", str(cfg_file))
        assert (code, out.strip()) == (0, "No silence."), err
        # no -c: ./meshmon.toml is the config
        (elsewhere / "meshmon.toml").write_text(cfg_file.read_text())
        code, out, err = await _meshmon("outages", cwd=elsewhere)
        assert (code, out.strip()) == (0, "No outage."), err
        # port 0 in the config: the public_url is the way in
        (elsewhere / "meshmon.toml").write_text(f'[http]\nport = 0\npublic_url = "{url}/"\n')
        code, out, err = await _meshmon("outages", cwd=elsewhere)
        assert (code, out.strip()) == (0, "No outage."), err
        # nothing listening: the error says where the address came from
        (elsewhere / "meshmon.toml").write_text("[http]\nport = 9\n")
        code, _, err = await _meshmon("outages", cwd=elsewhere)
        assert code == 1
        assert "cannot reach the collector at http://127.0.0.1:9/api/v1/outages" in err
        assert "(address from [http] of meshmon.toml; give -c FILE or --url)" in err
        # a wrong token is rejected; no token at all is required
        code, _, err = await _meshmon("silences", "--token", "nope", "--url", url)
        assert code == 1
        assert err.startswith(f"meshmon silences: 401: token rejected by {url}/api/v1/silences")
        code, _, err = await _meshmon("silences", "--url", url, cwd=elsewhere)
        assert code == 1 and "no maintainer token: give --token" in err
        for headers, said in (({}, "maintainer token required"),
                              ({"Authorization": "Bearer nope"}, "maintainer token rejected")):
            req = urllib.request.Request(f"{url}/api/v1/silences", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                await asyncio.to_thread(urllib.request.urlopen, req, timeout=10)
            assert refused.value.code == 401
            assert json.loads(refused.value.read())["error"].startswith(said)
    finally:
        await service.stop()
