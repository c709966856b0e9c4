"""Every HTTP route of a running collector (taken from its aiohttp router, not listed by
hand) with random path parameters, query strings, methods, headers and bodies: never a
5xx and nothing logged as an error; without the maintainer token every route that is not
public answers 401.

The collector is the real `Service` (Mosquitto, SQLite, alerting, the web app) in a thread
of its own, fed real payloads so that node pages, links and the live view have data; the
requests are raw bytes on a socket, so anything can be sent.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.metrics import Metrics
from meshmon.model.core import Core
from meshmon.service import Service
from meshmon.web.app import create_app
from meshmon.web.context import WebContext
from tests import servers
from tests.fuzz import scaled
from tests.fuzz.payloads import BASES, PREFIX, node_ids
from tests.integration.harness import collector_config

TOKEN = "fuzz-maintainer-token"
NODE = "lr-test-1"
PUBLIC = {
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/api/v1/nodes"),
    ("GET", "/api/v1/nodes/{node}"), ("GET", "/api/v1/links"), ("GET", "/api/v1/topology"),
    ("GET", "/api/v1/map"), ("GET", "/api/v1/outages"), ("GET", "/api/v1/weak-points"),
    ("GET", "/install/{node}"), ("GET", "/api/v1/live/{node}"), ("GET", "/static"),
    ("GET", "/data/meshviewer.json"), ("GET", "/data/nodelist.json"), ("GET", "/nodes"),
    ("GET", "/api/v1/bridges"),
    ("GET", "/node/{node}"), ("GET", "/link/{a}/{b}"), ("GET", "/api/v1/nodes/{node}/history"),
    ("GET", "/api/v1/links/{a}/{b}/history"),
}
"""routes anyone may read (DESIGN.md's HTTP table, the map files of docs/freifunk.md, and
the bridges' ids, states and node counts of docs/bridge.md);
HEAD goes with GET. Every other route
must refuse a request without the maintainer token: a new route is closed until it is
added here on purpose."""
SIGN_IN = {("GET", "/admin/login"), ("POST", "/admin/login"), ("POST", "/admin/logout")}
"""signing in and out: open to all, but they only redirect to /admin or refuse (303/401)"""
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
           "PROPFIND", "get", "G\x00T", "X" * 40]
QUERY_KEYS = ["since", "limit", "all", "token", "node", "until", "window", "kind", "q", ""]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    """`/api/v1/nodes/{node}`; the static route is its prefix"""
    params: tuple[str, ...]
    static: bool = False


@dataclass
class Answer:
    status: int
    headers: str
    body: bytes


class ErrorLog(logging.Handler):
    """Keeps every record at ERROR or above, and every record with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        found, self.records = self.records, []
        return [f"{r.name}: {r.getMessage()}" for r in found]


class Collector:
    """The collector's event loop in a thread; the test thread sends requests."""

    def __init__(self, config: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="collector",
                                       daemon=True)
        self.thread.start()
        self.service = Service(config)
        self.run(self.service.start())

    def run(self, job: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(job, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self.service.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    @property
    def port(self) -> int:
        return self.service.http_port

    @functools.cached_property
    def routes(self) -> list[Route]:
        """Every route of the collector's web app, from its aiohttp router (an app made
        the way the service makes its own: the routes do not depend on the context)."""
        app = create_app(WebContext(core=Core(), config=self.service.config,
                                    metrics=Metrics()))
        found = []
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            if "prefix" in info:
                found.append(Route(route.method, info["prefix"], (), static=True))
            else:
                template = info.get("formatter") or info["path"]
                found.append(Route(route.method, template,
                                   tuple(re.findall(r"\{(\w+)\}", template))))
        return found


def request(port: int, method: str, target: bytes, headers: list[bytes], body: bytes,
            timeout: float = 10.0) -> Answer:
    """One HTTP/1.1 request as raw bytes; the answer (the headers only for a stream)."""
    head = [method.encode("latin-1", "replace") + b" " + target + b" HTTP/1.1",
            b"Host: 127.0.0.1", b"Connection: close", *headers]
    if body:
        head.append(b"Content-Length: %d" % len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        header_block, _, rest = data.partition(b"\r\n\r\n")
        headers_text = header_block.decode("latin-1")
        if "text/event-stream" not in headers_text and method.upper() != "HEAD":
            while chunk := sock.recv(65536):
                rest += chunk
    status_line = headers_text.split("\r\n", 1)[0]
    assert status_line.startswith("HTTP/1."), (method, target, data[:200])
    return Answer(int(status_line.split()[1]), headers_text, rest)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    mosquitto = servers.start_mosquitto()
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    work: Path = tmp_path_factory.mktemp("http-fuzz")
    try:
        running = Collector(collector_config(work, mosquitto.port,
                                             http={"admin_token": TOKEN}))
        try:
            running.errors = errors  # type: ignore[attr-defined]
            feed(running)
            yield running
        finally:
            running.close()
    finally:
        logging.getLogger().removeHandler(errors)
        mosquitto.stop()


def feed(collector: Collector) -> None:
    """Real info and reports of two linked nodes, and one silence, so routes have data."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    assert collector.service.mqtt_address is not None
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="http-fuzz-feed")
    client.connect("127.0.0.1", collector.service.mqtt_address.port)
    client.loop_start()
    now = time.time()
    peer_info = dict(BASES["info"], node="peer-2", macs=["dd:ee:ff:33:44:55"])
    for node, kind, payload in [
        (NODE, "info", BASES["info"]), ("peer-2", "info", peer_info),
        (NODE, "report", dict(BASES["report"], ts=now)),
        ("peer-2", "report", dict(BASES["report"], node="peer-2", ts=now)),
    ]:
        client.publish(f"{PREFIX}/v1/node/{node}/{kind}", json.dumps(payload), qos=1,
                       retain=kind == "info").wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    deadline = time.monotonic() + 20
    # the link's page answers once both ends' reports are in (the routes need both)
    while request(collector.port, "GET", f"/link/{NODE}/peer-2".encode(), [], b"").status != 200:
        assert time.monotonic() < deadline, "the fed link never showed up"
        time.sleep(0.1)
    silence = json.dumps({"node": "peer-*", "duration_s": 3600}).encode()
    answer = request(collector.port, "POST", b"/api/v1/silences",
                     [b"Authorization: Bearer " + TOKEN.encode(),
                      b"Content-Type: application/json"], silence)
    assert answer.status == 201, answer


# ---------------------------------------------------------------------------- strategies
def segment_values() -> st.SearchStrategy[str]:
    return st.one_of(st.just(NODE), st.just("1"), node_ids(), st.text(max_size=30),
                     st.integers(min_value=-(2**70), max_value=2**70).map(str),
                     st.sampled_from(["..", ".", "%2e%2e", "1e3", "0x1", "nan", "-1"]))


def encoded(text: str, raw: bool) -> bytes:
    """A path or query part: percent-encoded, or (sometimes) as raw UTF-8 bytes."""
    if raw:
        return text.encode("utf-8", "surrogateescape")
    return urllib.parse.quote(text, safe="").encode()


@st.composite
def targets(draw: st.DrawFn, route: Route, well_formed: bool = False) -> bytes:
    """The request target: the route's path with its parameters filled in, and a query
    (some parts as raw bytes unless `well_formed`)."""
    raw = not well_formed and draw(st.integers(0, 7)) == 0
    if route.static:
        tail = draw(st.one_of(st.sampled_from(["map.js", "admin.css", "vendor/leaflet/LICENSE",
                                               "../config.py", "%2e%2e/%2e%2e/etc/passwd",
                                               "", "vendor/", "nope.js"]),
                              st.text(max_size=20).map(lambda t: encoded(t, False).decode())))
        path = route.template.encode() + b"/" + tail.encode()
    else:
        path = route.template.encode()
        for name in route.params:
            value = encoded(draw(segment_values()), raw) or b"x"
            path = path.replace(b"{" + name.encode() + b"}", value)
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=6)),
                                    st.one_of(segment_values(), st.sampled_from(
                                        ["", "1", "0", "inf", "-1", "9" * 400, "1.5"]))),
                          max_size=4))
    if pairs:
        query = b"&".join(encoded(k, raw) + b"=" + encoded(v, raw) for k, v in pairs)
        path += b"?" + query
    return path


def bodies() -> st.SearchStrategy[tuple[bytes | None, bytes]]:
    """(Content-Type header or None, body)."""
    json_bodies = st.one_of(
        st.just(b'{"node": "hill-*", "duration_s": 60}'),
        st.dictionaries(st.sampled_from(["node", "tag", "duration_s", "reason", "created_by",
                                         "starts_at", "token"]),
                        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                  st.text(max_size=20), st.lists(st.integers(), max_size=2)),
                        max_size=6).map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=200))
    forms = st.one_of(
        st.builds(lambda t: b"token=" + urllib.parse.quote(t).encode(), st.text(max_size=40)),
        st.sampled_from([b"\x80", b"token=\xff\xfe", b"token=%ff%fe", b"token", b"&&=&",
                         b"token=" + TOKEN.encode() + b"\x80"]),
        st.binary(max_size=100))
    return st.one_of(
        st.tuples(st.just(None), st.just(b"")),
        st.tuples(st.just(b"Content-Type: application/json"), json_bodies),
        st.tuples(st.just(b"Content-Type: application/x-www-form-urlencoded"), forms),
        st.tuples(st.sampled_from([b"Content-Type: multipart/form-data; boundary=xyz",
                                   b"Content-Type: multipart/form-data",
                                   b"Content-Type: text/plain; charset=\xff",
                                   b"Content-Type: application/json; charset=utf-16",
                                   b"Content-Type: application/json; charset=nonsense",
                                   b"Content-Type: application/x-www-form-urlencoded; "
                                   b"charset=nonsense"]),
                  st.binary(max_size=200)),
    )


def header_safe(value: bytes) -> bool:
    """A header value HTTP allows: no control characters but tab."""
    return all(b == 9 or 32 <= b != 127 for b in value)


def auth_headers(authorized: bool, well_formed: bool = False) -> st.SearchStrategy[list[bytes]]:
    """The maintainer token, or none, a wrong one, garbage credentials or cookies."""
    def valid(b: bytes) -> bool:
        return header_safe(b) if well_formed else b"\r" not in b and b"\n" not in b

    wrong = st.one_of(
        st.just([]),
        st.builds(lambda t: [b"Authorization: Bearer " + t],
                  st.text(max_size=30).map(lambda t: t.encode("utf-8", "replace")).filter(valid)),
        st.builds(lambda b: [b"Authorization: " + b], st.binary(max_size=30).filter(valid)),
        st.builds(lambda b: [b"Cookie: meshmon_admin=" + b], st.binary(max_size=40).filter(
            lambda b: valid(b) and b";" not in b)),
    )
    if authorized:
        return st.just([b"Authorization: Bearer " + TOKEN.encode()])
    return wrong


def check(collector: Collector, route: Route, method: str, target: bytes,
          answer: Answer) -> None:
    errors = collector.errors.take()  # type: ignore[attr-defined]
    assert answer.status < 500 and not errors, (method, target, answer.status,
                                                answer.body[:300], errors)


@settings(max_examples=scaled(300))
@given(data=st.data())
def test_random_requests_on_every_route_never_fail(collector: Collector,
                                                   data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(collector.routes))
    method = data.draw(st.one_of(st.just(route.method), st.sampled_from(METHODS)))
    target = data.draw(targets(route))
    headers = data.draw(auth_headers(data.draw(st.booleans())))
    content_type, body = data.draw(bodies())
    if content_type is not None:
        headers = [*headers, content_type]
    answer = request(collector.port, method, target, headers, body)
    check(collector, route, method, target, answer)


@settings(max_examples=scaled(150))
@given(data=st.data())
def test_without_the_token_only_public_routes_answer(collector: Collector,
                                                     data: st.DataObject) -> None:
    # (requests that are not valid HTTP are refused before any route: the test above)
    route = data.draw(st.sampled_from(collector.routes))
    target = data.draw(targets(route, well_formed=True))
    headers = data.draw(auth_headers(authorized=False, well_formed=True))
    content_type, body = data.draw(bodies())
    if content_type is not None and header_safe(content_type):
        headers = [*headers, content_type]
    answer = request(collector.port, route.method, target, headers, body)
    check(collector, route, route.method, target, answer)
    key = ("GET" if route.method == "HEAD" else route.method, route.template)
    if key in SIGN_IN:
        assert answer.status in (303, 400, 401, 413), (target, answer.status)
        assert "Set-Cookie: meshmon_admin=" not in answer.headers or "Max-Age=0" in \
            answer.headers or "expires=Thu, 01 Jan 1970" in answer.headers
    elif key not in PUBLIC:
        assert answer.status == 401, (route, target, answer.status, answer.body[:200])


def test_every_route_is_reached_and_the_maintainer_ones_are_closed(collector: Collector) -> None:
    """Plain requests on every route of the router: without a token the maintainer routes
    are 401 and the public ones answer; with the token every one answers (no 401)."""
    routes = collector.routes
    assert {r.template for r in routes} >= {"/api/v1/silences/{id}", "/admin", "/"}
    token = [b"Authorization: Bearer " + TOKEN.encode()]
    for route in routes:
        target = route.template.encode() + (b"/map.js" if route.static else b"")
        for name in route.params:  # a link's ends: the two nodes `feed` links
            value = {"id": b"1", "b": b"peer-2"}.get(name, NODE.encode())
            target = target.replace(b"{" + name.encode() + b"}", value)
        body = b'{"node": "x-*", "duration_s": 60}' if route.method == "POST" else b""
        key = ("GET" if route.method == "HEAD" else route.method, route.template)
        open_answer = request(collector.port, route.method, target, [], body)
        check(collector, route, route.method, target, open_answer)
        if key == ("POST", "/admin/login"):  # the token comes in the form
            body, token = b"token=" + TOKEN.encode(), [
                b"Content-Type: application/x-www-form-urlencoded"]
        authorized = request(collector.port, route.method, target, token, body)
        check(collector, route, route.method, target, authorized)
        if key in PUBLIC:
            assert open_answer.status == authorized.status == 200, route
        elif key in SIGN_IN:
            assert open_answer.status in (303, 401), (route, open_answer.status)
            assert authorized.status == 303, (route, authorized.status)
        else:
            assert open_answer.status == 401, (route, open_answer.status)
            assert authorized.status != 401, (route, authorized.status, authorized.body[:200])
        token = [b"Authorization: Bearer " + TOKEN.encode()]
