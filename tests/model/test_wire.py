"""Wire contract v1: decoding, the rejection reasons, and the generated schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshmon.model.schema import contract_schema
from meshmon.model.wire import (
    MAX_PAYLOAD_BYTES,
    BridgeStatus,
    Info,
    Rejected,
    Report,
    Status,
    decode,
)

ROOT = Path(__file__).resolve().parents[2]
P = "meshmon"


def report(**over: object) -> dict:  # type: ignore[type-arg]
    base: dict = {  # type: ignore[type-arg]
        "v": 1, "node": "n1", "ts": 1_700_000_000.5, "seq": 3, "interval_s": 30,
        "links": [{"peer_mac": "AA:BB:CC:00:11:22", "iface": "mesh0", "kind": "wifi",
                   "signal_dbm": -61}],
    }
    base.update(over)
    return base


def enc(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_valid_messages_decode_to_their_models() -> None:
    r = decode(P, "meshmon/v1/node/n1/report", enc(report()))
    assert isinstance(r, Report)
    assert r.links[0].peer_mac == "aa:bb:cc:00:11:22"  # normalised
    assert r.links[0].tq is None  # absent stays absent
    s = decode(P, "meshmon/v1/node/n1/status", enc({"v": 1, "node": "n1", "online": False}))
    assert isinstance(s, Status) and s.online is False
    i = decode(P, "meshmon/v1/node/n1/info", enc({"v": 1, "node": "n1", "gateway": True,
                                                  "macs": ["02:00:00:00:00:01"]}))
    assert isinstance(i, Info) and i.gateway and i.public
    b = decode(P, "meshmon/v1/bridge/bridge-1/status",
               enc({"v": 1, "bridge": "bridge-1", "online": False}))
    assert isinstance(b, BridgeStatus) and b.bridge == "bridge-1" and not b.online


def test_unknown_fields_are_ignored_not_fatal() -> None:
    msg = report(firmware_extra={"x": 1}, links=[{"peer": "n2", "iface": "bat0", "kind": "batman",
                                                  "tq": 200, "vendor_metric": 5}])
    r = decode(P, "meshmon/v1/node/n1/report", enc(msg))
    assert isinstance(r, Report) and r.links[0].tq == 200


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("meshmon/v1/node/n1/report", b"{not json", "json"),
        ("meshmon/v1/node/n1/report", b"[1,2]", "schema"),
        ("meshmon/v1/node/n1/report", enc(report(ts="yesterday")), "schema"),
        ("meshmon/v1/node/n1/report", enc(report(seq=-1)), "schema"),
        ("meshmon/v1/node/n1/report",
         enc(report(links=[{"peer": "n2", "iface": "w", "kind": "wifi", "signal_dbm": 90}])),
         "schema"),
        ("meshmon/v1/node/n1/report",
         enc(report(links=[{"peer": "n2", "iface": "w", "kind": "batman", "tq": 333}])), "schema"),
        ("meshmon/v1/node/n1/report",
         enc(report(links=[{"iface": "w", "kind": "wifi"}])), "schema"),
        ("meshmon/v1/node/n1/report",
         enc(report(links=[{"peer": "n2", "iface": "w", "kind": "carrier-pigeon"}])), "schema"),
        ("meshmon/v1/node/n1/report", enc(report(node="n2")), "node_mismatch"),
        ("meshmon/v1/node/n1/report", enc(report(v=2)), "version"),
        ("meshmon/v1/node/n1/report", enc({k: v for k, v in report().items() if k != "v"}),
         "version"),
        ("meshmon/v1/node/n1/report", b" " * (MAX_PAYLOAD_BYTES + 1), "oversize"),
        ("meshmon/v1/node/bad node/report", enc(report()), "topic"),
        ("meshmon/v1/node/n1/telemetry", enc(report()), "topic"),
        ("other/v1/node/n1/report", enc(report()), "topic"),
        # a bridge publishes only its status there; its id follows the node id rules
        ("meshmon/v1/bridge/b1/report", enc(report(node="b1")), "topic"),
        ("meshmon/v1/bridge/b1/status/x", enc({"v": 1, "bridge": "b1", "online": True}),
         "topic"),
        ("meshmon/v1/bridge/+/status", enc({"v": 1, "bridge": "+", "online": True}), "topic"),
        ("meshmon/v1/bridge/10.0.0.9/status",
         enc({"v": 1, "bridge": "10.0.0.9", "online": True}), "node_id"),
        ("meshmon/v1/bridge/b1/status", enc({"v": 1, "bridge": "b2", "online": True}),
         "node_mismatch"),
        ("meshmon/v1/bridge/b1/status", enc({"v": 1, "node": "b1", "online": True}), "schema"),
        ("meshmon/v1/bridge/b1/status", enc({"v": 1, "bridge": "b1", "online": [1]}),
         "schema"),
        ("meshmon/v1/bridge/b1/status", enc({"v": 2, "bridge": "b1", "online": True}),
         "version"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(topic: str, payload: bytes,
                                                       reason: str) -> None:
    with pytest.raises(Rejected) as info:
        decode(P, topic, payload)
    assert info.value.reason == reason


def test_committed_json_schema_is_generated_from_the_models() -> None:
    committed = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
    assert committed == contract_schema(), (
        "run: python -m meshmon.model.schema > docs/protocol.schema.json"
    )
    assert {"Status", "Info", "Report", "Link", "Command"} <= set(committed["$defs"])


def test_node_ids_that_hold_an_address_are_rejected_and_peer_ids_made_safe() -> None:
    for node in ("f81a67a5e9c1", "10.0.0.1", "node-192.168.1.20", "02-aa-bb-cc-dd-ee"):
        with pytest.raises(Rejected) as info:
            decode("meshmon", f"meshmon/v1/node/{node}/status",
                   json.dumps({"v": 1, "node": node, "online": True}).encode())
        assert info.value.reason == "node_id"
    report = decode("meshmon", "meshmon/v1/node/roof-1/report", json.dumps({
        "v": 1, "node": "roof-1", "ts": 1, "seq": 1, "interval_s": 30, "links": [
            {"peer": "f81a67a5e9c1", "iface": "wlan0", "kind": "wifi"},
            {"peer": "10.0.0.7", "iface": "wlan0", "kind": "olsr"},
            {"peer": "hill-2", "iface": "wlan0", "kind": "wifi"},
        ]}).encode())
    assert isinstance(report, Report)
    assert [(ln.peer, ln.peer_mac) for ln in report.links] == [
        (None, "f8:1a:67:a5:e9:c1"), ("hill-2", None)]
