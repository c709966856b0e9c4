"""Webhook: POST the alert JSON (docs/alerts.md) to a URL, or a digest of several alerts.

The URL and headers often carry a token (Slack/Discord-style URLs, `Authorization`), so
neither appears in errors or logs: a failure names the notifier and the status or error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import aiohttp

from meshmon.alerts import messages
from meshmon.alerts.model import PAYLOAD_VERSION, Alert
from meshmon.alerts.notifiers.base import DeliveryError
from meshmon.config import NotifierConfig


def digest_payload(alerts: Sequence[Alert]) -> dict[str, Any]:
    """The webhook JSON for several alerts sent at once (a burst beyond the rate limit)."""
    return {
        "version": PAYLOAD_VERSION,
        "kind": "digest",
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "summary": messages.digest_summary(alerts),
        "alerts": [a.to_payload() for a in alerts],
    }


class WebhookNotifier:
    """POSTs `Alert.to_payload()` (or a digest) as JSON with aiohttp."""

    def __init__(self, config: NotifierConfig) -> None:
        self.name = config.name
        self._url = config.url
        self._headers = {
            **config.headers,
            "Content-Type": "application/json",
            "User-Agent": "meshmon",
        }
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alerts: Sequence[Alert], recipient: str | None = None) -> None:
        """POST one alert, or several as one digest; raise DeliveryError unless 2xx."""
        if not alerts:
            return
        payload = alerts[0].to_payload() if len(alerts) == 1 else digest_payload(alerts)
        if self._session is None:
            # created here, not in __init__: a ClientSession belongs to the running loop
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            # no redirects: following one would send the headers (a token) to another URL
            async with self._session.post(
                self._url, json=payload, headers=self._headers, allow_redirects=False
            ) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"webhook {self.name}: HTTP {response.status}")
        except TimeoutError as e:
            seconds = self._timeout.total
            raise DeliveryError(f"webhook {self.name}: no answer within {seconds}s") from e
        except aiohttp.ClientError as e:
            # str(e) of some ClientErrors holds the whole URL (with its token): name the
            # errno ("Connection refused") or the error type instead
            errno = e.errno if isinstance(e, aiohttp.ClientOSError) else None
            reason = os.strerror(errno) if errno else type(e).__name__
            raise DeliveryError(f"webhook {self.name}: {reason}") from e

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
