"""InfluxDB 1.x sink (`api = "v1"`): aiohttp POST `/write?db=…&precision=ns`."""

from __future__ import annotations

import logging
from typing import Unpack

import aiohttp

from meshmon.sinks.buffered import (
    BufferedLineSink,
    BufferOptions,
    TransientWriteError,
    classify_http_error,
)

log = logging.getLogger(__name__)


class InfluxV1Sink(BufferedLineSink):
    """Writes line protocol to InfluxDB 1.x; creates the database if it does not exist."""

    name = "influxdb_v1"

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str = "",
        password: str = "",
        timeout_s: float = 10.0,
        **buffering: Unpack[BufferOptions],
    ) -> None:
        super().__init__(**buffering)
        self.url = url.rstrip("/")
        self.database = database
        self._headers = (
            {"Authorization": aiohttp.encode_basic_auth(username, password)} if username else {}
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._db_ready = False

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        try:
            await self._ensure_database()
        except (TransientWriteError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("%s: cannot create database %r yet (%s); will retry before writing",
                        self.name, self.database, exc)

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _ensure_database(self) -> None:
        assert self._session is not None
        q = 'CREATE DATABASE "{}"'.format(self.database.replace("\\", "\\\\").replace('"', '\\"'))
        async with self._session.post(f"{self.url}/query", data={"q": q}) as resp:
            body = await resp.text()
            if resp.status == 403:
                # a write-only user may not create databases: assume an admin made it and
                # write (a missing database then shows as a 404 on /write)
                log.info("%s: not allowed to CREATE DATABASE %r; writing to it as it is",
                         self.name, self.database)
                self._db_ready = True
                return
            if resp.status != 200:
                raise classify_http_error(resp.status, body)
            if '"error"' in body:
                log.error("%s: CREATE DATABASE %r failed: %s", self.name, self.database, body[:300])
        self._db_ready = True

    async def _send(self, body: bytes, points: int) -> None:
        if self._session is None:
            raise TransientWriteError("not started")
        try:
            if not self._db_ready:
                await self._ensure_database()
            async with self._session.post(
                f"{self.url}/write",
                params={"db": self.database, "precision": "ns"},
                data=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            ) as resp:
                if resp.status == 204:
                    return
                text = await resp.text()
                if resp.status == 404:
                    self._db_ready = False  # dropped behind our back: create it again
                raise classify_http_error(resp.status, text)
        except aiohttp.ClientError as exc:
            raise TransientWriteError(f"{type(exc).__name__}: {exc}") from exc
