"""Maintainer sessions kept on the server: in the SQLite file (SessionStore), and through a
real collector's /admin over HTTP: signing out, restarts and a new token end sessions."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshmon.config import Config
from meshmon.service import Service
from meshmon.storage import sessions as sessions_module
from meshmon.storage.sessions import SessionStore
from meshmon.web.admin import SESSION_COOKIE
from tests.integration.harness import collector_config
from tests.storage.schema import old_db_copy

TOKEN = "maint-7c1d-session-tests"
NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def started_store(path: Path, clock: Clock, lifetime_s: float = 3600) -> SessionStore:
    store = SessionStore(path, lifetime_s=lifetime_s, clock=clock)
    await store.start()
    return store


async def test_a_session_lives_for_its_lifetime_and_across_restarts(tmp_path: Path) -> None:
    path, clock = tmp_path / "meshmon.sqlite", Clock()
    store = await started_store(path, clock)
    value = await store.create(TOKEN)
    assert store.valid(TOKEN, value)
    assert value != await store.create(TOKEN)  # a new value per sign-in
    await store.close()

    store = await started_store(path, clock)  # a restarted collector
    assert store.valid(TOKEN, value) and len(store) == 2
    clock.now = NOW + 3599
    assert store.valid(TOKEN, value)
    clock.now = NOW + 3600
    assert not store.valid(TOKEN, value)
    await store.close()
    # expired rows are deleted at the next start
    store = await started_store(path, clock)
    assert len(store) == 0
    await store.close()
    assert _rows(path) == []


async def test_signing_out_ends_the_session_for_good(tmp_path: Path) -> None:
    path, clock = tmp_path / "meshmon.sqlite", Clock()
    store = await started_store(path, clock)
    first, second = await store.create(TOKEN), await store.create(TOKEN)
    assert await store.end(TOKEN, first)
    assert not store.valid(TOKEN, first) and store.valid(TOKEN, second)
    assert not await store.end(TOKEN, first)  # already ended
    await store.close()
    store = await started_store(path, clock)
    assert not store.valid(TOKEN, first) and store.valid(TOKEN, second)
    await store.close()


async def test_a_new_token_ends_every_session_and_the_file_holds_no_secret(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "meshmon.sqlite", Clock()
    store = await started_store(path, clock)
    values = [await store.create(TOKEN) for _ in range(3)]
    assert all(store.valid(TOKEN, v) for v in values)
    assert not any(store.valid(TOKEN + "-new", v) for v in values)
    assert not any(store.valid("", v) for v in values)
    await store.close()
    dump = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("*-wal"))
    for secret in (TOKEN, *values):
        assert secret.encode() not in dump


async def test_odd_cookies_are_refused(tmp_path: Path) -> None:
    store = await started_store(tmp_path / "meshmon.sqlite", Clock())
    value = await store.create(TOKEN)
    for bad in ("", value[:-1], value + "x", value.upper(), "\udcff" + value, "x" * 5000,
                value + "\x00"):
        assert not store.valid(TOKEN, bad), bad
        assert not await store.end(TOKEN, bad)
    assert store.valid(TOKEN, value)
    await store.close()


async def test_sessions_are_bounded_the_oldest_ending_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_module, "MAX_SESSIONS", 3)
    path, clock = tmp_path / "meshmon.sqlite", Clock()
    store = await started_store(path, clock)
    values = []
    for i in range(5):
        clock.now = NOW + i
        values.append(await store.create(TOKEN))
    assert [store.valid(TOKEN, v) for v in values] == [False, False, True, True, True]
    await store.close()
    assert len(_rows(path)) == 3


async def test_sessions_work_on_a_file_upgraded_from_c21697b(tmp_path: Path) -> None:
    store = await started_store(old_db_copy(tmp_path), Clock())
    value = await store.create(TOKEN)
    assert store.valid(TOKEN, value)
    await store.close()


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT * FROM admin_sessions").fetchall()


# ---------------------------------------------------------------------- a real collector
def config_with(tmp_path: Path, token: str) -> Config:
    return collector_config(tmp_path, None, http={"admin_token": token})


async def sign_in(base: str, token: str) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, s.post(
        f"{base}/admin/login", data={"token": token}, allow_redirects=False
    ) as r:
        assert r.status == 303, await r.text()
        jar: SimpleCookie = SimpleCookie()
        for header in r.headers.getall("Set-Cookie", []):
            jar.load(header)
        return jar[SESSION_COOKIE].value


async def status_with(base: str, value: str) -> tuple[int, int]:
    """(GET /admin, GET /api/v1/silences) with only this session cookie."""
    headers = {"Cookie": f"{SESSION_COOKIE}={value}"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(f"{base}/admin", headers=headers) as page:
            page_status = page.status
        async with s.get(f"{base}/api/v1/silences", headers=headers) as api:
            return page_status, api.status


async def sign_out(base: str, value: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, s.post(
        f"{base}/admin/logout", headers={"Cookie": f"{SESSION_COOKIE}={value}"},
        allow_redirects=False,
    ) as r:
        assert r.status == 303
        assert SESSION_COOKIE in r.cookies and r.cookies[SESSION_COOKIE].value == ""


async def test_sign_out_restart_and_a_new_token_end_sessions_on_a_real_collector(
    tmp_path: Path,
) -> None:
    service = Service(config_with(tmp_path, TOKEN))
    await service.start()
    try:
        base = service.http_url
        gone, kept, other = [await sign_in(base, TOKEN) for _ in range(3)]
        assert await status_with(base, gone) == (200, 200)
        await sign_out(base, gone)
        # the old cookie, replayed: refused by the page and the APIs
        assert await status_with(base, gone) == (401, 401)
        assert await status_with(base, kept) == (200, 200)
    finally:
        await service.stop()

    service = Service(config_with(tmp_path, TOKEN))  # restarted, same token
    await service.start()
    try:
        base = service.http_url
        assert await status_with(base, gone) == (401, 401)
        assert await status_with(base, kept) == (200, 200)
        assert await status_with(base, other) == (200, 200)
    finally:
        await service.stop()

    service = Service(config_with(tmp_path, TOKEN + "-rotated"))  # the token was changed
    await service.start()
    try:
        base = service.http_url
        for value in (gone, kept, other):
            assert await status_with(base, value) == (401, 401)
        fresh = await sign_in(base, TOKEN + "-rotated")
        assert await status_with(base, fresh) == (200, 200)
    finally:
        await service.stop()
