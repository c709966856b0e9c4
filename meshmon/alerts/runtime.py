"""The alerting side of the collector: from the core's incident changes to notices.

`Alerting` follows the core's change log and hands each `IncidentsChanged` to the alert
engine (hold-down, silences, reminders, routing), which submits notices to the dispatcher
(delivery, retries) and logs them in the alert store. The engine's state is saved with
the core's health snapshot (`save_state`), so both resume together. The service lets it
catch up after each batch and tick and calls `tick()` for the engine's timers; the web
API reads outages, weak points, the alert log and silences here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from meshmon.alerts.delivery import Dispatcher
from meshmon.alerts.engine import AlertEngine
from meshmon.alerts.model import Alert, Silence
from meshmon.alerts.notifiers import build_notifiers
from meshmon.alerts.store import AlertStore
from meshmon.config import Config
from meshmon.model.addresses import safe_text
from meshmon.model.changelog import BridgePresence, IncidentsChanged
from meshmon.model.core import Core
from meshmon.model.health import Change, Incident
from meshmon.model.health.weak_points import WeakPointDetector
from meshmon.sinks.base import Event
from meshmon.storage.database import StorageError
from meshmon.tasks import Spawn, plain_task

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 1.0
"""how often the service saves the alert state when incidents changed"""
CUT_LIST_MAX = 200
"""node ids listed per weak point in the API (the count is always exact)"""


class Alerting:
    """Alert routing and delivery for the incidents of one collector's core."""

    def __init__(
        self,
        config: Config,
        core: Core,
        emit_event: Callable[[Event], None],
        clock: Callable[[], float] = time.time,
        spawn: Spawn = plain_task,
    ) -> None:
        self.config = config
        self.core = core
        self.health = core.health
        self.cursor = core.log.follow()
        self.clock = clock
        self.emit_event = emit_event
        self.spawn = spawn
        """runs the alert log writes (the service's task group)"""
        self.store = AlertStore(config.storage.path, clock=clock)
        self.notifiers = build_notifiers(config.notifiers)
        self.dispatcher = Dispatcher(
            self.store, self.notifiers, {n.name: n.rate_per_minute for n in config.notifiers},
            clock=clock, retry_max_s=config.alerts.retry_max_s,
            give_up_after_s=config.alerts.give_up_after_h * 3600.0,
        )  # fmt: skip
        self.engine = AlertEngine(
            config.alerts, config.notifiers, config.routes, core.topology.nodes,
            submit=self.dispatcher.submit, log_alert=self._log_alert, emit=self._emit,
            public_url=config.http.public_url,
        )  # fmt: skip
        self._saved: dict[str, Any] = {}
        self._state_dirty = False
        self._save_failing = False
        self._writes: set[asyncio.Task[Any]] = set()
        self.log_rows_lost = 0
        """alerts sent but not in the alert log: the store could not write them"""

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> dict[str, Any] | None:
        """Open the alert tables; the saved health snapshot for `Core.restore` (None on
        the first start)."""
        await self.store.start()
        self._saved = await self.store.load_engine_state() or {}
        health: dict[str, Any] | None = self._saved.get("health")
        return health

    async def start(self) -> None:
        """Resume the engine on the core's restored incidents, and undelivered notices."""
        self.engine.restore(self._saved.get("engine"), self.health.incidents)
        self.engine.set_silences(await self.store.silences(self.clock()))
        await self.dispatcher.start()
        if self._saved:
            log.info("alerting resumed: %d open incidents", len(self.health.incidents))

    async def stop(self) -> None:
        """Save state, stop delivery (undelivered notices stay queued in SQLite)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.save_state()
        await self.dispatcher.close()
        for notifier in self.notifiers.values():
            with contextlib.suppress(Exception):
                await notifier.close()
        await self.store.close()

    # ------------------------------------------------------------------ inputs
    def catch_up(self) -> None:
        """Hand the incident changes logged since the last call to the engine."""
        read = self.cursor.read()
        if read.reset:
            log.error("alerting fell %d change log entries behind; resyncing with the "
                      "open incidents", read.lost)
            self._resync(self.clock())
        for entry in read.entries:
            if isinstance(entry, IncidentsChanged):
                self.engine.handle(entry.changes, entry.at)
                self._state_dirty = True
            elif isinstance(entry, BridgePresence):
                self._state_dirty = True  # the bridges' states are saved with ours

    def tick(self, now: float) -> None:
        """Send what waited for its hold-down or a silence; reminders."""
        self.engine.tick(now)

    def _resync(self, now: float) -> None:
        """Tell the engine what it missed: confirmed open incidents it does not track,
        and tracked ones that are no longer open."""
        open_ = {i.id: i for i in self.health.incidents.values() if i.confirmed}
        tracked = self.engine.tracked
        changes = [Change("opened", i) for i_id, i in open_.items() if i_id not in tracked]
        for i_id, t in list(tracked.items()):
            if i_id not in open_:
                if t.incident.ended_at is None:
                    t.incident.ended_at = now
                changes.append(Change("resolved", t.incident))
        self.engine.handle(changes, now)
        self._state_dirty = True

    # ------------------------------------------------------------------ API
    def outages(self) -> list[dict[str, Any]]:
        """Open outages with cause and affected nodes (node ids and times only: public)."""
        return [self._incident_view(i) for i in self.health.outages()]

    def incidents(self) -> list[dict[str, Any]]:
        """Every open, confirmed incident (maintainers)."""
        found = [i for i in self.health.incidents.values() if i.confirmed]
        return [self._incident_view(i) for i in sorted(found, key=lambda i: i.started_at)]

    def weak_points(self) -> dict[str, Any]:
        """Articulation points and bridges with the nodes each would cut off, fading links."""
        detector = self.health.detector(WeakPointDetector)
        cuts = detector.cuts if detector.cuts is not None else detector.compute(self.clock())
        nodes = sorted(cuts.node_cuts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        links = sorted(cuts.link_cuts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        # a long chain makes the lists quadratic in size: each is capped, counts are exact
        return {
            "computed_at": detector.cuts_at,
            "nodes": [{"node": n, "cut_off": cut[:CUT_LIST_MAX], "cut_off_count": len(cut)}
                      for n, cut in nodes],
            "links": [{"a": a, "b": b, "cut_off": cut[:CUT_LIST_MAX], "cut_off_count": len(cut)}
                      for (a, b), cut in links],
            "without_gateway": cuts.unreachable,
            "fading_links": [{**f, "iface": safe_text(f["iface"])}
                             for f in self.health.fading_links()],
        }

    async def alert_log(self, since: float, limit: int) -> list[dict[str, Any]]:
        return await self.store.alerts(since, limit)

    async def silences(self, include_expired: bool = False) -> list[Silence]:
        return await self.store.silences(self.clock(), include_expired)

    async def add_silence(self, silence: Silence) -> Silence:
        saved = await self.store.add_silence(silence)
        await self._reload_silences()
        return saved

    async def end_silence(self, silence_id: int) -> bool:
        ended = await self.store.end_silence(silence_id, self.clock())
        await self._reload_silences()
        return ended

    # ------------------------------------------------------------------ internals
    def _incident_view(self, inc: Incident) -> dict[str, Any]:
        alert = self.engine.alert(inc, "firing", self.clock())
        view = alert.to_payload()
        for private in ("tags", "sent_at", "reminder", "status", "url"):
            view.pop(private, None)
        return view

    async def _reload_silences(self) -> None:
        self.engine.set_silences(await self.store.silences(self.clock()))

    def _log_alert(self, alert: Alert, notifiers: list[str], silenced: bool) -> None:
        task = self.spawn(self._write_log(alert, notifiers, silenced), "alert-log")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_log(self, alert: Alert, notifiers: list[str], silenced: bool) -> None:
        try:
            await self.store.log_alert(alert, notifiers, silenced)
        except StorageError as exc:  # the alert went out; only its log row is missing
            self.log_rows_lost += 1
            log.warning("an alert is missing from the alert log (%d so far): %s",
                        self.log_rows_lost, exc)
        except Exception as exc:
            log.error("alert log write failed: %s", exc)

    def _emit(self, alert: Alert) -> None:
        cause = ",".join(alert.cause_nodes + [str(ln) for ln in alert.cause_links])
        fields: dict[str, float | int | str | bool] = {
            "id": alert.id, "status": alert.status, "severity": alert.severity,
            "cause": cause, "affected": len(alert.affected), "reminder": alert.reminder,
        }  # fmt: skip
        if alert.duration_s is not None:
            fields["duration_s"] = alert.duration_s
        node = alert.cause_nodes[0] if alert.cause_nodes else None
        self.emit_event(Event(alert.sent_at, alert.kind, node, alert.summary, fields))

    async def save_state(self, only_if_changed: bool = False) -> None:
        """Save the core's health snapshot with the engine's state (both resume together);
        with `only_if_changed`, only when incidents changed since the last save. While
        the database cannot be written the state stays in memory and is saved later."""
        if only_if_changed and not self._state_dirty:
            return
        self._state_dirty = False
        try:
            await self.store.save_engine_state(
                {"health": self.core.snapshot(), "engine": self.engine.snapshot()}
            )
        except StorageError as exc:  # kept in memory, saved once it can be
            self._state_dirty = True
            if not self._save_failing:
                log.warning("cannot save the alert state (retrying every %g s): %s",
                            SAVE_INTERVAL_S, exc)
            self._save_failing = True
            return
        if self._save_failing:
            log.warning("alert state saved again")
            self._save_failing = False
