"""`meshmon-bridge -c FILE --once --print` with `[[routing]]` tables, as a reviewer imports
another network's routing data: every node and link, each message accepted by the
collector's own decoder, no MAC or IP address in any node id, ids stable across runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from meshmon.model import wire
from meshmon.model.addresses import looks_like_address
from tests.bridge.helpers import decode, run_print, write_config
from tests.routing.helpers import DATA
from tests.servers import free_port

TABLES = """
[[routing]]
kind = "olsr1"
file = "olsr-5-links.txt"
names_file = "hosts_olsr"

[[routing]]
kind = "netjson"
file = "ninux.json"

[[routing]]
kind = "batman-adv"
file = "batman.json"

[[routing]]
kind = "cnml"
file = "2525.cnml"

[[routing]]
kind = "wireguard"
file = "wg-dump.txt"
node = "vpn-hub"
"""


def _setup(tmp_path: Path) -> Path:
    for name in ("netdiff/olsr-5-links.txt", "netdiff/batman.json", "netdiff/wg-dump.txt",
                 "guifi_cnml/2525.cnml"):  # fmt: skip
        shutil.copy(DATA / name, tmp_path)
    shutil.copy(DATA / "ninux" / "netjson.json", tmp_path / "ninux.json")
    (tmp_path / "hosts_olsr").write_text("10.150.0.3\tolsr-hub\n")
    return write_config(tmp_path / "bridge.toml", "rt-bridge", free_port(), body=TABLES)


def _run(config: Path, state: Path) -> list[dict]:
    os.environ["STATE_DIRECTORY"] = str(state)  # where the bridge keeps its id key
    try:
        code, lines, stderr = run_print(config)
    finally:
        del os.environ["STATE_DIRECTORY"]
    assert code == 0, stderr
    return lines


def test_once_print_imports_every_node_and_link(tmp_path: Path) -> None:
    config = _setup(tmp_path)
    lines = _run(config, tmp_path / "state")
    messages = [decode(line) for line in lines]  # the collector's own decoder
    reports = [m for m in messages if isinstance(m, wire.Report)]
    infos = [m for m in messages if isinstance(m, wire.Info)]
    statuses = [m for m in messages if isinstance(m, wire.Status)]
    nodes = {m.node for m in messages if not isinstance(m, wire.BridgeStatus)}
    # olsr 5 + ninux 147 + batman 5 + wireguard 1 + 5 peers, plus the CNML devices
    cnml = {i.node for i in infos if i.location is not None}
    assert len(nodes) == 5 + 147 + 5 + 6 + len(cnml) and len(cnml) >= 2
    assert {r.node for r in reports} == {i.node for i in infos} == nodes
    assert all(s.online for s in statuses) and {s.node for s in statuses} == nodes
    links = [(r.node, ln) for r in reports for ln in r.links]
    cnml_links = [ln for node, ln in links if node in cnml]
    # 5 OLSR topology entries, 191 Ninux links, 8 batman-adv vis entries, 5 WireGuard peers
    assert len(links) - len(cnml_links) == 5 + 191 + 8 + 5 and cnml_links
    for node in nodes:
        assert not looks_like_address(node), node
    for _, link in links:
        assert link.peer in nodes and link.peer_mac is None
    assert all(i.source is not None and i.source.kind == "routing"
               and i.source.via == "rt-bridge" for i in infos)  # fmt: skip
    assert "olsr-hub" in nodes  # named by the hosts file
    # a second run (a restarted bridge) keeps every id: the key was kept in the state dir
    again = _run(config, tmp_path / "state")
    assert {decode(line).node for line in again[1:]} == nodes  # type: ignore[union-attr]
    assert list((tmp_path / "state").iterdir()) == [tmp_path / "state" / "rt-bridge.routing-id.key"]


def test_once_print_a_broken_source_fails_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bridge.toml", "rt-bridge", free_port(), body="""
[[routing]]
kind = "olsr1"
file = "missing.json"
id_key = "k"

[[routing]]
kind = "batman-adv"
file = "batman.json"
id_key = "k"
""")
    shutil.copy(DATA / "netdiff" / "batman.json", tmp_path)
    code, lines, stderr = run_print(config)
    assert code == 1  # one source failed …
    assert "routing olsr1" in stderr and "missing.json" in stderr
    # … the other still published its five nodes
    assert len({decode(x).node for x in lines[1:]}) == 5  # type: ignore[union-attr]


def test_config_errors_name_the_table(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bridge.toml", "rt-bridge", free_port(), body="""
[[routing]]
kind = "olsr1"
file = "a.json"

[[routing]]
kind = "wireguard"
file = "wg.txt"
names = { "10.0.0.1" = "10.0.0.1" }

[[routing]]
kind = "openvpn"
file = "status.log"

[[routing]]
kind = "babel"
url = "http://localhost:33123/"
""")
    code, lines, stderr = run_print(config)
    assert code == 2 and lines == []
    assert "routing[0]" not in stderr
    assert "routing[1].names: names['10.0.0.1']: '10.0.0.1' holds an address" in stderr
    assert "routing[2]: node: an OpenVPN status log does not name its server" in stderr
    assert "routing[3]: url: a babel url starts with unix: or tcp:" in stderr
