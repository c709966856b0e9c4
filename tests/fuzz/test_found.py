"""What the fuzzing found, one plain test each (the fuzz tests find them again only by chance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshmon.config import ConfigError, load
from meshmon.model.wire import Rejected, Report, decode
from meshmon.sinks.sqlite import SqliteStore
from tests.fuzz.payloads import BASES, PREFIX

TOPIC = f"{PREFIX}/v1/node/lr-test-1/report"


def with_raw(path: tuple[str | int, ...], token: str) -> bytes:
    """The real report with the value at `path` spelled as the raw JSON `token`."""
    doc = json.loads(json.dumps(BASES["report"]))
    marker = "@@RAW@@"
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = marker
    return json.dumps(doc).replace(f'"{marker}"', token).encode()


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e999", "-1e400"])
@pytest.mark.parametrize("path", [("ts",), ("sys", "uptime_s")])
def test_non_finite_numbers_are_rejected_not_kept_as_null(
    path: tuple[str | int, ...], token: str
) -> None:
    # found: `"ts": Infinity` was accepted and saved as `"ts": null`, which the next
    # start could not load back
    with pytest.raises(Rejected) as caught:
        decode(PREFIX, TOPIC, with_raw(path, token))
    assert caught.value.reason == "schema"


@pytest.mark.parametrize("path", [("links", 0, "inactive_ms"), ("ifaces", 0, "rx_bytes"),
                                  ("sys", "mem_total_kb"), ("seq",)])
def test_counters_beyond_int64_are_rejected(path: tuple[str | int, ...]) -> None:
    # found: a counter of 10**400 was accepted, and SQLite's OverflowError then dropped the
    # whole batch: every other node's samples of that second with it
    for token in ("9223372036854775808", "1" + "0" * 400):
        with pytest.raises(Rejected) as caught:
            decode(PREFIX, TOPIC, with_raw(path, token))
        assert caught.value.reason == "schema"
    largest = decode(PREFIX, TOPIC, with_raw(path, "9223372036854775807"))
    assert isinstance(largest, Report)


async def test_the_largest_counters_are_stored_in_sqlite(tmp_path: Path) -> None:
    report = decode(PREFIX, TOPIC, with_raw(("links", 0, "tx_retries"), str(2**63 - 1)))
    assert isinstance(report, Report)
    store = SqliteStore(tmp_path / "m.sqlite")
    await store.start()
    try:
        store.write_report(report, report.ts, [None] * len(report.links))
        await store.flush()
        assert (store.written_rows, store.dropped_rows) == (1 + len(report.links), 0)
    finally:
        await store.close()


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    # found: `load` raised UnicodeDecodeError (a traceback from `meshmon serve`)
    path = tmp_path / "meshmon.toml"
    path.write_bytes(b'[http]\nadmin_token = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert [problem[0] for problem in caught.value.errors] == ["(file)"]
