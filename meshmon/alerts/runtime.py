"""The alerting side of the collector: health core + engine + store + delivery, wired.

`Service` owns one `Alerting`: it reports node and link changes to it and calls `tick()`
every `TICK_S`; the web API reads outages, weak points, the alert log and silences here.
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
from meshmon.model.analysis import GatewayCuts, gateway_cuts
from meshmon.model.health import Change, Health, HealthSettings, Incident
from meshmon.model.state import LinkKey
from meshmon.model.topology import Topology
from meshmon.sinks.base import Event
from meshmon.storage.database import StorageError

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 1.0
CUT_LIST_MAX = 200
"""node ids listed per weak point in the API (the count is always exact)"""
MIN_EVALUATE_GAP_S = 0.05
"""root cause runs at most this often, or 5× its last duration apart on a large mesh"""


def health_settings(config: Config) -> HealthSettings:
    """The health core's settings from the [health] and [alerts] sections."""
    h, a = config.health, config.alerts
    return HealthSettings(
        signal_dbm=h.signal_dbm, snr_db=h.snr_db, tq=h.tq, etx=h.etx,
        baseline_drop_db=h.baseline_drop_db, baseline_window_h=h.baseline_window_h,
        baseline_min_h=h.baseline_min_h, hysteresis_db=h.hysteresis_db,
        hysteresis_tq=h.hysteresis_tq, hysteresis_etx=h.hysteresis_etx,
        samples_to_change=h.samples_to_change, group_wait_s=a.group_wait_s,
        flap_changes=a.flap_changes, flap_window_s=a.flap_window_s,
    )  # fmt: skip


class Alerting:
    """Outage detection and alert delivery for one collector."""

    def __init__(
        self,
        config: Config,
        topology: Topology,
        emit_event: Callable[[Event], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.topology = topology
        self.clock = clock
        self.emit_event = emit_event
        self.health = Health(topology, health_settings(config))
        self.store = AlertStore(config.storage.path, clock=clock)
        self.notifiers = build_notifiers(config.notifiers)
        self.dispatcher = Dispatcher(
            self.store, self.notifiers, {n.name: n.rate_per_minute for n in config.notifiers},
            clock=clock, retry_max_s=config.alerts.retry_max_s,
            give_up_after_s=config.alerts.give_up_after_h * 3600.0,
        )  # fmt: skip
        self.engine = AlertEngine(
            config.alerts, config.notifiers, config.routes, topology.nodes,
            submit=self.dispatcher.submit, log_alert=self._log_alert, emit=self._emit,
            public_url=config.http.public_url,
        )  # fmt: skip
        self.cuts: GatewayCuts | None = None
        self.cuts_at = 0.0
        self._last_evaluate = -1e18
        self._state_dirty = False
        self._writes: set[asyncio.Task[Any]] = set()
        self.log_rows_lost = 0
        """alerts sent but not in the alert log: the store could not write them"""
        self._saver: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the alert tables, resume incidents and undelivered notices."""
        await self.store.start()
        now = self.clock()
        state = await self.store.load_engine_state() or {}
        self.health.restore(state.get("health"), now)
        self.engine.restore(state.get("engine"), self.health.incidents)
        self.engine.set_silences(await self.store.silences(now))
        await self.dispatcher.start()
        self._saver = asyncio.create_task(self._save_loop(), name="alerting-save")
        if state:
            log.info("alerting resumed: %d open incidents", len(self.health.incidents))

    async def stop(self) -> None:
        """Save state, stop delivery (undelivered notices stay queued in SQLite)."""
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._save_state()
        await self.dispatcher.close()
        for notifier in self.notifiers.values():
            with contextlib.suppress(Exception):
                await notifier.close()
        await self.store.close()

    # ------------------------------------------------------------------ inputs
    def node_changed(self, node: str, online: bool, now: float) -> None:
        self.health.node_changed(node, online, now)

    def links_removed(self, keys: list[LinkKey], now: float) -> None:
        if keys:
            self.health.links_removed(keys, now)

    def tick(self, now: float) -> None:
        """New link samples, root cause when something changed, notices that are due."""
        health = self.health
        changes = health.observe_links(self.topology.take_touched(), now)
        changes += health.presence_changed(self.topology.take_presence_changes())
        gap = max(MIN_EVALUATE_GAP_S, 5 * health.last_duration_ms / 1000.0)
        if health.due(now) and now - self._last_evaluate >= gap:
            self._last_evaluate = now
            changes += health.evaluate(now)
        self._apply(changes, now)
        self.engine.tick(now)

    def analysed(self, now: float) -> GatewayCuts:
        """Recompute who loses every gateway if one node or link fails (weak points)."""
        adj, gateways = self.health.known_mesh()
        self.cuts = gateway_cuts(adj, gateways)
        self.cuts_at = now
        if self.config.alerts.weak_points:
            self._apply(self.health.weak_point_changes(self.cuts, now), now)
        return self.cuts

    def _apply(self, changes: list[Change], now: float) -> None:
        if changes:
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
        now = self.clock()
        cuts = self.cuts if self.cuts is not None else self.analysed(now)
        nodes = sorted(cuts.node_cuts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        links = sorted(cuts.link_cuts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        # a long chain makes the lists quadratic in size: each is capped, counts are exact
        return {
            "computed_at": self.cuts_at,
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
        task = asyncio.get_running_loop().create_task(
            self.store.log_alert(alert, notifiers, silenced))
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, StorageError):  # the alert went out; only its log row is missing
            self.log_rows_lost += 1
            log.warning("an alert is missing from the alert log (%d so far): %s",
                        self.log_rows_lost, exc)
        elif exc is not None:
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

    async def _save_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(SAVE_INTERVAL_S)
            if self._state_dirty:
                try:
                    await self._save_state()
                except StorageError as exc:  # kept in memory, saved once it can be
                    self._state_dirty = True
                    if not failing:
                        log.warning("cannot save the alert state (retrying every %g s): %s",
                                    SAVE_INTERVAL_S, exc)
                    failing = True
                    continue
                except Exception:
                    log.exception("saving alert state failed")
                if failing:
                    log.warning("alert state saved again")
                    failing = False

    async def _save_state(self) -> None:
        self._state_dirty = False
        await self.store.save_engine_state(
            {"health": self.health.snapshot(), "engine": self.engine.snapshot()}
        )
