"""What the fuzzing found, one plain test each (the fuzz tests find them again only by chance)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from meshmon.config import Config, ConfigError, load, parse
from meshmon.history.samples import SeriesKey
from meshmon.metrics import Metrics
from meshmon.model.core import Core
from meshmon.model.wire import Rejected, Report, decode
from meshmon.sinks.sqlite import SqliteStore
from meshmon.web.app import create_app, make_runner
from meshmon.web.context import WebContext
from tests.fuzz.payloads import BASES, PREFIX
from tests.fuzz.test_http_fuzz import request
from tests.web.test_route_params import raw

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
    store = SqliteStore(tmp_path / "m.sqlite", clock=lambda: report.ts)  # (within retention)
    await store.start()
    try:
        # the history keeps counters as rates: a second report with the largest counter
        # after a small one (a rate beyond belief is none, never an overflow)
        first = report.model_copy(update={"ts": report.ts - 30, "links": [
            report.links[0].model_copy(update={"tx_retries": 5}), *report.links[1:]]})
        peers = [f"peer{i}" for i in range(len(report.links))]
        store.write_report(first, report.ts - 30, peers)
        store.write_report(report, report.ts, peers)
        await store.flush()
        assert (store.written_rows, store.dropped_rows, store.write_errors) == (2, 0, 0)
        stored = await store.samples(SeriesKey("node", report.node))
        assert [s["ts"] for s in stored] == [report.ts - 30, report.ts]
        link = report.links[0]
        key = SeriesKey("link", report.node, peers[0], link.iface, link.kind)
        assert all("tx_retries_per_s" not in s for s in await store.samples(key))
    finally:
        await store.close()


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    # found: `load` raised UnicodeDecodeError (a traceback from `meshmon serve`)
    path = tmp_path / "meshmon.toml"
    path.write_bytes(b'[http]\nadmin_token = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert [problem[0] for problem in caught.value.errors] == ["(file)"]


@contextlib.asynccontextmanager
async def served(*routes: tuple[str, Any]) -> AsyncIterator[int]:
    """The collector's web app (maintainer token `t0ken`, plus `routes`) on a free port."""
    app = create_app(WebContext(core=Core(), config=Config(), metrics=Metrics(),
                                admin_token=lambda: "t0ken"))
    for path, handler in routes:
        app.router.add_get(path, handler)
    runner = make_runner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_a_request_that_is_not_http_is_a_400_not_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # found: aiohttp logged every malformed request (a bad header byte from a scanner) as
    # an ERROR with a traceback; a bug in a handler must still be an error
    async def broken(_request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async with served(("/broken", broken)) as port:
        caplog.set_level(logging.DEBUG)
        status, _ = await raw(port, "GET", "/healthz", (b"Authorization: Bearer \x1b",))
        assert status == 400
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
        assert any("Invalid header value char" in r.getMessage() for r in caplog.records)
        status, _ = await raw(port, "GET", "/broken")
        assert status == 500
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info is not None


@pytest.mark.parametrize(("content_type", "body"), [
    (b"application/x-www-form-urlencoded", b"\x80"),
    (b"application/x-www-form-urlencoded", b"token=\xff\xfe"),
    (b"multipart/form-data; boundary=xyz", b"--xyz\r\nbroken"),
    (b"multipart/form-data", b"token=x"),
    (b"application/x-www-form-urlencoded; charset=nonsense", b"token=x"),
])
async def test_a_sign_in_form_that_cannot_be_read_is_a_400(
    content_type: bytes, body: bytes
) -> None:
    # found (long fuzz run): a form body that was not UTF-8 made POST /admin/login a 500
    async with served() as port:
        answer = await asyncio.to_thread(request, port, "POST", b"/admin/login",
                                         [b"Content-Type: " + content_type], body)
        assert answer.status in (400, 401), answer


@pytest.mark.parametrize("content_type", [b"application/json; charset=nonsense",
                                          b"application/json; charset=utf-16"])
async def test_a_silence_body_in_an_odd_charset_is_a_400(content_type: bytes) -> None:
    async with served() as port:
        answer = await asyncio.to_thread(
            request, port, "POST", b"/api/v1/silences",
            [b"Content-Type: " + content_type, b"Authorization: Bearer t0ken"],
            b'{"node": "x", "duration_s": 60}')
        assert answer.status == 400, answer


@pytest.mark.parametrize("value", ["[]", '"yes"', "1", "{ a = 1 }"])
def test_a_value_that_fits_no_member_of_a_union_names_its_toml_path(value: str) -> None:
    # found: `allow_anonymous = []` (a bool or "auto") gave the paths
    # `mqtt.embedded.allow_anonymous.bool` and `….literal['auto']`, not TOML paths
    with pytest.raises(ConfigError) as caught:
        parse(f"[mqtt.embedded]\nallow_anonymous = {value}\n")
    [problem] = caught.value.errors
    assert (problem[0], problem[2]) == ("mqtt.embedded.allow_anonymous", 2)
    assert "true or false" in problem[1] and "'auto'" in problem[1]
