"""Public node ids for Freifunk nodes: no MAC or IP, unique, stable (docs/freifunk.md)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.freifunk.mapfiles import MeshviewerSource, MeshviewerTable
from meshmon_bridge.sources.freifunk.node_ids import Candidate, PublicIds, is_public_id, slug

from tests.bridge.ff_helpers import assert_public_ids, context, load_snapshot, snapshot_file


def test_slug_removes_addresses_and_transliterates() -> None:
    assert slug("Wertheimer-8-CPE510-W") == ("wertheimer-8-cpe510-w", False)
    assert slug("Hünenburg Süd") == ("huenenburg-sued", False)
    assert slug("ffhb-f81a67a601ea") == ("ffhb", True)  # Gluon's default name: prefix-MAC
    assert slug("f8:1a:67:a6:01:ea roof") == ("roof", True)
    assert slug("gw 10.0.0.1") == ("gw", True)
    assert slug("fe80::fa1a:67ff:fea6:1ea") == ("", True)
    assert slug("239.224") == ("239.224", False)  # Leipzig's name: not an address
    assert slug("   ") == ("", False)
    assert slug("ca fe ba be de ad") == ("", True)  # slugging would make it a MAC
    got = PublicIds(prefix="ab-").assign([Candidate("aa0000000001", "cd ef 01 23 45")])
    assert got["aa0000000001"].startswith("ab-node-")  # prefix and name would meet as a MAC


def test_unnamed_and_default_named_nodes_get_distinct_tagged_ids() -> None:
    ids = PublicIds()
    got = ids.assign([Candidate("f81a67a601ea", "ffhb-f81a67a601ea"),
                      Candidate("f81a67a601eb", "ffhb-f81a67a601eb"),
                      Candidate("c46e1f0e1050", None)])
    assert got["f81a67a601ea"].startswith("ffhb-") and got["f81a67a601eb"].startswith("ffhb-")
    assert got["c46e1f0e1050"].startswith("node-")
    assert_public_ids(list(got.values()))
    assert "f81a67a601ea" not in "".join(got.values())


def test_collisions_go_by_first_seen_and_do_not_depend_on_order() -> None:
    cands = [Candidate("aa0000000001", "Freifunk", first_seen=300.0),
             Candidate("aa0000000002", "Freifunk", first_seen=100.0),
             Candidate("aa0000000003", "freifunk ", first_seen=200.0)]
    first = PublicIds().assign(cands)
    assert first["aa0000000002"] == "freifunk"
    assert first["aa0000000001"] != first["aa0000000003"]
    assert all(first[k].startswith("freifunk-") for k in ("aa0000000001", "aa0000000003"))
    shuffled = cands[:]
    random.Random(7).shuffle(shuffled)
    assert PublicIds().assign(shuffled) == first


def test_an_id_stays_with_its_node_across_renames_and_with_a_state_file_restarts(
        tmp_path: Path) -> None:
    state = tmp_path / "ids.json"
    ids = PublicIds(state_file=state)
    assert ids.assign([Candidate("aa0000000001", "Rathaus")]) == {"aa0000000001": "rathaus"}
    # renamed: the id stays; a newcomer that takes the old name gets a tagged id
    got = ids.assign([Candidate("aa0000000001", "Kirche"), Candidate("aa0000000002", "Rathaus")])
    assert got["aa0000000001"] == "rathaus" and got["aa0000000002"].startswith("rathaus-")
    restarted = PublicIds(state_file=state)
    assert restarted.assign([Candidate("aa0000000002", "Rathaus"),
                             Candidate("aa0000000001", "Kirche")]) == got
    state.write_text("{not json")
    fresh = PublicIds(state_file=state).assign([Candidate("aa0000000009", "Kirche")])
    assert fresh == {"aa0000000009": "kirche"}


def test_ids_that_are_already_public_are_kept_and_prefix_and_key_apply() -> None:
    got = PublicIds(prefix="ffulm-").assign([Candidate("vpn11", "vpn11"),
                                             Candidate("688de40e1ec6", "map11")])
    assert got == {"vpn11": "ffulm-vpn11", "688de40e1ec6": "ffulm-map11"}
    tags = {PublicIds(key=k).assign([Candidate("f81a67a601ea", "")])["f81a67a601ea"]
            for k in (b"", b"one", b"two")}
    assert len(tags) == 3


def test_a_whole_community_gets_unique_public_ids_in_a_stable_order() -> None:
    snap = load_snapshot("altdorf")  # 11 nodes called "Freifunk", 3 "HANDYKLINIK"
    cands = [Candidate(n["node_id"], n["hostname"]) for n in snap["nodes"]]
    first = PublicIds().assign(cands)
    assert_public_ids(list(first.values()))
    assert PublicIds().assign(reversed(cands)) == first


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[0-9a-f]{12}", fullmatch=True),
                          st.one_of(st.none(), st.text(max_size=80))), max_size=12))
def test_any_hostname_gives_a_public_id(nodes: list[tuple[str, str | None]]) -> None:
    got = PublicIds().assign(Candidate(k, h) for k, h in nodes)
    assert_public_ids(list(got.values()))
    assert all(is_public_id(v) for v in got.values())


def test_without_a_key_the_bridge_keeps_one_and_a_missing_one_fails_the_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    path = snapshot_file("ulm")

    def poll(**keys: str) -> dict[str, str]:
        source = MeshviewerSource(MeshviewerTable(url=str(path), **keys),
                                  context(path.parent), [str(path)])
        return {u.node: u.info["hostname"] for u in asyncio.run(source.poll()) if u.info}

    first = poll()
    key_file = tmp_path / "state" / "ff-test.routing-id.key"
    assert key_file.stat().st_mode & 0o777 == 0o600  # made once, the bridge's own
    assert poll() == first  # the same key on every start: the same tags
    assert poll(id_key="other") != first  # tags (of Ulm's MAC-named nodes) follow the key
    with pytest.raises(SourceError, match=r"cannot (read|create) it"):
        poll(id_key_file=str(tmp_path / "state" / "ff-test.routing-id.key" / "nope"))
