"""Shared by the Freifunk source tests: the real snapshots and captures in tests/data, and
what the bridge would publish for some updates, checked against the collector's models."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from meshmon_bridge.messages import MessageBuilder
from meshmon_bridge.source import BridgeContext, NodeUpdate
from meshmon_bridge.sources.freifunk.snapshot import parse_time

from meshmon.model import wire
from meshmon.model.addresses import looks_like_address
from tests.bridge.helpers import PREFIX, decode, write_config

DATA = Path(__file__).parents[1] / "data" / "freifunk"
ID_KEY = "ff-test-key"
"""tests give their tables this id key: the default, a key file in the bridge's state
folder, would be made in the home folder"""
COMMUNITIES = ("altdorf", "bielefeld", "bremen", "cologne-bonn-area", "leipzig", "ulm")
"""the six meshviewer snapshots of 2020 (tests/data/README.md)"""


def context(base_dir: Path) -> BridgeContext:
    """What the bridge hands a source factory: its id and the config file's folder."""
    return BridgeContext("ff-test", base_dir)


def snapshot_file(community: str) -> Path:
    """The gzipped meshviewer.json of one community."""
    return DATA / f"freifunk-{community}-meshviewer.json.gz"


def load_snapshot(community: str) -> dict[str, Any]:
    """One community's meshviewer.json, decoded."""
    return json.loads(gzip.decompress(snapshot_file(community).read_bytes()))


def published(kind: str, updates: list[NodeUpdate], interval_s: float = 60,
              bridge: str = "ff-test") -> list[wire.Message]:
    """The messages the bridge makes of `updates`, each validated as the collector does."""
    builder = MessageBuilder(bridge, PREFIX)
    out: list[wire.Message] = []
    for update in updates:
        for message in builder.build(kind, update, interval_s, time.time()):
            decoded = decode({"topic": message.topic, "payload": message.payload})
            assert not isinstance(decoded, wire.BridgeStatus)
            out.append(decoded)
    assert builder.dropped.total() == 0, builder.dropped
    return out


def by_node(messages: list[wire.Message]) -> dict[str, dict[str, Any]]:
    """node id → {"info": Info, "status": Status, "report": Report} as published."""
    out: dict[str, dict[str, Any]] = {}
    for m in messages:
        name = {wire.Info: "info", wire.Status: "status", wire.Report: "report"}[type(m)]
        out.setdefault(m.node, {})[name] = m
    return out


def assert_public_ids(node_ids: list[str]) -> None:
    """Unique, valid node ids without any MAC or IP address in them."""
    assert len(set(node_ids)) == len(node_ids), "node ids are not unique"
    for node_id in node_ids:
        assert not looks_like_address(node_id), node_id
        assert len(node_id) <= 64 and node_id[0].isalnum(), node_id


ODD_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=6)
"""any JSON value, for property tests that put odd values where others are expected"""


def write_atomically(path: Path, doc: dict[str, Any]) -> None:
    """Replace a map file at once (a bridge polling it never reads half of it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def next_snapshot(snap: dict[str, Any], offline: set[str]) -> dict[str, Any]:
    """The map two minutes after `snap`: the nodes `offline` (snapshot node ids) are shown
    offline, every other node was seen at its new timestamp."""
    later = json.loads(json.dumps(snap))
    newest = max(parse_time(n["lastseen"]) for n in snap["nodes"]) + 120
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(newest))
    later["timestamp"] = stamp
    for n in later["nodes"]:
        if n["node_id"] in offline:
            n["is_online"] = False
        else:
            n["lastseen"] = stamp
    return later


def meshviewer_bridge_config(path: Path, bridge: str, port: int, map_file: Path,
                             interval_s: float) -> Path:
    """A bridge config that imports `map_file` every `interval_s`, on 127.0.0.1:`port`."""
    return write_config(path, bridge, port, body=f"""
[[meshviewer]]
url = "{map_file}"
interval_s = {interval_s}
id_key = "{ID_KEY}"
""")
