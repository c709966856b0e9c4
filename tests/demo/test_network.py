"""The shipped demo topology: loads, ids follow the wire contract, no addresses, connected."""

from __future__ import annotations

import gzip
import re
from importlib import resources

import pytest

from meshmon.demo.network import DATA_FILE, load_network
from meshmon.model.wire import NODE_ID_RE

MAC_PATTERNS = [
    re.compile(r"(?i)\b[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}\b"),  # 30:b5:c2:9e:db:76
    re.compile(r"(?i)(?<![0-9a-z])[0-9a-f]{12}(?![0-9a-z])"),  # 30b5c29edb76 (node_id)
]
IP_PATTERNS = [
    re.compile(r"\b(\d{1,3}\.){3}\d{1,3}\b"),
    re.compile(r"(?i)\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b"),  # fe80::1, 2a06:8782:...
]


def shipped_text() -> str:
    raw = resources.files("meshmon.demo").joinpath("data", DATA_FILE).read_bytes()
    return gzip.decompress(raw).decode("utf-8")


def test_full_network_loads_and_is_connected() -> None:
    net = load_network()
    assert len(net.nodes) == 833
    assert len(net.links) == 1395
    assert sum(n.location is not None for n in net.nodes) >= 250
    assert net.is_connected()
    assert {lk.type for lk in net.links} == {"wifi", "vpn", "other"}
    assert all(0.0 <= lk.source_tq <= 1.0 and 0.0 <= lk.target_tq <= 1.0 for lk in net.links)
    assert all(lk.source in net and lk.target in net for lk in net.links)


def test_gateways_are_only_what_the_snapshot_flags_the_vpn_servers() -> None:
    net = load_network()
    servers = [n for n in net.nodes if n.is_gateway]
    assert {n.hostname for n in servers} == {"vpn01", "vpn02", "vpn03", "vpn05", "vpn06"}
    # what the nodes announce: the five servers, not the 483 located uplink nodes
    assert [n.id for n in net.nodes if n.gateway] == [n.id for n in servers]
    server_ids = {n.id for n in servers}
    uplinks = [n for n in net.nodes if n.uplink]
    assert len(uplinks) == 565 and not any(n.gateway for n in uplinks)
    for node in uplinks:  # an uplink node has its own tunnel to a server
        assert any(
            lk.type == "vpn" and {lk.source, lk.target} & server_ids and node.id in
            (lk.source, lk.target) for lk in net.links
        )


def test_ids_match_the_wire_node_pattern_and_are_unique() -> None:
    net = load_network()
    ids = [n.id for n in net.nodes]
    assert len(set(ids)) == len(ids)
    assert all(re.match(NODE_ID_RE, i) for i in ids)


@pytest.mark.parametrize("pattern", MAC_PATTERNS + IP_PATTERNS, ids=lambda p: p.pattern[:30])
def test_no_mac_or_ip_address_in_the_shipped_file(pattern: re.Pattern[str]) -> None:
    hits = pattern.findall(shipped_text())
    assert not hits, f"address-like strings in {DATA_FILE}: {hits[:5]}"


def test_no_snapshot_address_fields_are_shipped() -> None:
    text = shipped_text()
    for key in ('"node_id"', '"mac"', '"addresses"', '"source_addr"', '"target_addr"',
                '"gateway_nexthop"'):
        assert key not in text


@pytest.mark.parametrize("size", [1, 5, 30, 60, 200, 832])
def test_subset_is_connected_and_sized(size: int) -> None:
    net = load_network(size)
    assert len(net.nodes) == size
    assert net.is_connected()
    assert any(n.gateway for n in net.nodes)  # something to be cut off from
    if size > 1:
        assert any(n.uplink for n in net.nodes)
    ids = {n.id for n in net.nodes}
    assert all(lk.source in ids and lk.target in ids for lk in net.links)


def test_small_subset_is_a_mesh_not_a_vpn_star() -> None:
    net = load_network(30)
    kinds = {lk.type for lk in net.links}
    assert "wifi" in kinds
    assert len(net.links) >= len(net.nodes) - 1
