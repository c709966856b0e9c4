"""The one Protocol every notification channel implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from meshmon.alerts.model import Alert


class DeliveryError(Exception):
    """A notification did not go out (receiver down, refused, timed out); retried later."""


class Notifier(Protocol):
    """A channel: webhook, email, apprise. Built from one `[[notifiers]]` table."""

    name: str

    async def send(self, alerts: Sequence[Alert], recipient: str | None = None) -> None:
        """Deliver one alert, or several as one digest; raise DeliveryError on failure.

        `recipient` overrides the configured addressee (owner notices by email)."""

    async def close(self) -> None:
        """Release connections."""
