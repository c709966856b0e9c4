"""Reading a daemon over HTTP, from a file or a command; every failure and every broken
input is a SourceError that says what and why — never another exception."""

from __future__ import annotations

import http.server
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from meshmon_bridge.source import SourceError

from tests.routing.helpers import DATA, publish, source
from tests.servers import free_port


class _Capture(http.server.BaseHTTPRequestHandler):
    """Answers like olsrd's jsoninfo plugin: the capture at `/all`, 404 elsewhere."""

    body = (DATA / "netdiff" / "olsr-2-links.json").read_bytes()

    def do_GET(self) -> None:
        if self.path != "/all":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def jsoninfo() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_url(jsoninfo: str) -> None:
    out = publish(await source("olsr1", url=f"{jsoninfo}/all").poll())
    assert len(out.reports) == 3 and len(out.links()) == 2
    with pytest.raises(SourceError, match="HTTP 404"):
        await source("olsr1", url=f"{jsoninfo}/nothing").poll()


async def test_nothing_listening() -> None:
    with pytest.raises(SourceError, match=r"127\.0\.0\.1:\d+.*refused"):
        await source("olsr1", url=f"http://127.0.0.1:{free_port()}/all").poll()


async def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="No such file"):
        await source("olsr1", file=tmp_path / "gone.json").poll()


async def test_command_output_failure_and_timeout() -> None:
    capture = DATA / "netdiff" / "olsr-2-links.txt"
    out = publish(await source("olsr1", command=f"cat {capture}").poll())
    assert len(out.reports) == 3
    with pytest.raises(SourceError, match="exited with 3: olsrd not running"):
        await source("olsr1", command="echo olsrd not running >&2; exit 3").poll()
    with pytest.raises(SourceError, match=r"no answer within 0\.3 s"):
        await source("olsr1", command="sleep 5", timeout_s=0.3).poll()


CAPTURES = [
    ("olsr1", "netdiff/olsr-2-links.json", {}),
    ("olsr1", "netdiff/olsr-5-links.txt", {}),
    ("netjson", "netdiff/netjson-2-links.json", {}),
    ("batman-adv", "netdiff/batman.json", {}),
    ("batman-adv", "netdiff/batman.txt", {}),
    ("bmx6", "netdiff/bmx6.json", {}),
    ("wireguard", "netdiff/wg-dump.txt", {"node": "hub"}),
    ("openvpn", "netdiff/openvpn-5-links-tap.txt", {"node": "hub"}),
    ("cnml", "guifi_cnml/2525.cnml", {}),
]


@pytest.mark.parametrize(("kind", "file", "options"), CAPTURES)
async def test_truncated_and_garbled_input(
    tmp_path: Path, kind: str, file: str, options: dict[str, str]
) -> None:
    """Cut a real capture anywhere, or flip bytes in it: a clean error or valid output."""
    real = (DATA / file).read_bytes()
    rng = random.Random(file)
    variants = [real[: int(len(real) * f)] for f in (0.0, 0.1, 0.5, 0.9, 0.99)]
    for _ in range(6):
        garbled = bytearray(real)
        for _ in range(8):
            garbled[rng.randrange(len(garbled))] = rng.randrange(256)
        variants.append(bytes(garbled))
    variants.append(bytes(rng.randrange(256) for _ in range(2000)))
    path = tmp_path / Path(file).name
    src = source(kind, file=path, **options)
    errors = 0
    for variant in variants:
        path.write_bytes(variant)
        try:
            publish(await src.poll())
        except SourceError as exc:
            assert f"{kind}" in str(exc)
            errors += 1
    assert errors >= 1  # random bytes are no topology
