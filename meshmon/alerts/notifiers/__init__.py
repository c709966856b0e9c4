"""Notification channels behind one Protocol (`base.Notifier`), chosen by `type` in config."""

from __future__ import annotations

from collections.abc import Sequence

from meshmon.alerts.notifiers.apprise_notifier import AppriseNotifier
from meshmon.alerts.notifiers.base import DeliveryError, Notifier
from meshmon.alerts.notifiers.email import EmailNotifier
from meshmon.alerts.notifiers.webhook import WebhookNotifier
from meshmon.config import NotifierConfig

__all__ = [
    "AppriseNotifier",
    "DeliveryError",
    "EmailNotifier",
    "Notifier",
    "WebhookNotifier",
    "build_notifiers",
]


def build_notifiers(configs: Sequence[NotifierConfig]) -> dict[str, Notifier]:
    """One notifier per `[[notifiers]]` table, keyed by its name."""
    built: dict[str, Notifier] = {}
    for config in configs:
        if config.type == "webhook":
            built[config.name] = WebhookNotifier(config)
        elif config.type == "email":
            built[config.name] = EmailNotifier(config)
        else:
            built[config.name] = AppriseNotifier(config)
    return built
