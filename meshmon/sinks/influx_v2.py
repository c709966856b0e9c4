"""InfluxDB v2 write API sink (`api = "v2"`): influxdb-client's `InfluxDBClientAsync`.

Works with InfluxDB 1.8+ (token `user:password`), 2.x, 3.x and other servers of the v2
write API (VictoriaMetrics). The body is prebuilt line protocol; the client only posts it.
"""

from __future__ import annotations

from typing import Any, Unpack

import aiohttp
from influxdb_client import WritePrecision
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.rest import ApiException

from meshmon.sinks.buffered import (
    BufferedLineSink,
    BufferOptions,
    TransientWriteError,
    classify_http_error,
)


class InfluxV2Sink(BufferedLineSink):
    """Writes line protocol through influxdb-client's async write API."""

    name = "influxdb_v2"

    def __init__(
        self,
        url: str,
        bucket: str,
        *,
        org: str = "",
        token: str = "",
        timeout_s: float = 10.0,
        **buffering: Unpack[BufferOptions],
    ) -> None:
        super().__init__(**buffering)
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org
        self.token = token
        self.timeout_ms = int(timeout_s * 1000)
        self._client: InfluxDBClientAsync | None = None
        self._write_api: Any = None

    async def _open(self) -> None:
        # the client only opens its aiohttp session here; nothing is contacted yet
        options: dict[str, Any] = {"url": self.url, "timeout": self.timeout_ms}
        if self.token:
            options["token"] = self.token
        if self.org:
            options["org"] = self.org
        self._client = InfluxDBClientAsync(**options)
        self._write_api = self._client.write_api()

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _send(self, body: bytes, points: int) -> None:
        if self._write_api is None:
            raise TransientWriteError("not started")
        try:
            await self._write_api.write(
                bucket=self.bucket,
                org=self.org or None,
                record=body,
                write_precision=WritePrecision.NS,
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 0:
                raise TransientWriteError(str(exc)) from exc
            raise classify_http_error(status, str(exc.body or exc.reason or "")) from exc
        except aiohttp.ClientError as exc:
            raise TransientWriteError(f"{type(exc).__name__}: {exc}") from exc
