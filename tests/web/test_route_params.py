"""Odd route parameters on a real collector (real AlertStore on SQLite, real aiohttp server,
raw HTTP so any bytes can be sent): never a 500, always 400/401/404 — and the ordinary
requests next to them still work."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from meshmon.service import Service
from tests.integration.harness import collector_config, metric

TOKEN = "route-params-token"
AUTH = b"Authorization: Bearer " + TOKEN.encode()


async def raw(port: int, method: str, target: str, headers: tuple[bytes, ...] = (),
              body: bytes = b"") -> tuple[int, Any]:
    """One request as bytes on a socket: (status, JSON body or text)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"{method} {target} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close",
            *headers]
    if body:
        head += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    try:
        decoded: Any = json.loads(payload)
    except ValueError:
        decoded = payload.decode(errors="replace")
    return int(status_line.split()[1]), decoded


@pytest.fixture
async def collector(tmp_path: Path) -> Any:
    service = Service(collector_config(tmp_path, None, http={"admin_token": TOKEN}))
    await service.start()
    yield service
    await service.stop()


async def make_silence(port: int) -> int:
    status, body = await raw(port, "POST", "/api/v1/silences", (AUTH,),
                             b'{"node": "hill-*", "duration_s": 3600}')
    assert status == 201, body
    return int(body["id"])


async def test_silence_ids_that_name_no_row_are_404_never_500(collector: Service) -> None:
    port = collector.http_port
    kept = await make_silence(port)
    odd = [
        "1" * 24,  # the reported one: more than SQLite's int64
        "9223372036854775808", "99999999999999999999", "9" * 5000,
        "9223372036854775807",  # the largest row id: a number, just not a silence
        "0", "-1", "+1", "%201", "1%20", "1_0", "%D9%A1",  # Arabic-Indic one
        "1e3", "0x1", "1.0", "%00", "%ff", "nan", "inf", "abc",
    ]
    for segment in odd:
        status, body = await raw(port, "DELETE", f"/api/v1/silences/{segment}", (AUTH,))
        assert status == 404, (segment, status, body)
        assert body["status"] == 404
    # without the token: 401 before the number is even read
    assert (await raw(port, "DELETE", f"/api/v1/silences/{'1' * 24}"))[0] == 401
    # none of them ended the real one, which still ends by its plain id
    assert (await raw(port, "GET", "/api/v1/silences", (AUTH,)))[1]["silences"][0]["id"] == kept
    status, body = await raw(port, "DELETE", f"/api/v1/silences/{kept}", (AUTH,))
    assert (status, body) == (200, {"ended": kept})
    assert (await raw(port, "DELETE", f"/api/v1/silences/{kept}", (AUTH,)))[0] == 404


async def test_numeric_query_parameters_are_checked(collector: Service) -> None:
    port = collector.http_port
    for query in ("since=nan", "since=inf", "since=-inf", "since=1e999", "since=abc",
                  "since=", "limit=1.5", "limit=abc", f"limit={'9' * 5000}"):
        status, body = await raw(port, "GET", f"/api/v1/alerts?{query}", (AUTH,))
        assert status == 400, (query, status, body)
    for query in ("since=1e308", "since=-1e308", f"limit={'9' * 30}", "limit=-5",
                  "since=0&limit=1"):
        status, body = await raw(port, "GET", f"/api/v1/alerts?{query}", (AUTH,))
        assert status == 200 and body["log"] == [], (query, status, body)


async def test_odd_node_ids_in_paths_are_404(collector: Service) -> None:
    port = collector.http_port
    for segment in ("alpha%0A", "%0Aalpha", "%ff", "a" * 65, "%00", "..%2F..%2Fetc",
                    "-lead", "%E2%80%AEevil", "x%20y"):
        for route in ("/api/v1/nodes/", "/install/", "/api/v1/live/"):
            status, _ = await raw(port, "GET", route + segment)
            assert status == 404, (route + segment, status)
    # an id that fits but is unknown: 404 as JSON; the installer page is still served
    status, body = await raw(port, "GET", "/api/v1/nodes/ghost-1")
    assert (status, body["error"]) == (404, "unknown node")
    assert (await raw(port, "GET", "/install/ghost-1"))[0] == 200


async def test_tokens_and_cookies_that_are_not_utf8_are_just_wrong(collector: Service) -> None:
    port = collector.http_port
    bad_bearer = b"Authorization: Bearer \xff\xfe\x80"
    assert (await raw(port, "GET", "/api/v1/silences", (bad_bearer,)))[0] == 401
    assert (await raw(port, "GET", "/api/v1/alerts", (bad_bearer,)))[0] == 401
    assert (await raw(port, "GET", "/admin", (bad_bearer,)))[0] == 401
    assert (await raw(port, "GET", "/admin", (b"Cookie: meshmon_admin=\xff\xfe",)))[0] == 401
    assert (await raw(port, "GET", "/api/v1/silences?token=%ff%fe"))[0] == 401
    assert (await raw(port, "GET", "/admin?token=%ff%fe"))[0] == 401
    assert (await raw(port, "POST", "/admin/logout", (b"Cookie: meshmon_admin=\xff",)))[0] == 303


async def test_silence_bodies_with_numbers_out_of_range_are_400(collector: Service) -> None:
    port = collector.http_port
    bodies = [
        b'{"node": "x", "duration_s": 60, "starts_at": 1' + b"0" * 400 + b"}",
        b'{"node": "x", "duration_s": 60, "starts_at": 1e18}',
        b'{"node": "x", "duration_s": 60, "starts_at": -5}',
        b'{"node": "x", "duration_s": 60, "starts_at": 253402300790}',
        b'{"node": "x", "duration_s": 1' + b"0" * 400 + b"}",
        b'{"node": "x", "duration_s": true}',
        b'{"node": "x", "duration_s": 60, "starts_at": false}',
        b'{"node": "x", "duration_s": 1e999}',
    ]
    for body in bodies:
        status, answer = await raw(port, "POST", "/api/v1/silences", (AUTH,), body)
        assert status == 400, (body[:70], status, answer)
    # nothing was stored that the list could not show
    status, answer = await raw(port, "GET", "/api/v1/silences?all=1", (AUTH,))
    assert (status, answer["silences"]) == (200, [])
    _, metrics = await raw(port, "GET", "/metrics")
    assert 'code="500"' not in metrics
    assert metric(metrics, "meshmon_http_requests_total", code="400",
                  route="/api/v1/silences") == len(bodies)
