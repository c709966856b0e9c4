"""Any bytes on any topic through the contract's decode function: a valid model that the
collector can keep, store and show, or `Rejected` with a known reason — never another
exception. Accepted reports also go through the real SQLite store and the line protocol."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.model.addresses import looks_like_address
from meshmon.model.wire import BridgeStatus, Info, Message, Rejected, Report, Status, decode
from meshmon.sinks.lineprotocol import report_lines
from meshmon.sinks.sqlite import SqliteStore
from tests.fuzz import scaled
from tests.fuzz.payloads import BASES, PREFIX, messages, mutated_payloads, node_ids, render

REASONS = {"topic", "node_id", "oversize", "json", "version", "schema", "node_mismatch"}
"""the `reason` labels of meshmon_rejected_total that decode gives"""
INT64 = 2**63


def leaves(value: Any) -> list[Any]:
    """Every scalar in a dumped model."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [value]


def assert_keepable(message: Message, topic: str) -> None:
    """What the collector does with an accepted message must work: save it as JSON and
    load it back after a restart, store its numbers in SQLite, show its ids in public."""
    ident = message.bridge if isinstance(message, BridgeStatus) else message.node
    assert topic.split("/")[3] == ident
    assert not looks_like_address(ident)
    saved = message.model_dump_json(exclude_none=True)  # how SQLite keeps state
    assert type(message).model_validate_json(saved) == message, saved[:300]
    for leaf in leaves(message.model_dump()):
        if isinstance(leaf, float):
            assert math.isfinite(leaf), saved[:300]
        elif isinstance(leaf, int) and not isinstance(leaf, bool):
            assert -INT64 <= leaf < INT64, saved[:300]  # SQLite INTEGER, InfluxDB `i`
        elif isinstance(leaf, str):
            leaf.encode("utf-8")  # no lone surrogates: SQLite takes only UTF-8
    if isinstance(message, Report):
        for link in message.links:
            assert link.peer is None or not looks_like_address(link.peer)


def decode_or_reason(topic: str, payload: bytes) -> Message | str:
    try:
        return decode(PREFIX, topic, payload)
    except Rejected as rej:
        assert rej.reason in REASONS, rej
        assert rej.detail
        return rej.reason


@settings(max_examples=scaled(250))
@given(messages())
def test_any_message_is_a_keepable_model_or_a_known_rejection(message: tuple[str, bytes]) -> None:
    topic, payload = message
    # volume at little generation cost: the payload and 16 of its truncations
    for end in sorted({len(payload) * i // 16 for i in range(16)} | {len(payload)}):
        result = decode_or_reason(topic, payload[:end])
        if not isinstance(result, str):
            assert_keepable(result, topic)


@settings(max_examples=scaled(400))
@given(st.sampled_from(sorted(BASES)), st.data())
def test_mutated_real_payloads_on_their_own_topic(kind: str, data: st.DataObject) -> None:
    node = data.draw(st.one_of(st.just("lr-test-1"), node_ids()))
    topic = f"{PREFIX}/v1/node/{node}/{kind}"
    result = decode_or_reason(topic, data.draw(mutated_payloads(kind, node)))
    if not isinstance(result, str):
        assert isinstance(result, {"status": Status, "info": Info, "report": Report}[kind])
        assert_keepable(result, topic)


def test_the_unmutated_real_payloads_are_accepted() -> None:
    """The fuzzing starts from valid payloads (else every mutation is rejected anyway)."""
    for kind, doc in BASES.items():
        assert not isinstance(decode_or_reason(f"{PREFIX}/v1/node/lr-test-1/{kind}",
                                               render(doc).encode()), str)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    loop = asyncio.new_event_loop()
    sqlite = SqliteStore(tmp_path_factory.mktemp("fuzz-sqlite") / "m.sqlite",
                         flush_interval_s=3600)
    loop.run_until_complete(sqlite.start())
    yield loop, sqlite
    loop.run_until_complete(sqlite.close())
    loop.close()


@settings(max_examples=scaled(200))
@given(st.data())
def test_accepted_reports_are_stored_in_sqlite_and_encoded_as_lines(
    store: tuple[asyncio.AbstractEventLoop, SqliteStore], data: st.DataObject
) -> None:
    loop, sqlite = store
    report = data.draw(mutated_payloads("report", "lr-test-1"))
    result = decode_or_reason(f"{PREFIX}/v1/node/lr-test-1/report", report)
    if isinstance(result, str):
        return
    assert isinstance(result, Report)
    dsts = [link.peer for link in result.links]
    written, dropped, errors = (sqlite.written_rows, sqlite.dropped_rows, sqlite.write_errors)
    sqlite.write_report(result, 1.7e9, dsts)
    lines = report_lines(result, 1.7e9, dsts, result.ts)
    assert lines and all("\n" not in line for line in lines)
    loop.run_until_complete(sqlite.flush())
    assert (sqlite.dropped_rows, sqlite.write_errors) == (dropped, errors)
    assert sqlite.written_rows == written + 1  # the report (its samples in the history)
