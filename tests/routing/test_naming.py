"""Node ids for nodes a daemon knows by address: names from config or the daemon, else a
keyed hash that never shows the address and stays the same across restarts."""

from __future__ import annotations

import ipaddress
import json
import stat
from pathlib import Path

import pytest
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.routing.naming import (
    NameBook,
    NamingError,
    as_node_id,
    load_or_create_key,
    read_hosts_file,
)
from pydantic import ValidationError

from meshmon.model.addresses import looks_like_address
from tests.routing.helpers import DATA, KEY, poll, publish, source

BOOK = NameBook(KEY.encode(), "node", {})


def test_hashed_ids_hide_the_address_and_need_the_key() -> None:
    book = NameBook(b"key-1", "node", {})
    other = NameBook(b"key-2", "node", {})
    ids = {book.node_id(str(ip)) for ip in ipaddress.ip_network("10.0.0.0/22")}
    assert len(ids) == 1024  # distinct
    assert all(not looks_like_address(i) and i.startswith("node-") for i in ids)
    # the same address and key give the same id in a new bridge run; another key does not
    assert NameBook(b"key-1", "node", {}).node_id("10.0.1.7") == book.node_id("10.0.1.7")
    assert other.node_id("10.0.1.7") != book.node_id("10.0.1.7")
    # spellings of one address are one node
    assert book.hashed("A0:F3:C1:96:94:06") == book.hashed("a0:f3:c1:96:94:06")
    assert book.hashed("10.0.0.1/32") == book.hashed("10.0.0.1")


def test_key_file_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "routing-id.key"
    key = load_or_create_key(path)
    assert len(key) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def test_key_file_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(NamingError, match=r"id_key_file .*: cannot (read|create) it"):
        load_or_create_key(blocker / "routing-id.key")


async def test_sources_of_one_bridge_share_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "routing-id.key"
    first = publish(await source("olsr1", "netdiff/olsr-2-links.json", id_key=None,
                                 id_key_file=key_file).poll())  # fmt: skip
    again = publish(await source("olsr1", "netdiff/olsr-2-links.txt", id_key=None,
                                 id_key_file=key_file).poll())  # fmt: skip
    assert set(first.reports) == set(again.reports)  # the same mesh as json and txtinfo


def test_daemon_names_become_node_ids_without_addresses() -> None:
    assert as_node_id("Hill 5 / roof") == "Hill-5-roof"
    assert as_node_id("router.3nnx") == "router.3nnx"
    assert as_node_id("10.0.0.1") is None
    assert as_node_id("fe80::1") is None  # not `fe80--1`
    assert as_node_id("node-a0:f3:c1:96:94:06") is None
    assert as_node_id("  --  ") is None
    assert len(as_node_id("x" * 200) or "") == 64


def test_same_name_twice_first_keeps_it() -> None:
    book = NameBook(b"k", "node", {})
    first = book.node_id("10.0.0.1", name="OpenWrt")
    second = book.node_id("10.0.0.2", name="OpenWrt")
    assert first == "OpenWrt" and second.startswith("OpenWrt-") and second != first
    assert book.node_id("10.0.0.1", name="OpenWrt") == "OpenWrt"  # sticky


def test_configured_name_wins_over_the_daemons(tmp_path: Path) -> None:
    book = NameBook(b"k", "node", {"10.0.0.9": "hill-5"})
    assert book.node_id("10.0.0.9", name="OpenWrt") == "hill-5"
    by_alias = NameBook(b"k", "node", {"10.0.0.9": "hill-5"})
    assert by_alias.node_id("10.0.0.3", aliases=["10.0.0.9"]) == "hill-5"


async def test_configured_name_wins_a_clash_with_a_daemon_label() -> None:
    # nodeB's NetJSON label clashes with the name the config gives 10.150.0.3 (nodeA)
    out = await poll("netjson", "netdiff/netjson-2-links.json", names={"10.150.0.3": "nodeB"})
    assert "nodeB" in out.reports and "nodeA" not in out.reports
    labelled_b = [n for n in out.reports if n.startswith("nodeB-")]
    assert len(labelled_b) == 1
    # 10.150.0.3 states the link to 10.150.0.2 (the node labelled nodeB)
    assert labelled_b[0] in {ln.peer for ln in out.reports["nodeB"].links}


def test_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts_olsr"
    hosts.write_text("# olsrd nameservice\n10.150.0.2\thill-5 hill-5.olsr\n\n"
                     "10.150.0.3 tower # mast\n")  # fmt: skip
    assert read_hosts_file(hosts) == {"10.150.0.2": "hill-5", "10.150.0.3": "tower"}
    hosts.write_text("10.150.0.2\n")
    with pytest.raises(NamingError, match="line 1: expected `ADDRESS NAME`"):
        read_hosts_file(hosts)
    with pytest.raises(NamingError, match=r"names_file .*missing"):
        read_hosts_file(tmp_path / "missing")


async def test_names_file_names_olsr_nodes(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts_olsr"
    hosts.write_text("10.150.0.2 hill-5\n10.150.0.3 tower\n10.150.0.4 barn\n")
    out = await poll("olsr1", "netdiff/olsr-2-links.txt", names_file=hosts)
    assert set(out.reports) == {"hill-5", "tower", "barn"}


async def test_names_file_read_again_when_it_changes(tmp_path: Path) -> None:
    # olsrd's nameservice rewrites its hosts file as nodes come and go
    hosts = tmp_path / "hosts_olsr"
    hosts.write_text("10.150.0.2 hill-5\n")
    src = source("olsr1", "netdiff/olsr-2-links.txt", names_file=hosts)
    first = publish(await src.poll())
    hosts.write_text("10.150.0.2 hill-5\n10.150.0.4 barn\n")
    second = publish(await src.poll())
    assert "hill-5" in first.reports and "barn" not in first.reports
    assert {"hill-5", "barn"} <= set(second.reports)
    hosts.unlink()
    with pytest.raises(SourceError, match=r"names_file .*hosts_olsr"):
        await src.poll()


async def test_default_key_kept_in_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    ids = []
    for _ in range(2):  # two bridge runs
        out = publish(await source("olsr1", "netdiff/olsr-2-links.json", id_key=None).poll())
        ids.append(set(out.reports))
    key_file = tmp_path / "state" / "test-bridge.routing-id.key"
    assert key_file.exists() and ids[0] == ids[1]
    assert ids[0] != set((await poll("olsr1", "netdiff/olsr-2-links.json")).reports)


async def test_daemon_label_that_is_an_address_is_not_used(tmp_path: Path) -> None:
    graph = json.loads((DATA / "netdiff" / "netjson-2-links.json").read_text())
    graph["nodes"][0]["label"] = "192.168.1.3"
    graph["nodes"][0]["properties"]["hostname"] = "192.168.1.3"
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph))
    out = publish(await source("netjson", file=path).poll())
    assert "192.168.1.3" not in out.reports and len(out.reports) == 3
    assert all(info.hostname != "192.168.1.3" for info in out.info.values())


async def test_exclude_leaves_nodes_that_speak_for_themselves() -> None:
    out = await poll("olsr1", "netdiff/olsr-2-links.json",
                     names={"10.150.0.2": "hill-5"}, exclude=["hill-5", "10.150.0.4"])  # fmt: skip
    tower = BOOK.hashed("10.150.0.3")
    assert set(out.reports) == {tower} and set(out.online) == {tower}
    # a link from a published node to an excluded one is still published
    assert [ln.peer for ln in out.reports[tower].links] == [BOOK.hashed("10.150.0.4")]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({}, "exactly one of url, file, command"),
        ({"file": "a", "command": "b"}, "exactly one of url, file, command"),
        ({"url": "ftp://x/"}, "url: a olsr1 url starts with http: or https:"),
        ({"file": "a", "names": {"10.0.0.1": "10.0.0.1"}}, "holds an address"),
        ({"file": "a", "names": {"10.0.0.1": "bad name"}}, "is not a node id"),
        ({"file": "a", "nope": 1}, "Extra inputs are not permitted"),
        ({"file": "a", "node": "hill-5"}, "use `names` to name them"),
    ],
)
def test_config_errors(options: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        source("olsr1", **options)  # type: ignore[arg-type]


def test_openvpn_needs_a_node_and_babel_a_socket_url() -> None:
    with pytest.raises(ValidationError, match="does not name its server"):
        source("openvpn", "netdiff/openvpn-2-links.txt")
    with pytest.raises(ValidationError, match="unix: or tcp:"):
        source("babel", url="http://localhost/")


async def test_two_daemon_ids_named_as_one_node_are_one_report() -> None:
    # the config says 10.150.0.2 and 10.150.0.4 are the same router (two OLSR main IPs)
    out = await poll("olsr1", "netdiff/olsr-2-links.json",
                     names={"10.150.0.2": "hill-5", "10.150.0.4": "hill-5"})  # fmt: skip
    assert len(out.reports) == 2
    tower = BOOK.hashed("10.150.0.3")
    assert [ln.peer for ln in out.reports["hill-5"].links] == [tower]
    assert [ln.peer for ln in out.reports[tower].links] == ["hill-5"]
