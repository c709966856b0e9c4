"""Decoding MQTT messages on the hot path: reports into msgspec Structs, exactly as the models.

`wire.py`'s pydantic models are the contract. Building a pydantic `Report` (a model per
link with ~46 fields) costs ~30 µs a report; decoding into the generated Structs of
`wire_structs` (same fields, types, defaults and constraints, `structgen`) ~5 µs. What
the Structs cannot say is done here after decoding: MAC addresses lower-cased, and the
models' own after-validators run on the Structs (`Link` moves a MAC- or IP-like peer id,
`Report` drops links left without a peer).

Accepting and rejecting stay exactly the models': whatever the fast decoder refuses
(a wrong type the models would coerce, `"seq": 1.0`, a bool given as 1, a broken value)
goes to `wire.Report.model_validate_json`, which accepts it (converted to the Struct) or
gives the rejection and its reason; everything the fast decoder accepts, the models
accept with the same values (tests/model/test_fastwire.py feeds both real captures and
hypothesis-generated payloads). Status and info are rare: they stay pydantic models.
"""

from __future__ import annotations

from typing import Any

import msgspec
from pydantic import ValidationError

from meshmon.model import wire, wire_structs
from meshmon.model.wire import (
    MAX_PAYLOAD_BYTES,
    BridgeStatus,
    Info,
    Rejected,
    Status,
    parse_topic,
    rejection,
)
from meshmon.model.wire_structs import Link, Report

AnyReport = wire.Report | Report
"""a report as decoded (a Struct) or built with the model (tests, stored state)"""
Message = Status | Info | Report | BridgeStatus
"""what `decode` gives"""

if set(wire_structs.LOWERCASE_FIELDS) != {"Link.peer_mac"}:  # pragma: no cover
    raise RuntimeError("the models lower-case other fields now: teach fastwire._finish them")


def _after_validator(model: type[wire.WireModel], name: str) -> Any:
    return model.__pydantic_decorators__.model_validators[name].func


_link_needs_a_peer = _after_validator(wire.Link, "_needs_a_peer")
_report_drops_anonymous_links = _after_validator(wire.Report, "_drop_anonymous_links")
_report_decoder = msgspec.json.Decoder(Report)
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError)
MODELS_NESTING_LIMIT = 200
"""pydantic's JSON parser refuses arrays/objects nested deeper than about this; msgspec
goes to ~1,000. A payload with more brackets than this (an upper bound of its depth) is
left to the models so both say the same (a real report has a few dozen)."""


def _finish(report: Report) -> None:
    """What pydantic does beyond the constraints, in its order: fields (MACs lower-cased),
    then each link's validator, then the report's. ValueError: not valid."""
    validated = False
    for link in report.links:
        mac = link.peer_mac
        if mac is not None:
            # (`lower` and a compare: a third of `islower`'s time on an ASCII string)
            lower = mac.lower()
            if lower != mac:
                link.peer_mac = lower
        # a link with a MAC and no peer id passes `Link._needs_a_peer` unchanged and is
        # not anonymous: the validators run for the others (the hot path skips two calls)
        if link.peer is not None or mac is None:
            _link_needs_a_peer(link)
            validated = True
    if validated:
        _report_drops_anonymous_links(report)


def decode_report_fast(payload: bytes) -> Report | None:
    """The report, if the fast decoder takes it as it is (None: ask the models)."""
    if payload.count(b"[") + payload.count(b"{") > MODELS_NESTING_LIMIT:
        return None
    try:
        report = _report_decoder.decode(payload)
        _finish(report)
    except _FAST_ERRORS:
        return None
    return report


def decode_report(payload: bytes) -> Report:
    """A report payload as a Struct; raise Rejected with the models' reason."""
    report = decode_report_fast(payload)
    if report is not None:
        return report
    try:  # the models decide, and say why
        model = wire.Report.model_validate_json(payload)
    except ValidationError as exc:
        raise rejection(exc) from None
    return to_struct(model)


def to_struct(report: AnyReport) -> Report:
    """The Struct of a report built with the pydantic model (tests, stored state)."""
    if isinstance(report, Report):
        return report
    return msgspec.convert(report.model_dump(), Report)


def without_links(report: AnyReport) -> AnyReport:
    """The same report with no links (a node keeps its latest report without them)."""
    if not report.links:
        return report
    if isinstance(report, Report):
        return msgspec.structs.replace(report, links=())
    return report.model_copy(update={"links": []})


def to_json(report: AnyReport) -> bytes:
    """The report as JSON without absent fields (reads back with `decode_report`)."""
    if isinstance(report, Report):  # the Structs omit their defaults (None, [])
        return msgspec.json.encode(report)
    return report.model_dump_json(exclude_none=True).encode()


_REPORT_TOPICS_KEPT = 100_000
"""report topics remembered as parsed (more: the memory starts afresh)"""
_report_topics: dict[str, dict[str, str]] = {}
"""prefix → report topic → its node: every report of a node comes on the same topic"""


def _parse_topic(prefix: str, topic: str) -> tuple[str, str]:
    """`parse_topic`, remembering the report topics it accepted."""
    known = _report_topics.get(prefix)
    if known is None:
        known = _report_topics[prefix] = {}
    node = known.get(topic)
    if node is not None:
        return node, "report"
    parsed = parse_topic(prefix, topic)
    if parsed[1] == "report":
        if len(known) >= _REPORT_TOPICS_KEPT:
            known.clear()
        known[topic] = parsed[0]
    return parsed


def decode(prefix: str, topic: str, payload: bytes) -> Message:
    """One MQTT message as a Status, Info, BridgeStatus (pydantic) or Report (Struct);
    raise Rejected.

    The same checks, in the same order, as `wire.decode`."""
    node, kind = _parse_topic(prefix, topic)
    if kind != "report":
        message = wire.decode(prefix, topic, payload)
        assert not isinstance(message, wire.Report)
        return message
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected("oversize", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    report = decode_report(payload)
    if report.node != node:
        raise Rejected("node_mismatch", f"topic node {node!r} != payload node {report.node!r}")
    return report


__all__ = ["AnyReport", "Link", "Message", "Report", "decode", "decode_report",
           "decode_report_fast", "to_struct"]
