"""The collector: owns the tasks that wire ingest → topology core → sinks and the web app."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from meshmon.admin_token import admin_token_for
from meshmon.alerts.runtime import Alerting
from meshmon.config import Config
from meshmon.errors import StartupError
from meshmon.ingest.broker import EmbeddedBroker
from meshmon.ingest.mqtt import BrokerAddress, MqttIngest, RawMessage
from meshmon.metrics import Metrics
from meshmon.model.plaintext import one_line
from meshmon.model.state import LinkKey
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Rejected, Report, Status, decode
from meshmon.sinks import build_sinks
from meshmon.sinks.base import Event, Sink
from meshmon.sinks.sqlite import SqliteStore
from meshmon.storage.sessions import SessionStore
from meshmon.web.app import WebContext, create_app, make_runner
from meshmon.web.live import LiveHub

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S = 60.0
STATE_SAVE_INTERVAL_S = 2.0
STATE_SAVE_NODES_PER_TICK = 3000
"""current state is saved in slices (and all at stop); samples are written every second"""
TICK_INTERVAL_S = 0.1
"""expiry, root cause and due notices: a last will becomes an alert within group_wait_s
plus about one tick"""
ANALYSIS_INTERVAL_S = 60.0


class Service:
    """One collector: embedded or external broker, topology, SQLite (+ InfluxDB), HTTP."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.topology = Topology(
            offline_after_intervals=config.topology.offline_after_intervals,
            link_timeout_s=config.topology.link_timeout_s,
            offline_after_s=config.topology.offline_after_s,
        )
        self.alerting = Alerting(config, self.topology, self._emit, clock)
        self.live = LiveHub()
        self.admin_token = config.http.admin_token
        self.sessions = SessionStore(config.storage.path,
                                     lifetime_s=config.http.session_lifetime_h * 3600.0,
                                     clock=clock)
        self.store: SqliteStore | None = None
        self.sinks: list[Sink] = []
        self.broker: EmbeddedBroker | None = None
        self.ingest: MqttIngest | None = None
        self._runner: web.AppRunner | None = None
        self._web: WebContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty_nodes: dict[str, None] = {}
        """nodes whose state or outgoing links changed since saved (insertion-ordered)"""
        self._removed_links: set[LinkKey] = set()
        self._reject_logged: dict[tuple[str, str], float] = {}
        self.http_port = 0
        self._alerting_started = False
        self._last_tick = 0.0
        self._expire_as_of = 0.0
        self._describe_metrics()

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
        cfg = self.config
        self.sinks = build_sinks(cfg)
        self.store = next((s for s in self.sinks if isinstance(s, SqliteStore)), None)
        for sink in self.sinks:
            await sink.start()
        if self.store is not None:
            nodes, links = await self.store.load_state()
            self.topology.restore(nodes, links, now=self.clock())
            log.info("state restored from %s: %d nodes, %d links",
                     cfg.storage.path, len(nodes), len(links))
        self.admin_token = self.admin_token or admin_token_for(cfg.storage.path)
        await self.alerting.start()
        self._alerting_started = True
        await self.sessions.start()
        # HTTP binds first: a taken port fails start-up before any MQTT connection exists
        await self._start_http()
        address = BrokerAddress(cfg.mqtt.host, cfg.mqtt.port)
        if cfg.mqtt.broker == "embedded":
            self.broker = EmbeddedBroker(cfg.mqtt)
            await self.broker.start()
            address = BrokerAddress(self.broker.host, self.broker.port)
        self.mqtt_address = address
        self.ingest = MqttIngest(cfg.mqtt, address, self._on_batch, clock=self.clock)
        await self.ingest.start()
        self._tasks = [
            asyncio.create_task(self._periodic(TICK_INTERVAL_S, self._tick), name="tick"),
            asyncio.create_task(
                self._periodic(STATE_SAVE_INTERVAL_S, self._save_state), name="save-state"
            ),
            asyncio.create_task(
                self._periodic(ANALYSIS_INTERVAL_S, self._analyse), name="analyse"
            ),
        ]

    async def stop(self) -> None:
        """Stop in reverse order, flushing state and sinks."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.ingest is not None:
            await self.ingest.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.sessions.close()  # (a no-op when it never started)
        if self._alerting_started:
            self._alerting_started = False
            try:
                await self.alerting.stop()
            except Exception:
                log.exception("stopping alerting failed")
        self._save_state(limit=len(self._dirty_nodes))
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:
                log.exception("closing sink %s failed", sink.name)
        if self.broker is not None:
            await self.broker.stop()

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
            topology=self.topology, config=self.config, metrics=self.metrics,
            clock=self.clock, store=self.store, send_command=self.send_command,
            alerting=self.alerting, admin_token=lambda: self.admin_token, live=self.live,
            sessions=self.sessions,
        )
        self._web = ctx
        self._runner = make_runner(create_app(ctx))
        await self._runner.setup()
        http = self.config.http
        site = web.TCPSite(self._runner, http.host, http.port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"HTTP cannot listen on {http.host}:{http.port} ({exc.strerror}); "
                "choose another [http] port."
            ) from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else self.config.http.port
        log.info("HTTP on %s", self.http_url)

    def send_command(self, node: str, payload: bytes) -> None:
        """Publish a command to one agent (`…/NODE/cmd`, QoS 1, not retained)."""
        if self.ingest is not None:
            prefix = self.config.mqtt.topic_prefix
            self.ingest.publish(f"{prefix}/v1/node/{node}/cmd", payload)

    # ------------------------------------------------------------------ ingest
    def _on_batch(self, batch: list[RawMessage]) -> None:
        prefix = self.config.mqtt.topic_prefix
        for topic, payload, received_at in batch:
            try:
                message = decode(prefix, topic, payload)
            except Rejected as rej:
                self._reject(topic, rej, received_at)
                continue
            try:
                self._apply(message, received_at)
            except Exception:  # a bug must not stop ingest; count it and go on
                log.exception("applying %s failed", topic)
                self.metrics.inc("meshmon_rejected_total", reason="internal")
        if self._web is not None:  # the JSON documents re-encode what changed, off requests
            self._web.documents.catch_up()

    def _apply(self, message: Status | Info | Report, now: float) -> None:
        topo = self.topology
        m = self.metrics
        if isinstance(message, Report):
            known = topo.nodes.get(message.node)
            was_online = known is not None and known.online
            dsts = topo.apply_report(message, now)
            if not was_online:
                self._emit(Event(now, "online", message.node, f"{message.node} is reporting"))
                self.alerting.node_changed(message.node, True, now)
            m.inc("meshmon_reports_received_total")
            self._dirty_nodes[message.node] = None
            if self.live:  # an installer view is open somewhere
                self.live.changed(message.node)
                for dst in dsts:
                    if dst is not None:
                        self.live.changed(dst)
            for sink in self.sinks:
                sink.write_report(message, now, dsts)
        elif isinstance(message, Status):
            m.inc("meshmon_status_received_total")
            if topo.apply_status(message, now):
                self._emit(Event(now, "online" if message.online else "offline", message.node,
                                 f"{message.node} is {'online' if message.online else 'offline'}"))
                self.alerting.node_changed(message.node, message.online, now)
                if self.live:
                    self.live.changed(message.node)
            self._dirty_nodes[message.node] = None
        else:
            m.inc("meshmon_info_received_total")
            topo.apply_info(message, now)
            self._dirty_nodes[message.node] = None
            # links of other nodes re-keyed by this node's MACs are saved with their source
            for ls in topo.node_links(message.node):
                self._dirty_nodes[ls.key.src] = None

    def _reject(self, topic: str, rej: Rejected, now: float) -> None:
        self.metrics.inc("meshmon_rejected_total", reason=rej.reason)
        parts = topic.split("/")
        node = parts[-2] if len(parts) >= 2 else "?"
        key = (node, rej.reason)
        if now - self._reject_logged.get(key, 0.0) >= REJECT_LOG_INTERVAL_S:
            self._reject_logged[key] = now
            # the topic and the reason may quote the payload: no line breaks or escapes
            log.warning("dropped message on %s (%s): %s", one_line(topic[:200]), rej.reason,
                        one_line(rej.detail))

    def _emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.write_event(event)

    # ------------------------------------------------------------------ periodic work
    async def _periodic(self, interval: float, fn: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                fn()
            except Exception:
                log.exception("periodic task %s failed", getattr(fn, "__name__", fn))

    def _tick(self) -> None:
        now = self.clock()
        # judge silence as of the oldest message we have not looked at yet: when the
        # collector falls behind (a backlog, a stalled loop), reports waiting in our queue
        # or socket must not make their nodes look offline
        late = max(0.0, now - self._last_tick - TICK_INTERVAL_S) if self._last_tick else 0.0
        self._last_tick = now
        backlog = self.ingest.backlog_s(now) if self.ingest is not None else 0.0
        self._expire_as_of = max(self._expire_as_of, now - max(late, backlog))
        expired = self.topology.expire(self._expire_as_of)
        for node in expired.nodes_offline:
            self._dirty_nodes[node] = None
            self._emit(Event(now, "offline", node, f"{node} stopped reporting"))
            self.alerting.node_changed(node, False, now)
            if self.live:
                self.live.changed(node)
        self._removed_links.update(expired.links_removed)
        self.alerting.links_removed(expired.links_removed, now)
        self.alerting.tick(now)
        if self._web is not None:  # and drop what nobody asked for lately
            self._web.documents.catch_up()

    def _analyse(self) -> None:
        self.alerting.analysed(self.clock())
        analysis = self.topology.analyse()
        m = self.metrics
        m.set("meshmon_analysis_duration_ms", analysis.duration_ms)
        m.set("meshmon_components", float(len(analysis.components)))
        m.set("meshmon_nodes_reaching_gateway", float(len(analysis.reach_gateway)))
        m.set("meshmon_articulation_points", float(len(analysis.articulation_points)))
        m.set("meshmon_bridges", float(len(analysis.bridges)))

    def _save_state(self, limit: int = STATE_SAVE_NODES_PER_TICK) -> None:
        """Hand the oldest dirty nodes (and their outgoing links) to the store.

        At most `limit` nodes per call, so a large network is saved in slices and the loop
        never stalls on it; `stop()` saves everything."""
        if self.store is None:
            return
        topo = self.topology
        dirty = self._dirty_nodes
        chosen = list(itertools.islice(dirty, limit))
        for node in chosen:
            del dirty[node]
        nodes = [topo.nodes[n] for n in chosen if n in topo.nodes]
        links = [ls for n in chosen for ls in topo.node_links(n) if ls.key.src == n]
        if nodes or links or self._removed_links:
            self.store.save_state(nodes, links, list(self._removed_links))
        self._removed_links.clear()

    # ------------------------------------------------------------------ metrics
    def _describe_metrics(self) -> None:
        m = self.metrics
        m.describe("meshmon_reports_received_total", "counter", "valid reports applied")
        m.describe("meshmon_status_received_total", "counter", "valid status messages applied")
        m.describe("meshmon_info_received_total", "counter", "valid info messages applied")
        m.describe("meshmon_rejected_total", "counter", "messages dropped, by reason")
        m.describe("meshmon_mqtt_messages_total", "counter", "MQTT messages received")
        m.describe("meshmon_ingest_queue_depth", "gauge", "messages waiting to be decoded")
        m.describe("meshmon_ingest_dropped_total", "counter", "messages dropped: ingest queue full")
        m.describe("meshmon_mqtt_connected", "gauge", "1 while connected to the broker")
        m.describe("meshmon_nodes", "gauge", "known nodes")
        m.describe("meshmon_nodes_online", "gauge", "nodes online")
        m.describe("meshmon_links", "gauge", "directed links")
        m.describe("meshmon_sink_queue_depth", "gauge", "points waiting in a sink, by sink")
        m.describe("meshmon_sink_written_total", "counter", "points/rows written, by sink")
        m.describe("meshmon_sink_dropped_total", "counter", "points/rows dropped, by sink")
        m.describe("meshmon_sink_errors_total", "counter", "failed writes, by sink")
        m.describe("meshmon_sink_write_latency_ms", "gauge", "duration of the last write")
        m.describe("meshmon_reports_missed_total", "counter",
                   "reports never stored, from gaps in each node's seq (lost on the way, or "
                   "received by a collector that was killed before it wrote them)")
        m.gauge_fn("meshmon_reports_missed_total",
                   lambda: float(self.store.missed_reports) if self.store is not None else 0.0)
        m.describe("meshmon_analysis_duration_ms", "gauge", "last topology analysis, ms")
        m.describe("meshmon_components", "gauge", "connected components of online nodes")
        m.describe("meshmon_nodes_reaching_gateway", "gauge",
                   "online nodes with a path to a gateway")
        m.describe("meshmon_articulation_points", "gauge",
                   "nodes whose failure splits the mesh")
        m.describe("meshmon_bridges", "gauge", "links whose failure splits the mesh")
        m.gauge_fn("meshmon_mqtt_messages_total", lambda: self._ingest_stat("received"))
        m.gauge_fn("meshmon_ingest_queue_depth", lambda: self._ingest_stat("queue_depth"))
        m.gauge_fn("meshmon_ingest_dropped_total", lambda: self._ingest_stat("dropped"))
        m.gauge_fn("meshmon_mqtt_connected",
                   lambda: float(self.ingest is not None and self.ingest.connected.is_set()))
        m.gauge_fn("meshmon_nodes", lambda: float(len(self.topology.nodes)))
        m.gauge_fn("meshmon_nodes_online",
                   lambda: float(sum(1 for n in self.topology.nodes.values() if n.online)))
        m.gauge_fn("meshmon_links", lambda: float(len(self.topology.links)))
        for metric, stat in (
            ("meshmon_sink_queue_depth", "queued"),
            ("meshmon_sink_written_total", "written_points"),
            ("meshmon_sink_dropped_total", "dropped_points"),
            ("meshmon_sink_errors_total", "write_errors"),
            ("meshmon_sink_write_latency_ms", "last_write_ms"),
        ):
            m.gauge_fn(metric, self._sink_stat(stat))
        m.describe("meshmon_broker_denied_total", "counter",
                   "embedded broker: publishes/subscriptions its ACL refused, by action")
        m.gauge_fn("meshmon_broker_denied_total", lambda: {
            (("action", action),): float(self.broker.denied.get(action, 0))
            for action in ("publish", "subscribe", "receive")} if self.broker is not None else {})
        m.describe("meshmon_alerts_total", "counter", "alert notices made, by outcome")
        m.gauge_fn("meshmon_alerts_total", lambda: {
            (("outcome", "sent"),): float(self.alerting.engine.sent),
            (("outcome", "silenced"),): float(self.alerting.engine.suppressed),
        })
        m.describe("meshmon_incidents_open", "gauge", "open incidents (outages, flapping, …)")
        m.gauge_fn("meshmon_incidents_open",
                   lambda: float(len(self.alerting.health.incidents)))
        m.describe("meshmon_root_cause_ms", "gauge", "last root-cause evaluation, ms")
        m.gauge_fn("meshmon_root_cause_ms", lambda: self.alerting.health.last_duration_ms)
        m.describe("meshmon_alert_deliveries", "gauge",
                   "notifications per notifier: delivered, pending, failed_attempts, dropped")
        m.gauge_fn("meshmon_alert_deliveries", self._delivery_stats)
        m.describe("meshmon_stored_lag_ms", "gauge",
                   "report ts to written, recent reports, by sink and quantile")
        m.gauge_fn("meshmon_stored_lag_ms", self._stored_lag)

    def _delivery_stats(self) -> dict[tuple[tuple[str, str], ...], float]:
        return {
            (("notifier", name), ("state", state)): value
            for name, stats in self.alerting.dispatcher.stats().items()
            for state, value in stats.items()
        }

    def _ingest_stat(self, name: str) -> float:
        return float(getattr(self.ingest, name)) if self.ingest is not None else 0.0

    def _stored_lag(self) -> dict[tuple[tuple[str, str], ...], float]:
        out: dict[tuple[tuple[str, str], ...], float] = {}
        for sink in self.sinks:
            stats = sink.stats()
            for q in ("0.5", "0.99"):
                key = "lag_p50_ms" if q == "0.5" else "lag_p99_ms"
                if key in stats:
                    out[(("quantile", q), ("sink", sink.name))] = stats[key]
        return out

    def _sink_stat(self, stat: str) -> Callable[[], dict[tuple[tuple[str, str], ...], float]]:
        def read() -> dict[tuple[tuple[str, str], ...], float]:
            return {(("sink", s.name),): float(s.stats().get(stat, 0.0)) for s in self.sinks}

        return read
