"""docs/operations.md, done for real: its nginx block in front of a running collector, and
the SQLite backup it points to (docs/deploy.md) taken while the collector writes."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import time
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp

from meshmon.service import Service
from meshmon.web.admin import SESSION_COOKIE
from tests.integration.harness import collector_config, eventually, started
from tests.integration.scripted_mesh import ScriptedMesh
from tests.servers import free_port, start_nginx, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "docs" / "operations.md"
PUBLIC_URL = "https://map.example.net"
TOKEN = "operations-test-token-3f9a"


def doc_block(language: str) -> str:
    """The one fenced ```language block of docs/operations.md."""
    (block,) = re.findall(rf"```{language}\n(.*?)```", OPERATIONS.read_text(), re.S)
    return block


def replace_once(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced, failing loudly when the documented line has changed."""
    assert text.count(old) >= 1, f"docs/operations.md no longer has {old!r}"
    return text.replace(old, new)


def self_signed_certificate(directory: Path) -> None:
    """fullchain.pem + privkey.pem for 127.0.0.1, as certbot would leave them."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(directory / "privkey.pem"), "-out", str(directory / "fullchain.pem")],
        check=True, capture_output=True, timeout=30,
    )


async def running_mesh(tmp_path: Path) -> tuple[Service, ScriptedMesh]:
    """A collector (embedded broker) and a two-node mesh that reports once, then when told
    (its interval is a minute)."""
    service = await started(collector_config(
        tmp_path, None, http={"public_url": PUBLIC_URL, "admin_token": TOKEN}))
    mesh = ScriptedMesh(service.mqtt_address.port, [("gw", "roof")], {"gw"}, interval_s=60)
    await mesh.start()

    async def linked() -> bool:
        return service.topology.graph.number_of_edges() == 1

    await eventually(linked, 15, "the mesh's link")
    return service, mesh


async def next_event(resp: aiohttp.ClientResponse) -> float:
    """Wait for the next Server-Sent Event on an open response; when it arrived."""
    while True:
        line = await asyncio.wait_for(resp.content.readline(), 10)
        assert line, "the stream ended"
        if line.startswith(b"data:"):
            return time.monotonic()


async def test_the_documented_nginx_proxy_serves_map_api_live_view_and_admin(
    tmp_path: Path,
) -> None:
    service, mesh = await running_mesh(tmp_path)
    collector_port = int(service.http_url.rsplit(":", 1)[1])
    http_port, https_port = free_port(), free_port()
    self_signed_certificate(tmp_path)
    site = doc_block("nginx")
    site = replace_once(site, "server 127.0.0.1:8080;", f"server 127.0.0.1:{collector_port};")
    site = replace_once(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = replace_once(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = replace_once(site, "/etc/letsencrypt/live/map.example.net/", f"{tmp_path}/")
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    nginx = start_nginx(site)
    base = f"https://127.0.0.1:{https_port}"
    try:
        await asyncio.to_thread(wait_for_port, https_port, 15.0, nginx.proc)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            async with http.get(f"http://127.0.0.1:{http_port}/admin",
                                allow_redirects=False) as resp:
                assert resp.status == 301
                assert resp.headers["Location"].startswith("https://")
            async with http.get(f"{base}/") as resp:
                assert resp.status == 200 and resp.content_type == "text/html"
            async with http.get(f"{base}/api/v1/nodes") as resp:
                assert resp.status == 200
                assert {"gw", "roof"} <= {n["id"] for n in (await resp.json())["nodes"]}
            async with http.get(f"{base}/metrics") as resp:  # from this machine: allowed
                assert resp.status == 200 and "meshmon_" in await resp.text()

            # the live view: the event a report causes comes through at once, while the
            # stream stays open (a buffering proxy holds small events until it closes)
            async with http.get(f"{base}/api/v1/live/roof",
                                timeout=aiohttp.ClientTimeout(total=30)) as resp:
                assert resp.status == 200
                assert resp.content_type == "text/event-stream"
                opened = time.monotonic()
                assert await next_event(resp) - opened < 2
                for _ in range(2):
                    reported = time.monotonic()
                    mesh.report("roof")
                    assert await next_event(resp) - reported < 2

            # /admin: sign in through the proxy; the cookie is Secure behind https
            async with http.get(f"{base}/admin") as resp:
                assert resp.status == 401 and 'action="/admin/login"' in await resp.text()
            async with http.post(f"{base}/admin/login", data={"token": TOKEN},
                                 allow_redirects=False) as resp:
                assert resp.status == 303
                morsel = SimpleCookie(resp.headers["Set-Cookie"])[SESSION_COOKIE]
            assert morsel["secure"] and morsel["httponly"]
            cookie = {"Cookie": f"{SESSION_COOKIE}={morsel.value}"}
            async with http.get(f"{base}/admin", headers=cookie) as resp:
                assert resp.status == 200 and "/static/admin.js" in await resp.text()
            # a change made with the cookie: this origin (Host passed through) may, others not
            silence = {"node": "roof", "duration_s": 600, "reason": "through nginx"}
            async with http.post(f"{base}/api/v1/silences", json=silence,
                                 headers={**cookie, "Origin": base}) as resp:
                assert resp.status == 201, await resp.text()
            async with http.post(f"{base}/api/v1/silences", json=silence,
                                 headers={**cookie, "Origin": "https://elsewhere.example"}) as resp:
                assert resp.status == 401

            # straight to the collector, addressed to the https public_url's host: Secure too
            for host, secure in (("map.example.net", True), (f"127.0.0.1:{collector_port}", False)):
                async with http.post(f"{service.http_url}/admin/login", data={"token": TOKEN},
                                     headers={"Host": host}, allow_redirects=False) as resp:
                    assert resp.status == 303
                    morsel = SimpleCookie(resp.headers["Set-Cookie"])[SESSION_COOKIE]
                    assert bool(morsel["secure"]) is secure
    finally:
        nginx.stop()
        await mesh.stop()
        await service.stop()


async def test_the_documented_sqlite_backup_taken_while_running_restores(tmp_path: Path) -> None:
    (tmp_path / "live").mkdir()
    service, mesh = await running_mesh(tmp_path / "live")
    database = Path(service.config.storage.path)
    backup = tmp_path / "backup" / "meshmon.sqlite"
    backup.parent.mkdir()

    async def stored() -> bool:
        with sqlite3.connect(database) as db:
            return int(db.execute("SELECT count(*) FROM nodes").fetchone()[0]) == 2

    restored: Service | None = None
    try:
        await eventually(stored, 10, "both nodes in SQLite")
        # the documented command, while the collector keeps writing samples
        run = await asyncio.to_thread(
            subprocess.run, ["sqlite3", str(database), f".backup '{backup}'"],
            capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        with sqlite3.connect(backup) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        restored = await started(collector_config(tmp_path / "backup", None))
        assert {"gw", "roof"} <= set(restored.topology.nodes)
    finally:
        if restored is not None:
            await restored.stop()
        await mesh.stop()
        await service.stop()
