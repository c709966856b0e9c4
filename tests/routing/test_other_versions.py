"""Routing dumps in the other shapes daemons print: `batadv-vis -f json` (an object per
line, a real capture of Freifunk Nord's mesh) and olsrd 0.9's jsoninfo, which prints link
costs as decimals where netdiff's captures (olsrd 0.6–0.8) have integers × 1024."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from meshmon.model.addresses import looks_like_address
from tests.bridge.helpers import decode, print_tables
from tests.routing.helpers import DATA, KEY, poll, publish, source
from tests.routing.test_netdiff_kinds import hashed

VIS_LINES = DATA / "ffnord" / "batadv-vis-json-lines.txt"


def _vis_entries() -> list[dict[str, str]]:
    return [json.loads(line) for line in VIS_LINES.read_text().splitlines() if line.strip()]


async def test_batadv_vis_json_lines_every_originator_and_neighbour() -> None:
    entries = _vis_entries()
    out = await poll("batman-adv", "ffnord/batadv-vis-json-lines.txt")
    primary_of = {e["secondary"]: e["of"] for e in entries if "secondary" in e}

    def node(mac: str) -> str:
        return hashed(primary_of.get(mac, mac))

    # every MAC of the file belongs to one node: a primary with its secondaries, or a
    # router/neighbour interface vis lists no primary for (it stands for its node)
    macs = {e[k] for e in entries for k in ("primary", "router", "neighbor") if k in e}
    assert set(out.reports) == {node(m) for m in macs} and len(out.reports) == 20
    # each vis neighbour entry, from its router's node (45 entries, 45 node pairs)
    neighbour_lines = [e for e in entries if "neighbor" in e]
    pairs = Counter((node(e["router"]), node(e["neighbor"])) for e in neighbour_lines)
    assert Counter((n, ln.peer) for n, ln in out.links()) == pairs
    assert len(neighbour_lines) == len(pairs) == 45
    assert all(ln.kind == "batman" and ln.tq is not None for _, ln in out.links())
    # the label is 255/TQ: "1.015" → 251, "1.049" → 243
    tqs = {(n, ln.peer): ln.tq for n, ln in out.links()}
    assert tqs[(node("0e:18:84:d0:34:21"), node("f6:ec:38:eb:f1:f5"))] == 243
    assert tqs[(node("ae:c6:c8:62:84:03"), node("56:47:05:ab:00:2f"))] == 251
    # a node's secondary interfaces resolve agents' batman peers; they are never ids
    assert set(out.info[hashed("56:47:05:ab:00:2b")].macs) == {
        "56:47:05:ab:00:2b", "56:47:05:ab:00:2c", "56:47:05:ab:00:2d", "56:47:05:ab:00:2f",
        "56:47:05:ab:00:3a", "56:47:05:ab:00:40"}  # fmt: skip
    assert not any(looks_like_address(n) for n in out.reports)


def _as_olsrd_09(document: dict) -> dict:
    """The dump as olsrd 0.9's jsoninfo prints it: costs as the ETX itself, a decimal."""
    for entry in document["topology"]:
        entry["tcEdgeCost"] = entry["tcEdgeCost"] / 1024.0
    return document


async def test_olsrd_09_decimal_costs_give_the_same_etx(tmp_path: Path) -> None:
    old = json.loads((DATA / "netdiff" / "olsr-3-links.json").read_text())
    assert all(isinstance(t["tcEdgeCost"], int) for t in old["topology"])  # olsrd 0.6
    new = _as_olsrd_09(json.loads(json.dumps(old)))
    (tmp_path / "09.json").write_text(json.dumps(new))
    before = await poll("olsr1", "netdiff/olsr-3-links.json")
    after = publish(await source("olsr1", tmp_path / "09.json").poll())
    etx = {(n, ln.peer): ln.etx for n, ln in before.links()}
    assert {(n, ln.peer): ln.etx for n, ln in after.links()} == etx
    assert sorted(etx.values()) == sorted(t["tcEdgeCost"] / 1024 for t in old["topology"])
    assert min(etx.values()) >= 1  # type: ignore[type-var]

    # a broken link (olsrd's LINK_COST_BROKEN: 4194304 before 0.9, 4096.0 since) is none
    lossy = old["topology"][0]
    for doc, broken in ((old, 4194304), (new, 4096.0)):
        doc["topology"][0]["tcEdgeCost"] = broken
        (tmp_path / "broken.json").write_text(json.dumps(doc))
        out = publish(await source("olsr1", tmp_path / "broken.json").poll())
        gone = (hashed(lossy["lastHopIP"]), hashed(lossy["destinationIP"]))
        assert gone not in {(n, ln.peer) for n, ln in out.links()}
        assert len(out.links()) == len(before.links()) - 1


def test_once_print_reads_vis_json_lines(tmp_path: Path) -> None:
    lines = print_tables(tmp_path, "vis-bridge", f"""
[[routing]]
kind = "batman-adv"
file = "{VIS_LINES}"
id_key = "{KEY}"
""")
    messages = [decode(line) for line in lines[1:]]
    assert len({m.node for m in messages}) == 20  # type: ignore[union-attr]
    assert sum(len(m.links) for m in messages if hasattr(m, "links")) == 45
    for line in lines:
        assert not looks_like_address(line["topic"]), line["topic"]
