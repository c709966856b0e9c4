"""Raw MQTT messages to wire models: what does not validate is counted and logged, not raised.

Every dropped message counts in `meshmon_rejected_total{reason=…}`; it is logged with its
topic and reason once per node and reason per `REJECT_LOG_INTERVAL_S`, so a broken
agent cannot flood the log.
"""

from __future__ import annotations

import logging

from meshmon.metrics import Metrics
from meshmon.model.fastwire import Message, decode
from meshmon.model.plaintext import one_line
from meshmon.model.wire import Rejected

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S = 60.0


class Decoder:
    """Decodes the node topics under one prefix; counts and logs what it drops."""

    def __init__(self, prefix: str, metrics: Metrics) -> None:
        self.prefix = prefix
        self.metrics = metrics
        self._logged: dict[tuple[str, str], float] = {}

    def decode(self, topic: str, payload: bytes, received_at: float) -> Message | None:
        """The message, or None when it was dropped (counted, maybe logged)."""
        try:
            return decode(self.prefix, topic, payload)
        except Rejected as rej:
            self.rejected(topic, rej.reason, rej.detail, received_at)
            return None

    def rejected(self, topic: str, reason: str, detail: str, now: float) -> None:
        """Count one dropped message and log it unless its node and reason were logged
        within the interval."""
        self.metrics.inc("meshmon_rejected_total", reason=reason)
        parts = topic.split("/")
        node = parts[-2] if len(parts) >= 2 else "?"
        key = (node, reason)
        if now - self._logged.get(key, 0.0) >= REJECT_LOG_INTERVAL_S:
            self._logged[key] = now
            # the topic and the reason may quote the payload: no line breaks or escapes
            log.warning("dropped message on %s (%s): %s", one_line(topic[:200]), reason,
                        one_line(detail))
