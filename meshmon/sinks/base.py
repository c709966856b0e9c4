"""The one Protocol every storage backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from meshmon.model.fastwire import AnyReport


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened (outage, recovery, alert, node online/offline)."""

    ts: float
    kind: str
    node: str | None = None
    summary: str = ""
    fields: dict[str, float | int | str | bool] = field(default_factory=dict)


class Sink(Protocol):
    """A destination for samples. `write_*` never block and never raise: they enqueue."""

    name: str

    @property
    def reports_settled(self) -> int:
        """Reports whose rows have all left the queue, oldest first: written, or dropped
        and counted (the collector acknowledges a report to the broker once it is settled)."""
        ...

    async def start(self) -> None:
        """Open connections and start the background flusher."""

    def behind(self) -> bool:
        """Whether ingest should wait: so many reports wait for writes that succeed that
        the backlog had better stay in the broker (never while the sink fails: then it
        drops and counts what does not fit)."""
        ...

    def write_report(self, report: AnyReport, received_at: float,
                     dsts: Sequence[str | None]) -> None:
        """Queue one report; `dsts[i]` is the resolved peer node id of `report.links[i]`."""

    def write_event(self, event: Event) -> None:
        """Queue one event."""

    async def flush(self) -> None:
        """Write everything queued so far (tests and shutdown use it)."""

    async def close(self) -> None:
        """Flush what can be flushed and release resources."""

    def stats(self) -> dict[str, float]:
        """Counters and gauges for /metrics, e.g. queued, written, dropped, write latency."""
        ...


MAX_CLOCK_SKEW_S = 600.0
"""Default bound on |agent ts - received_at| beyond which the collector's clock is used."""


def sample_time(agent_ts: float, received_at: float, max_skew_s: float = MAX_CLOCK_SKEW_S) -> float:
    """The time to store a sample under: the agent's `ts`, unless its clock is off by more
    than `max_skew_s` (a router without NTP reporting 1970), then `received_at`."""
    if abs(agent_ts - received_at) > max_skew_s:
        return received_at
    return agent_ts
