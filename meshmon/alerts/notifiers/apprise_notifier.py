"""Apprise: one notifier that reaches ntfy, Matrix, Telegram, Signal… through apprise URLs.

Apprise URLs embed their secrets (tokens, passwords), so they never appear in our errors,
and apprise's own INFO logging (which may name them) is turned down to WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import apprise

from meshmon.alerts import messages
from meshmon.alerts.model import Alert
from meshmon.alerts.notifiers.base import DeliveryError
from meshmon.config import NotifierConfig


class AppriseNotifier:
    """Sends each alert (or a digest) as one title + plain-text body to every URL."""

    def __init__(self, config: NotifierConfig) -> None:
        logging.getLogger("apprise").setLevel(logging.WARNING)
        self.name = config.name
        self._timeout_s = config.timeout_s
        self._apprise = apprise.Apprise()
        urls = [("url", config.url)] if config.url else []
        urls += [(f"urls[{i}]", url) for i, url in enumerate(config.urls)]
        for where, url in urls:
            if not self._apprise.add(url):
                raise ValueError(
                    f"notifier {config.name!r}: apprise cannot use {where} "
                    "(unknown scheme or missing parts; see the apprise docs for its form)"
                )

    async def send(self, alerts: Sequence[Alert], recipient: str | None = None) -> None:
        """Notify every URL; raise DeliveryError unless all of them accepted it.

        `recipient` is ignored: apprise URLs name their own addressees."""
        if not alerts:
            return
        if len(alerts) == 1:
            title, body = messages.title(alerts[0]), messages.body(alerts[0])
        else:
            title, body = messages.digest_title(alerts), messages.digest_body(alerts)
        result = await self._apprise.async_notify(
            body=body,
            title=title,
            notify_type=_notify_type(alerts),
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self._timeout_s,
        )
        try:
            if not result:
                # service names ("JSON", "ntfy") and statuses only: the URLs hold secrets
                failed = [f"{r.name} {r.status.name}" for r in result if not r]
                detail = ", ".join(failed) or result.status.name
                raise DeliveryError(f"apprise {self.name}: {detail}")
        finally:
            # results may keep their captured logs in temporary files
            result.close()

    async def close(self) -> None:
        """Nothing to release: apprise opens a connection per notification."""


def _notify_type(alerts: Sequence[Alert]) -> apprise.NotifyType:
    """Colour/icon for chat services: red for critical, yellow for warning, green when over."""
    firing = [a for a in alerts if a.status == "firing"]
    if not firing:
        return apprise.NotifyType.SUCCESS
    severities = {a.severity for a in firing}
    if "critical" in severities:
        return apprise.NotifyType.FAILURE
    if "warning" in severities:
        return apprise.NotifyType.WARNING
    return apprise.NotifyType.INFO
