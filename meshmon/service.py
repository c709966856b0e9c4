"""The collector (`--role all` or `core`): sources in, the core, effects out — and the
tasks that keep it going.

MQTT messages go through the decoder into `core.apply`: status and info as they arrive
(their own connection, ahead of any backlog of reports), reports in slices; a tick every
`TICK_INTERVAL_S` lets time pass (`core.tick`). Each call's effects go to the sinks at
once (a report's samples, online/offline events); after each batch and tick the
followers of the core's change log catch up: the SQLite state saver, alerting and the
web (documents, live views). A report is acknowledged to the broker once SQLite has
stored it (MQTT 5), so a killed collector loses nothing the broker does not keep. Every
task runs in one `asyncio.TaskGroup` owned by the running service: the MQTT connections,
the periodic work (tick, state saves, alert state saves, analysis) and the components'
own tasks (sink flushers, alert delivery, installer renewals: `meshmon.tasks.spawn`). A
task that fails is logged and stops the collector (`failed`, /healthz 503).

`--role core` reads every report too (graph, health, alerts, web, SQLite) but leaves the
time series to the writers (`meshmon.writer`); it still writes events to InfluxDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from meshmon.admin_token import admin_token_for
from meshmon.alerts.runtime import SAVE_INTERVAL_S, Alerting
from meshmon.config import Config
from meshmon.errors import StartupError
from meshmon.ingest.broker import EmbeddedBroker
from meshmon.ingest.decode import Decoder
from meshmon.ingest.mqtt import (
    BrokerAddress,
    MqttIngest,
    RawMessage,
    Subscriptions,
    control_topics,
    mqtt_version,
    node_topics,
)
from meshmon.loopwatch import LoopWatch
from meshmon.metrics import Metrics
from meshmon.model.analysis import gateway_cuts
from meshmon.model.changelog import Follower
from meshmon.model.core import Core, CoreSettings
from meshmon.model.fastwire import Report
from meshmon.model.health import HealthSettings
from meshmon.model.health.weak_points import WeakPointDetector
from meshmon.model.topology import Topology
from meshmon.model.wire import BridgeStatus, Info, Status
from meshmon.service_metrics import register_metrics
from meshmon.sinks import Sink, build_sinks
from meshmon.sinks.feed import SinkFeed, StateSaver
from meshmon.sinks.sqlite import SqliteStore
from meshmon.storage.sessions import SessionStore
from meshmon.tasks import TaskGroupOwner, owned_by
from meshmon.web.app import create_app, make_runner
from meshmon.web.context import WebContext
from meshmon.web.http_first import HttpFirst, HttpFirstSite
from meshmon.web.http_first import install as install_http_first
from meshmon.web.live import LiveHub

log = logging.getLogger(__name__)

STATE_SAVE_INTERVAL_S = 0.1
STATE_SAVE_NODES_PER_TICK = 200
"""current state is saved in slices (and all at stop), 2,000 nodes a second at most: a
slice of 3,000 every 2 s held the loop for up to 0.6 s (HTTP waited); samples are
written every second"""
TICK_INTERVAL_S = 0.1
"""expiry, root cause and due notices: a last will becomes an alert within group_wait_s
plus about one tick"""
ANALYSIS_INTERVAL_S = 60.0
MAX_DELIVERY_LAG_S = 600.0
"""while reports wait (here or in the broker), silence is judged as of their age, up to
this (agents with wrong clocks must not stop every timeout)"""
ROLES = ("all", "core")


def core_settings(config: Config) -> CoreSettings:
    """The core's settings from the [topology], [health] and [alerts] sections."""
    t, h, a = config.topology, config.health, config.alerts
    return CoreSettings(
        offline_after_intervals=t.offline_after_intervals, link_timeout_s=t.link_timeout_s,
        offline_after_s=t.offline_after_s,
        health=HealthSettings(
            signal_dbm=h.signal_dbm, snr_db=h.snr_db, tq=h.tq, etx=h.etx,
            baseline_drop_db=h.baseline_drop_db, baseline_window_h=h.baseline_window_h,
            baseline_min_h=h.baseline_min_h, hysteresis_db=h.hysteresis_db,
            hysteresis_tq=h.hysteresis_tq, hysteresis_etx=h.hysteresis_etx,
            samples_to_change=h.samples_to_change, group_wait_s=a.group_wait_s,
            flap_changes=a.flap_changes, flap_window_s=a.flap_window_s,
            weak_point_alerts=a.weak_points, weak_point_interval_s=ANALYSIS_INTERVAL_S,
        ),
    )  # fmt: skip


class Service:
    """One collector: embedded or external broker, the core, SQLite (+ InfluxDB), HTTP."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time,
                 role: str = "all") -> None:
        if role not in ROLES:
            raise ValueError(f"role {role!r}: the collector is {' or '.join(ROLES)}")
        self.config = config
        self.clock = clock
        self.role = role
        self.metrics = Metrics()
        self.core = Core(core_settings(config))
        self.core.health.detector(WeakPointDetector).computed_outside = True  # `_analyse`
        self.decoder = Decoder(config.mqtt.topic_prefix, self.metrics)
        self.sinks = build_sinks(config, clock)
        self.store = next((s for s in self.sinks if isinstance(s, SqliteStore)), None)
        # the core leaves the time series to its writers; events are its alone
        report_sinks = self.sinks if role == "all" else [self.store] if self.store else []
        self._report_sinks = report_sinks
        self.feed = SinkFeed(report_sinks, event_sinks=self.sinks,
                             ack_sinks=[self.store] if self.store else [])
        self.saver = (StateSaver(self.core.log.follow(), self.core.topology, self.store)
                      if self.store is not None else None)
        self.alerting = Alerting(config, self.core, self.feed.emit, clock, spawn=self.spawn)
        self.followers: list[Follower] = [self.alerting]
        """consumers of the change log, caught up after each ingest batch and tick"""
        if self.saver is not None:
            self.followers.append(self.saver)
        self.admin_token = config.http.admin_token
        self.sessions = SessionStore(config.storage.path,
                                     lifetime_s=config.http.session_lifetime_h * 3600.0,
                                     clock=clock)
        self.broker: EmbeddedBroker | None = None
        self.ingest: MqttIngest | None = None
        self.mqtt_address = BrokerAddress(config.mqtt.host, config.mqtt.port)
        self.web: WebContext | None = None
        self._runner: web.AppRunner | None = None
        self._sinks_started: list[Sink] = []
        self._alerting_open = False
        self.tasks = TaskGroupOwner("collector", log)
        """the TaskGroup every task of the running collector runs in"""
        self._own: list[asyncio.Task[Any]] = []
        """ingest and the periodic tasks (stopped first)"""
        self._last_tick = 0.0
        self._quiet_as_of = 0.0
        self._delivery_lag = 0.0
        """median age (agent ts to received) of the last batch of reports"""
        self.http_port = 0
        register_metrics(self)
        self.http_first = HttpFirst()
        """HTTP requests go before the next slice of reports (`MqttIngest` asks it)"""
        self.loop_watch = LoopWatch(self.metrics, trace=bool(os.environ.get("MESHMON_LOOP_TRACE")))

    @property
    def topology(self) -> Topology:
        """The core's topology (read only: changes go through `core.apply`)."""
        return self.core.topology

    @property
    def live(self) -> LiveHub:
        """Who watches which node live (the web's hub)."""
        assert self.web is not None, "the web is not started"
        return self.web.live

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load state, start sinks, broker, MQTT ingest, HTTP; return when all listen.

        On failure, what was started is stopped again and the error raised."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        # the task group first: every component's background task is created in it
        await self.tasks.open()
        with owned_by(self.spawn):
            await self._start_components()

    async def _start_components(self) -> None:
        cfg = self.config
        for sink in self.sinks:
            await sink.start()
            self._sinks_started.append(sink)
        nodes, links = await self.store.load_state() if self.store is not None else ([], [])
        health = await self.alerting.open()
        self._alerting_open = True
        self.core.restore(nodes, links, health, self.clock())
        if nodes:
            log.info("state restored from %s: %d nodes, %d links",
                     cfg.storage.path, len(nodes), len(links))
        await self.alerting.start()
        self._follow()  # the restore's re-keyed links (the saver deletes their old rows)
        self.admin_token = self.admin_token or admin_token_for(cfg.storage.path)
        await self.sessions.start()
        # HTTP binds first: a taken port fails start-up before any MQTT connection exists
        await self._start_http()
        if cfg.mqtt.broker == "embedded":
            self.broker = EmbeddedBroker(cfg.mqtt)
            await self.broker.start()
            self.mqtt_address = BrokerAddress(self.broker.host, self.broker.port)
        prefix = cfg.mqtt.topic_prefix
        self.ingest = MqttIngest(
            cfg.mqtt, self.mqtt_address, self.on_batch, self.on_control,
            Subscriptions(node_topics(prefix, "report")[0], control_topics(prefix)),
            version=mqtt_version(self.broker is not None), clock=self.clock,
            hold=self._sinks_behind, yield_to=self.http_first.holds,
            knocking=self.http_first.knocking)
        spawn = self.spawn
        self._own = [
            spawn(self.ingest.run(), "mqtt"),
            spawn(self._ticking(), "tick"),
            spawn(self._every(STATE_SAVE_INTERVAL_S, self._save_state), "save-state"),
            spawn(self._every(SAVE_INTERVAL_S, self._save_alert_state), "save-alert-state"),
            spawn(self._every(ANALYSIS_INTERVAL_S, self._analyse), "analyse"),
            spawn(self.loop_watch.run(), "loop-watch"),
        ]

    @property
    def failed(self) -> asyncio.Event:
        """Set when a task of the collector failed (it stopped: `failure` says why)."""
        return self.tasks.failed

    @property
    def failure(self) -> str:
        """Which task failed and how, or empty."""
        return self.tasks.failure

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` as a task of the collector's TaskGroup (`TaskGroupOwner.spawn`)."""
        return self.tasks.spawn(coro, name)

    async def stop(self) -> None:
        """Stop in reverse order, flushing state and sinks."""
        if self.ingest is not None and self._own:
            # what was taken is stored and acknowledged before the connections close
            # (closed history buckets wait in the journal: storing ~245,000 of them after
            # a 5-minute boundary would hold the stop for ~37 s)
            self.ingest.reports.pause()
            if self.store is not None and self._sinks_started:
                with contextlib.suppress(Exception):
                    await self.store.flush(closed_buckets=False)
            self._release_acks()
        # ingest and the periodic work end first; the components' own tasks (sink
        # flushers, alert delivery) end with each component's close below
        own, self._own = self._own, []
        for task in own:
            task.cancel()
        if own:
            await asyncio.wait(own)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.sessions.close()  # (a no-op when it never started)
        if self._alerting_open:
            self._alerting_open = False
            try:
                await self.alerting.stop()
            except Exception:
                log.exception("stopping alerting failed")
        if self.saver is not None and self._sinks_started:
            self.saver.save(limit=self.saver.pending + len(self.topology.nodes))
        for sink in self._sinks_started:
            try:
                await sink.close()
            except Exception:
                log.exception("closing sink %s failed", sink.name)
        self._sinks_started = []
        if self.broker is not None:
            await self.broker.stop()
        await self.tasks.close()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def http_url(self) -> str:
        host = self.config.http.host
        return f"http://{host}:{self.http_port}"

    async def _start_http(self) -> None:
        ctx = WebContext(
            core=self.core, config=self.config, metrics=self.metrics,
            clock=self.clock, store=self.store, send_command=self.send_command,
            alerting=self.alerting, admin_token=lambda: self.admin_token,
            sessions=self.sessions, spawn=self.spawn, failure=lambda: self.failure,
        )
        self.web = ctx
        self.followers.append(ctx)
        app = create_app(ctx)
        install_http_first(app, self.http_first)
        self._runner = make_runner(app)
        await self._runner.setup()
        http = self.config.http
        site = HttpFirstSite(self._runner, http.host, http.port, self.http_first)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"HTTP cannot listen on {http.host}:{http.port} ({exc.strerror}); "
                "choose another [http] port."
            ) from None
        sockets = site.sockets
        self.http_port = sockets[0].getsockname()[1] if sockets else self.config.http.port
        log.info("HTTP on %s", self.http_url)

    def send_command(self, node: str, payload: bytes) -> None:
        """Publish a command to one agent (`…/NODE/cmd`, QoS 1, not retained)."""
        if self.ingest is not None:
            prefix = self.config.mqtt.topic_prefix
            self.ingest.publish(f"{prefix}/v1/node/{node}/cmd", payload)

    # ------------------------------------------------------------------ sources in
    def _sinks_behind(self) -> bool:
        """Whether a sink of every report is behind (`Sink.behind`): ingest waits, and
        the backlog stays in the broker."""
        return any(sink.behind() for sink in self._report_sinks)

    def on_batch(self, batch: list[RawMessage]) -> None:
        """Decode and apply a batch of reports (MQTT messages), then let the followers
        catch up; each one's acknowledgement waits until SQLite has stored it."""
        decode, apply, inc = self.decoder.decode, self.core.apply, self.metrics.inc
        write, hold = self.feed.write, self.feed.hold
        lags: list[float] = []
        try:
            for topic, payload, received_at, token, redelivered in batch:
                message = decode(topic, payload, received_at)
                if message is None:
                    hold(token)
                    continue
                try:
                    effects = apply(message, received_at, redelivered)
                except Exception:  # a bug must not stop ingest; count it and go on
                    log.exception("applying %s failed", topic)
                    inc("meshmon_rejected_total", reason="internal")
                    hold(token)
                    continue
                write(effects, message)
                hold(token)
                if type(message) is Report:  # counted once a batch (below)
                    lags.append(received_at - message.ts)
                else:
                    inc(_RECEIVED[type(message)])
        finally:
            if lags:
                inc(_RECEIVED[Report], float(len(lags)))
        if lags:
            lags.sort()
            self._delivery_lag = lags[len(lags) // 2]
        self._follow()

    def on_control(self, batch: list[RawMessage]) -> None:
        """Status and info, applied as they arrive (acknowledged on receipt: retained)."""
        decode, apply, inc = self.decoder.decode, self.core.apply, self.metrics.inc
        write = self.feed.write
        for topic, payload, received_at, _, _ in batch:
            message = decode(topic, payload, received_at)
            if message is None:
                continue
            try:
                effects = apply(message, received_at)
            except Exception:  # a bug must not stop ingest; count it and go on
                log.exception("applying %s failed", topic)
                inc("meshmon_rejected_total", reason="internal")
                continue
            write(effects, message)
            inc(_RECEIVED[type(message)])
        self._follow()

    def _release_acks(self) -> None:
        """Acknowledge the reports SQLite has stored (or dropped and counted)."""
        if self.ingest is not None:
            self.ingest.ack(self.feed.settled_tokens())

    def _follow(self) -> None:
        for follower in self.followers:
            try:
                follower.catch_up()
            except Exception:  # one consumer's bug must not stop ingest nor the others
                log.exception("%s could not follow the change log", type(follower).__name__)

    # ------------------------------------------------------------------ time
    async def _every(self, interval: float, fn: Callable[[], Awaitable[None] | None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                result = fn()
                if result is not None:
                    await result
            except Exception:
                log.exception("periodic task %s failed", getattr(fn, "__name__", fn))

    async def _ticking(self) -> None:
        """A tick every `TICK_INTERVAL_S`, and one right when a pending outage's group
        wait ends (its alert does not wait for the next regular tick)."""
        while True:
            now = self.clock()
            due = self.core.health.next_deadline() - now
            # (at least 10 ms: a test's clock that stands still must not make it spin)
            await asyncio.sleep(max(0.01, due) if 0.0 <= due < TICK_INTERVAL_S
                                else TICK_INTERVAL_S)
            # an answer under way goes first (at most 50 ms): a tick holds the loop up to
            # ~20 ms of CPU, several times that in wall time on a busy machine
            await self.http_first.after_answers()
            try:
                self._tick()
            except Exception:
                log.exception("the tick failed")

    def _tick(self) -> None:
        now = self.clock()
        # judge silence as of the oldest message we have not looked at yet: when the
        # collector falls behind (a backlog, a stalled loop), reports waiting in our queue
        # or socket must not make their nodes look offline
        late = max(0.0, now - self._last_tick - TICK_INTERVAL_S) if self._last_tick else 0.0
        self._last_tick = now
        backlog = 0.0
        if self.ingest is not None:
            backlog = self.ingest.backlog_s(now)
            if self.ingest.queue_depth:  # behind: the broker may hold older ones still
                backlog = max(backlog, min(self._delivery_lag, MAX_DELIVERY_LAG_S))
        self._quiet_as_of = max(self._quiet_as_of, now - max(late, backlog))
        self.feed.write(self.core.tick(now, quiet_as_of=self._quiet_as_of))
        self._follow()
        self.alerting.tick(now)
        self._release_acks()

    def _save_state(self) -> None:
        """Hand the oldest changed nodes (and their outgoing links) to the store: at most
        a slice per call, so a large network never stalls the loop; `stop()` saves all."""
        if self.saver is not None:
            self.saver.save(STATE_SAVE_NODES_PER_TICK)

    async def _save_alert_state(self) -> None:
        await self.alerting.save_state(only_if_changed=True)

    async def _analyse(self) -> None:
        # the loop copies the graph (~20 ms at 35,000 nodes); the analysis of the copy
        # and the weak points (hundreds of ms each) run in a thread, so HTTP, ingest and
        # alerts go on meanwhile; the weak points' incidents go out with the next tick
        weak = self.core.health.detector(WeakPointDetector)
        adj, gateways = weak.known_mesh_copy()
        weak.take(await asyncio.to_thread(gateway_cuts, adj, gateways), self.clock())
        analysis = await asyncio.to_thread(self.core.topology.analysis_input().analyse)
        m = self.metrics
        m.set("meshmon_analysis_duration_ms", analysis.duration_ms)
        m.set("meshmon_components", float(len(analysis.components)))
        m.set("meshmon_nodes_reaching_gateway", float(len(analysis.reach_gateway)))
        m.set("meshmon_articulation_points", float(len(analysis.articulation_points)))
        m.set("meshmon_bridges", float(len(analysis.bridges)))


_RECEIVED: dict[type, str] = {
    Report: "meshmon_reports_received_total",
    Status: "meshmon_status_received_total",
    Info: "meshmon_info_received_total",
    BridgeStatus: "meshmon_bridge_status_received_total",
}
