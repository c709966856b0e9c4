"""The hot path's report decoder accepts and rejects exactly what the pydantic models do,
with the same values: real captures, mutated real payloads and generated boundary values
go through both (`fastwire.decode` and the contract's `wire.decode`)."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from meshmon.model import fastwire, structgen, wire
from meshmon.model.wire import NODE_ID_RE, Rejected
from tests.fuzz import scaled
from tests.fuzz.payloads import BASES, PREFIX, Token, mutated_payloads, render

DATA = Path(__file__).resolve().parents[1] / "data"
TOPIC = f"{PREFIX}/v1/node/lr-test-1/report"
INT64_MAX = 2**63 - 1


def plain(value: Any) -> Any:
    """A decoded message as plain data, each scalar with its type (1 is not 1.0)."""
    if isinstance(value, msgspec.Struct):
        return {f: plain(getattr(value, f)) for f in value.__struct_fields__}
    if isinstance(value, BaseModel):
        return {f: plain(getattr(value, f)) for f in type(value).model_fields}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return (type(value).__name__, value)


def outcome(decode: Any, topic: str, payload: bytes) -> tuple[Any, ...]:
    try:
        message = decode(PREFIX, topic, payload)
    except Rejected as rej:
        return ("rejected", rej.reason, rej.detail)
    return ("accepted", plain(message))


def assert_same(topic: str, payload: bytes) -> tuple[Any, ...]:
    fast = outcome(fastwire.decode, topic, payload)
    reference = outcome(wire.decode, topic, payload)
    assert fast == reference, payload[:400]
    return fast


def test_the_generated_structs_are_the_models() -> None:
    assert structgen.main(["--check"]) == 0, "run: python -m meshmon.model.structgen"
    for model, struct in ((wire.Report, fastwire.Report), (wire.Link, fastwire.Link)):
        assert list(model.model_fields) == list(struct.__struct_fields__)


def agent_reports(canned: Path) -> list[bytes]:
    """Reports the real agent builds from the iw and batman captures (text and JSON
    batctl output), as it publishes them."""
    from meshmon_agent.agent import Agent
    from meshmon_agent.collect import Collector
    from meshmon_agent.config import from_dict
    from meshmon_agent.runner import CannedRunner

    from tests.agent.test_report_wire import make_canned_dir

    make_canned_dir(canned)
    payloads: list[bytes] = []
    published: list[dict[str, Any]] = []

    class Sink:
        def publish_info(self, info: dict[str, Any]) -> None:
            pass

        def publish_report(self, report: dict[str, Any]) -> None:
            published.append(report)

    cfg = from_dict({"node": "lr-test-1", "collect": {
        "wifi_interfaces": ["mesh-5000mhz"], "canned_dir": str(canned)}})
    agent = Agent(cfg, Collector(cfg.collect, CannedRunner(canned)), Sink(), clock=lambda: 1.7e9)
    agent.tick()
    agent.tick()
    payloads.extend(json.dumps(report).encode() for report in published)
    return payloads


def test_the_agents_reports_from_captures_take_the_fast_path(tmp_path: Path) -> None:
    payloads = agent_reports(tmp_path)
    assert len(payloads) == 2
    for payload in payloads:
        assert fastwire.decode_report_fast(payload) is not None
        result = assert_same(TOPIC, payload)
        assert result[0] == "accepted" and len(result[1]["links"]) == 7  # 3 wifi, 4 batman


def real_reports() -> list[bytes]:
    """The real agent's report (captures), the benchmark's and the docs' examples."""
    payloads = [(DATA / "wire" / "report-lr-test-1.json").read_bytes()]
    example = json.loads((DATA / "wire" / "report-lr-test-1.json").read_text())
    example["links"] = [
        {"peer_mac": "AA:BB:CC:00:11:22", "iface": "mesh0", "kind": "wifi", "signal_dbm": -61,
         "chains_dbm": [-63, -64.5], "tx_rate_mbps": 144, "tq": 255, "inactive_ms": 0},
        {"peer": "f81a67a5e9c1", "iface": "wlan0", "kind": "wifi"},  # a MAC id: to peer_mac
        {"peer": "10.0.0.7", "iface": "wlan0", "kind": "olsr"},  # an IP id: dropped
        {"peer": "hill-2", "iface": "bat0", "kind": "batman", "tq": 0, "lq": 1, "etx": 1.0},
    ]
    payloads.append(json.dumps(example).encode())
    return payloads


@pytest.mark.parametrize("payload", real_reports())
def test_real_reports_take_the_fast_path_with_the_models_values(payload: bytes) -> None:
    assert fastwire.decode_report_fast(payload) is not None  # no fallback for real data
    result = assert_same(TOPIC, payload)
    assert result[0] == "accepted"


@settings(max_examples=scaled(400), deadline=None)
@given(st.data())
def test_mutated_real_reports_get_the_same_verdict_and_values(data: st.DataObject) -> None:
    node = data.draw(st.one_of(st.just("lr-test-1"), st.from_regex(NODE_ID_RE, fullmatch=True)))
    payload = data.draw(mutated_payloads("report", "lr-test-1"))
    assert_same(f"{PREFIX}/v1/node/{node}/report", payload)


BOUNDARY_NUMBERS = [
    0, -0.0, 1, 1.0, -1, 0.5, -150, -150.0, -150.0000001, 40, 40.0, 40.0001, 100, 100.5,
    150, 150.1, 255, 256, 1, 1.0000001, 1_000_000, 1_000_000.5, 100_000, 2000, 86_400,
    86_400.001, INT64_MAX, INT64_MAX + 1, 2**64, -(2**63), 1e308, 5e-324, 64, 65, 360, 359.99,
]
LINK_FIELDS = list(wire.Link.model_fields)
REPORT_FIELDS = list(wire.Report.model_fields)
ODD_IDS = ["n2", "N-2.x_y", "a" * 64, "a" * 65, "node\n", "-x", "f81a67a5e9c1", "10.0.0.1",
           "02:00:00:00:00:01", "fe80::1", "", "nöde"]
MAC_TEXTS = ["02:00:00:00:00:01", "AA:BB:CC:DD:EE:FF", "aA:bB:cC:dD:eE:fF", "02:00:00:00:00:01\n",
             "02-00-00-00-00-01", "02:00:00:00:00", "gg:00:00:00:00:01"]


def values() -> st.SearchStrategy[Any]:
    """Boundary numbers of every field, numbers of the wrong kind, and other types."""
    scalar = st.one_of(
        st.sampled_from(BOUNDARY_NUMBERS), st.integers(-(2**65), 2**65),
        st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
        st.sampled_from(ODD_IDS + MAC_TEXTS + ["wifi", "batman", "WIFI", "1", "true"]),
        st.text(max_size=140), st.sampled_from([Token("1e999"), Token("-1e999"), Token("-0")]),
    )
    return st.one_of(scalar, st.lists(scalar, max_size=10))


@st.composite
def links(draw: st.DrawFn) -> dict[str, Any]:
    link: dict[str, Any] = {"iface": draw(st.sampled_from(["wlan0", "a" * 128, "a" * 129])),
                            "kind": draw(st.sampled_from(["wifi", "batman", "other", "x"]))}
    peer = draw(st.sampled_from(["peer", "peer_mac", "both", "none"]))
    if peer in ("peer", "both"):
        link["peer"] = draw(st.sampled_from(ODD_IDS))
    if peer in ("peer_mac", "both"):
        link["peer_mac"] = draw(st.sampled_from(MAC_TEXTS))
    for name in draw(st.lists(st.sampled_from(LINK_FIELDS), max_size=8)):
        link[name] = draw(values())
    if draw(st.integers(0, 5)) == 0:
        link[draw(st.text(max_size=12))] = draw(values())  # an unknown field
    return link


@st.composite
def generated_reports(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = json.loads(json.dumps(BASES["report"]))
    doc["links"] = draw(st.lists(links(), max_size=6))
    for name in draw(st.lists(st.sampled_from(REPORT_FIELDS), max_size=3)):
        doc[name] = draw(values())
    if draw(st.booleans()):
        doc["sys"] = {name: draw(values()) for name in draw(st.lists(st.sampled_from(
            ["uptime_s", "load", "mem_total_kb", "mem_avail_kb", "rootfs_used_pct"]),
            max_size=3))}
    return render(doc, ascii_only=draw(st.booleans())).encode("utf-8", "surrogatepass")


@settings(max_examples=scaled(400), deadline=None)
@given(generated_reports())
def test_generated_boundary_reports_get_the_same_verdict_and_values(payload: bytes) -> None:
    assert_same(TOPIC, payload)


@settings(max_examples=scaled(100), deadline=None)
@given(st.sampled_from(ODD_IDS), st.booleans())
def test_node_ids_of_every_shape_get_the_same_verdict(node: str, same_in_topic: bool) -> None:
    """MAC- and IP-like, too long, empty, non-ASCII node ids: in the payload, and in the
    topic (where MQTT allows it) or a different one there."""
    doc = dict(BASES["report"], node=node)
    topic_node = node if same_in_topic and node and "/" not in node else "lr-test-1"
    assert_same(f"{PREFIX}/v1/node/{topic_node}/report", json.dumps(doc).encode())


def test_oversize_reports_are_refused_by_both_and_the_limit_is_accepted() -> None:
    doc = dict(BASES["report"], links=[])
    base = json.dumps(doc).encode()
    room = wire.MAX_PAYLOAD_BYTES - len(base)
    exact = base[:-1] + b" " * room + b"}"  # valid JSON, exactly the limit
    assert len(exact) == wire.MAX_PAYLOAD_BYTES
    assert assert_same(TOPIC, exact)[0] == "accepted"
    over = base[:-1] + b" " * (room + 1) + b"}"
    assert assert_same(TOPIC, over)[:2] == ("rejected", "oversize")


@pytest.mark.parametrize("payload", [
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"v":2}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"ts":2}',
    b'{"v":1,"node":"lr-test-1","ts":1e999,"seq":1,"interval_s":30}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1.0,"interval_s":30}',
    b'{"v":1.0,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30}',
    b'{"v":true,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30}',
    b'{"v":1,"node":"lr-test-1","ts":"1","seq":"1","interval_s":"30"}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"ifaces":[{"name":"x","up":1}]}',
    b'{"v":1,"node":"lr-test-1\\n","ts":1,"seq":1,"interval_s":30}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"links":[{"peer":"a\\n",'
    b'"iface":"w","kind":"wifi"}]}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"links":[{"peer_mac":'
    b'"02:00:00:00:00:0A\\n","iface":"w","kind":"wifi"}]}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"links":[{"peer":"\\ud800",'
    b'"iface":"w","kind":"wifi"}]}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":9223372036854775808,"interval_s":30}',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"clients":null,"sys":null}',
    b'\xef\xbb\xbf{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30}',
    b' {"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30}\n',
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"sys":' + b"[" * 5000
    + b"]" * 5000 + b"}",
    b'{"v":1,"node":"lr-test-1","ts":1,"seq":1,"interval_s":30,"x":' + b'{"a":' * 5000
    + b"1" + b"}" * 5001,
])
def test_edge_payloads_get_the_same_verdict_and_values(payload: bytes) -> None:
    assert_same(TOPIC, payload)


def test_a_struct_saved_as_json_reads_back_the_same() -> None:
    payload = real_reports()[1]
    report = fastwire.decode_report(payload)
    assert fastwire.decode_report(fastwire.to_json(report)) == report
    model = wire.Report.model_validate_json(payload)
    assert plain(fastwire.to_struct(model)) == plain(report)


def _containers(value: Any) -> list[Any]:
    """Every Struct, list, tuple and dict inside a decoded report."""
    found = [value] if isinstance(value, msgspec.Struct | list | tuple | dict) else []
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found += _containers(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            found += _containers(item)
    elif isinstance(value, dict):
        for item in value.values():
            found += _containers(item)
    return found


@pytest.mark.parametrize("payload", real_reports())
def test_a_decoded_report_leaves_the_garbage_collector_at_its_first_collection(
        payload: bytes) -> None:
    """A node keeps its latest report until its next one: whatever the collector tracks in
    it is scanned by the young collections and kept with the survivors. The Structs are
    untracked (gc=False) and their sequences are tuples, untracked by the first collection
    (a list stays tracked for good)."""
    report = fastwire.decode_report(payload)
    kept = fastwire.without_links(report)
    gc.collect()
    inside = _containers(report) + _containers(kept)
    assert len(inside) >= 8  # the report, its sys, load, interfaces, radios, links, chains
    assert [type(c).__name__ for c in inside if gc.is_tracked(c)] == []


@pytest.mark.parametrize("depth", [150, 199, 200, 201, 202, 500, 993, 994, 2000])
@pytest.mark.parametrize("where", ["unknown field", "link field"])
def test_deep_nesting_gets_the_models_verdict(depth: int, where: str) -> None:
    """msgspec nests ~1,000 deep, pydantic ~200: between the two the fast decoder must not
    accept what the models refuse (found by hypothesis)."""
    doc = json.loads((DATA / "wire" / "report-lr-test-1.json").read_text())
    nest = "[" * depth + "]" * depth
    if where == "unknown field":
        text = json.dumps(doc)[:-1] + f', "zz": {nest}}}'
    else:
        doc["links"][0]["zz"] = "NEST"
        text = json.dumps(doc).replace('"NEST"', nest)
    verdict = assert_same(TOPIC, text.encode())
    if depth <= 150 or depth >= 500:  # between: where exactly the models stop, both agree
        assert verdict[0] == ("accepted" if depth <= 150 else "rejected")
