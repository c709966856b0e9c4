"""Routing views parsed by netdiff, on netdiff's own captures, with the counts, costs and
diffs netdiff's tests assert (tests/data/routing/netdiff/expected_netdiff.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.routing.naming import NameBook

from tests.routing.helpers import DATA, KEY, poll, publish, source

EXPECTED = json.loads((DATA / "netdiff" / "expected_netdiff.json").read_text())
BOOK = NameBook(KEY.encode(), "node", {})


def hashed(address: str) -> str:
    """The id a node known only by `address` gets (same key as the sources under test)."""
    return BOOK.hashed(address)


@pytest.mark.parametrize(
    "file", ["olsr-2-links.json", "olsr-2-links-newformat.json", "olsr-2-links.txt"]
)
async def test_olsr1_jsoninfo_and_txtinfo(file: str) -> None:
    out = await poll("olsr1", f"netdiff/{file}")
    expected = EXPECTED[file]
    assert len(out.reports) == expected["nodes"] == 3
    assert all(out.online.values()) and set(out.online) == set(out.reports)
    links = out.links()
    assert len(links) == expected["links"]
    assert all(link.kind == "olsr" for _, link in links)
    costs = expected.get("links_cost") or EXPECTED["olsr-2-links.json"]["links_cost_first_two"]
    assert sorted(link.etx for _, link in links) == sorted(costs)  # type: ignore[type-var]
    # the lossy link is stated by 10.150.0.2 (lastHop) towards 10.150.0.3, with its LQ/NLQ
    lossy = out.reports[hashed("10.150.0.2")].links
    assert [(ln.peer, ln.lq, ln.nlq) for ln in lossy] == [(hashed("10.150.0.3"), 0.195, 0.184)]


async def test_olsr1_mid_aliases_name_nodes() -> None:
    # 172.16.192.2 is an alias (MID) of main address 10.150.0.2
    out = await poll("olsr1", "netdiff/olsr-2-links.json",
                     names={"172.16.192.2": "hill-5", "10.150.0.3": "tower"})  # fmt: skip
    assert set(out.reports) == {"hill-5", "tower", hashed("10.150.0.4")}
    assert [ln.peer for ln in out.reports["hill-5"].links] == ["tower"]


async def _two_polls(tmp_path: Path, kind: str, first: str, second: str, **options: object):
    live = tmp_path / Path(first).name
    shutil.copy(DATA / first, live)
    src = source(kind, file=live, **options)
    before = publish(await src.poll())
    shutil.copy(DATA / second, live)
    after = publish(await src.poll())
    return before, after


async def test_olsr1_diff_node_leaves_and_joins(tmp_path: Path) -> None:
    expected = EXPECTED["olsr-5-links.txt"]
    before, after = await _two_polls(
        tmp_path, "olsr1", "netdiff/olsr-3-links.txt", "netdiff/olsr-5-links.txt"
    )
    gone = {n for n, online in after.online.items() if not online}
    joined = set(after.reports) - set(before.reports)
    assert len(gone) == expected["removed_nodes"] and gone == {hashed("10.150.0.5")}
    assert len(joined) == expected["added_nodes"]
    added = after.pairs() - before.pairs()
    removed = before.pairs() - after.pairs()
    assert added == {frozenset(map(hashed, p)) for p in expected["added_link_pairs"]}
    assert removed == {frozenset(map(hashed, p)) for p in expected["removed_link_pairs"]}
    assert gone.isdisjoint(after.reports)  # an offline node gets no report


@pytest.mark.parametrize("file", ["batman.json", "batman-duplicated.json", "batman.txt"])
async def test_batman_vis(file: str) -> None:
    out = await poll("batman-adv", f"netdiff/{file}")
    # batman-duplicated.json: "same node and edge count as batman.json"
    expected = EXPECTED["batman.txt" if file == "batman.txt" else "batman.json"]
    assert len(out.reports) == expected["nodes"] == 5
    assert len(out.pairs()) == expected["links"]
    assert all(link.kind == "batman" for _, link in out.links())
    if file != "batman.txt":
        # batadv-vis prints 255/TQ: "1.000" is TQ 255, the one "1.016" is TQ 251
        assert sorted(link.tq for _, link in out.links()) == [251] + [255] * 7  # type: ignore[type-var]
        # vis knows each node's interfaces: they resolve agents' batman peer MACs
        main = out.info[hashed("90:f6:52:f2:8c:2c")]
        assert main.macs == ["90:f6:52:f2:8c:2c", "90:f6:52:f2:8c:2b", "90:f6:52:f2:8c:2d"]
        assert expected.get("node_90:f6:52:f2:8c:2c_has_clients_list", True)
        assert out.reports[hashed("90:f6:52:f2:8c:2c")].clients is not None


async def test_batman_diff(tmp_path: Path) -> None:
    expected = EXPECTED["batman-1+1.json"]
    before, after = await _two_polls(
        tmp_path, "batman-adv", "netdiff/batman.json", "netdiff/batman-1+1.json"
    )
    assert after.pairs() - before.pairs() == {frozenset(map(hashed, expected["added_pair"]))}
    assert before.pairs() - after.pairs() == {frozenset(map(hashed, expected["removed_pair"]))}
    assert {n for n, up in after.online.items() if not up} == {hashed("a0:f3:c1:96:94:06")}


async def test_bmx6_names_and_rates() -> None:
    out = await poll("bmx6", "netdiff/bmx6.json")
    expected = EXPECTED["bmx6.json"]
    assert len(out.reports) == expected["nodes"] and len(out.pairs()) == expected["links"]
    assert "P9SFAlmogavers237-56ac" in out.reports  # the daemon's own node names
    link = {ln.peer: ln for ln in out.reports["P9SFAlmogavers237-56ac"].links}
    assert (link["P9SFBilbao102-7df9"].lq, link["P9SFBilbao102-7df9"].nlq) == (0.97, 0.40)
    assert all(ln.kind == "bmx7" for _, ln in out.links())


async def test_netjson_labels_and_diff(tmp_path: Path) -> None:
    expected, diff = EXPECTED["netjson-2-links.json"], EXPECTED["netjson-3-links.json"]
    before, after = await _two_polls(
        tmp_path, "netjson", "netdiff/netjson-2-links.json", "netdiff/netjson-3-links.json"
    )
    assert len(before.reports) == expected["nodes"] and len(before.pairs()) == expected["links"]
    assert {"nodeA", "nodeB"} <= set(before.reports)  # NetJSON labels name nodes
    assert before.info["nodeA"].hostname == "router.3nnx"
    assert all(ln.kind == "olsr" and ln.etx is not None for _, ln in before.links())
    assert len(after.pairs() - before.pairs()) == diff["added_links"]
    assert len(set(after.reports) - set(before.reports)) == diff["added_nodes"]


async def test_netjson_ninux_roma() -> None:
    # Ninux Roma's OLSR mesh: 147 nodes / 191 links (counted in the file), ETX costs
    out = await poll("netjson", "ninux/netjson.json")
    assert len(out.reports) == 147 and len(out.links()) == 191
    assert all(ln.etx is not None and ln.etx >= 1 for _, ln in out.links())


@pytest.mark.parametrize(
    ("file", "duplicate_cn"),
    [("openvpn-2-links.txt", False), ("openvpn-2-links-undef.txt", False),
     ("openvpn-5-links-tap.txt", False), ("openvpn-bug.txt", True),
     ("openvpn-special-case.txt", True)],
)  # fmt: skip
async def test_openvpn_clients(file: str, duplicate_cn: bool) -> None:
    out = await poll("openvpn", f"netdiff/{file}", node="vpn-hub", duplicate_cn=duplicate_cn)
    expected = EXPECTED[file]
    assert len(out.reports) == expected["nodes"]
    assert len(out.links()) == expected["links"]
    assert all(node == "vpn-hub" and ln.kind == "vpn" for node, ln in out.links())
    if duplicate_cn:  # clients sharing a common name still get a node each
        assert len({ln.peer for _, ln in out.links()}) == expected["links"]


async def test_openvpn_tap_addresses_are_macs_for_resolution() -> None:
    out = await poll("openvpn", "netdiff/openvpn-5-links-tap.txt", node="vpn-hub")
    assert out.info["nodeA"].macs == ["46:8a:69:e7:46:24"]


@pytest.mark.parametrize(
    ("file", "peers"), [("wg-dump.txt", 5), ("wg-dump-allowed-ip-absent.txt", 1)]
)
async def test_wireguard_dump_judged_at_its_own_time(file: str, peers: int) -> None:
    expected = EXPECTED[file]
    out = await poll("wireguard", f"netdiff/{file}", node="vpn-hub")
    # netdiff's graph has one node per wg interface; here they are one host
    interfaces = expected["graph_nodes"] - expected["graph_edges"]
    assert len(out.reports) == expected["graph_nodes"] - interfaces + 1 == peers + 1
    assert len(out.reports["vpn-hub"].links) == expected["graph_edges"] == peers
    assert {ln.iface for ln in out.reports["vpn-hub"].links} <= {"wg0", "wg1"}


async def test_wireguard_names_by_allowed_ip() -> None:
    out = await poll("wireguard", "netdiff/wg-dump.txt", node="vpn-hub",
                     names={"10.254.0.2": "roof-7"})  # fmt: skip
    assert "roof-7" in {ln.peer for ln in out.reports["vpn-hub"].links}


async def test_wireguard_live_dump_without_recent_handshakes(tmp_path: Path) -> None:
    # a live `wg show` (command) is judged now: these handshakes are from 2022
    dump = DATA / "netdiff" / "wg-dump.txt"
    out = publish(await source("wireguard", command=f"cat {dump}", node="vpn-hub").poll())
    assert out.reports["vpn-hub"].links == [] and set(out.reports) == {"vpn-hub"}


async def test_netjson_network_collection(tmp_path: Path) -> None:
    # OLSRv2's netjsoninfo prints a NetworkCollection of NetworkGraphs
    graphs = [json.loads((DATA / f).read_text())
              for f in ("ninux/netjson.json", "netdiff/netjson-2-links.json")]  # fmt: skip
    path = tmp_path / "collection.json"
    path.write_text(json.dumps({"type": "NetworkCollection", "collection": [
        graphs[0], {"type": "NetworkCollection", "collection": [graphs[1]]},
        {"type": "NetworkRoutes", "routes": []}]}))  # fmt: skip
    out = publish(await source("netjson", file=path).poll())
    assert len(out.reports) == 147 + 3 and len(out.links()) == 191 + 2
    path.write_text(json.dumps({"type": "NetworkCollection", "collection": []}))
    with pytest.raises(SourceError, match="no NetJSON NetworkGraph in it"):
        await source("netjson", file=path).poll()


async def test_more_links_than_a_report_holds(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                              ) -> None:
    # a report holds at most 512 links (the contract): the rest is logged, not sent
    real = (DATA / "netdiff" / "openvpn-2-links.txt").read_text().splitlines()
    head, clients = real[:3], []
    routes = ["ROUTING TABLE", "Virtual Address,Common Name,Real Address,Last Ref"]
    for i in range(600):
        clients.append(f"client{i},87.18.{i // 250}.{i % 250}:49502,1,1,Thu Jun 18 04:23:03 2015")
        routes.append(f"192.168.{i // 250}.{i % 250},client{i},87.18.{i // 250}.{i % 250}:49502,"
                      "Thu Jun 18 08:12:09 2015")
    path = tmp_path / "status.log"
    path.write_text("\n".join(head + clients + routes + real[-3:]) + "\n")
    out = publish(await source("openvpn", file=path, node="vpn-hub").poll())
    assert len(out.reports) == 601 and len(out.reports["vpn-hub"].links) == 512
    assert "vpn-hub states 600 links; publishing the first 512" in caplog.text
