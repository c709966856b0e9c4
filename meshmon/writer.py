"""`meshmon serve --role writer`: the time series of a share of the reports.

Writers join the MQTT 5 shared subscription `$share/GROUP/PREFIX/v1/node/+/report`
(GROUP is `[roles] share_group`): the broker hands each report to one member of the
group, so any number of writers on any number of machines split the work of decoding
reports and writing InfluxDB (v1 or v2 API, VictoriaMetrics) between them. The core
(`--role core`) reads every report itself for the graph, health, alerts, web and SQLite.

Each writer also reads every node's retained `info` through a normal (not shared)
subscription, to name each link's peer by the MACs nodes announce exactly as the core
does (`MacOwners`): whichever writer stores a report, its points have the same tags, and
their time is the report's `ts`. So a report the broker delivers twice (to a writer that
was killed before it acknowledged it, then to another) overwrites its own points in
InfluxDB instead of adding a second one. A report is acknowledged once its points are
written (or dropped and counted): what a killed writer had not written yet stays with the
broker (docs/scaling.md says what Mosquitto does with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from aiohttp import web

from meshmon.config import Config
from meshmon.errors import StartupError
from meshmon.ingest.decode import Decoder
from meshmon.ingest.mqtt import BrokerAddress, MqttIngest, RawMessage, Subscriptions, node_topics
from meshmon.ingest.mqtt_packets import MQTT_5
from meshmon.metrics import Metrics
from meshmon.model.fastwire import Report
from meshmon.model.peers import MacOwners
from meshmon.model.wire import Info
from meshmon.service_metrics import register_ingest_metrics, register_sink_metrics
from meshmon.sinks import build_influx_sink
from meshmon.sinks.feed import SinkFeed
from meshmon.tasks import TaskGroupOwner, owned_by
from meshmon.web.app import make_runner
from meshmon.web.ops import PROMETHEUS_CONTENT_TYPE
from meshmon.writer_standin import OFFLINE, ONLINE, STOPPED, StandIns, status_filter

log = logging.getLogger(__name__)

ACK_INTERVAL_S = 0.1
"""how often written reports are acknowledged to the broker"""
LEAVE_QUIET_S = 0.3
LEAVE_LIMIT_S = 10.0
"""a clean stop: after leaving the share group, read until nothing came for LEAVE_QUIET_S
(at most LEAVE_LIMIT_S)"""


def share_filter(config: Config) -> str:
    """The writers' shared subscription."""
    prefix = config.mqtt.topic_prefix
    return f"$share/{config.roles.share_group}/{node_topics(prefix, 'report')[0]}"


def check_writer_config(config: Config) -> None:
    """Refuse to start a writer that could not work, saying why."""
    if config.mqtt.broker == "embedded":
        raise StartupError(
            "--role writer needs an external MQTT 5 broker with shared subscriptions "
            "(Mosquitto 2, EMQX, VerneMQ, HiveMQ; [mqtt] broker = \"external\"): the "
            "embedded broker (amqtt, MQTT 3.1.1) runs only --role all")
    if not config.influxdb.enabled:
        raise StartupError("a writer writes the time series: set [influxdb] enabled = true "
                           "(InfluxDB v1/v2 or VictoriaMetrics)")
    if not config.mqtt.client_id:
        raise StartupError(
            "each writer keeps a persistent MQTT session of its own: give it a unique "
            "[mqtt] client_id (e.g. \"meshmon-writer-1\")")
    if any(c in config.mqtt.client_id for c in "/+#"):
        raise StartupError(
            f"[mqtt] client_id {config.mqtt.client_id!r}: a writer's client id names its "
            "status topic, so it cannot hold '/', '+' or '#'")


class Writer:
    """One writer process: shared reports in, line protocol out, /healthz and /metrics."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        check_writer_config(config)
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.decoder = Decoder(config.mqtt.topic_prefix, self.metrics)
        self.sink = build_influx_sink(config.influxdb, config.storage.max_clock_skew_s)
        self.feed = SinkFeed([self.sink], event_sinks=[], ack_sinks=[self.sink])
        self.macs = MacOwners()
        prefix = config.mqtt.topic_prefix
        self.ingest = MqttIngest(
            config.mqtt, BrokerAddress(config.mqtt.host, config.mqtt.port), self.on_batch,
            self.on_control,
            Subscriptions(share_filter(config), [*node_topics(prefix, "info"),
                                                 status_filter(prefix)]),
            version=MQTT_5, fallback_to_311=False, clock=clock)
        for connection in self.ingest.connections:
            # stopped cleanly (everything taken written and acknowledged), a writer leaves
            # the group: its share goes to the others until it is back (`stop`: the last
            # one keeps its session). Killed, its session stays, the broker keeps its share
            # for it, and another writer stands in for it (`writer_standin`,
            # docs/scaling.md).
            connection.end_session_on_stop = True
        self.tasks = TaskGroupOwner("writer", log)
        """the TaskGroup every task of the writer runs in (the sink's flusher too)"""
        reports = self.ingest.reports
        self.stand_ins = StandIns(self.ingest, reports.request.client_id,
                                  config.roles.share_group, prefix, self.tasks.spawn,
                                  enabled=config.roles.stand_in)
        reports.request = replace(reports.request,
                                  will=self.stand_ins.will(reports.request.client_id))
        reports.announce = self.stand_ins.announce(ONLINE)
        register_ingest_metrics(self.metrics, lambda: self.ingest, self.feed)
        register_sink_metrics(self.metrics, [self.sink])
        self.metrics.describe("meshmon_writer_standing_in", "gauge",
                              "dead writers of the group whose session this writer holds")
        self.metrics.gauge_fn("meshmon_writer_standing_in",
                              lambda: float(len(self.stand_ins.active)))
        self.metrics.describe("meshmon_writer_stand_ins_total", "counter",
                              "times this writer took over a dead writer's session")
        self.metrics.gauge_fn("meshmon_writer_stand_ins_total",
                              lambda: float(self.stand_ins.started))
        self.http_port = 0
        self._runner: web.AppRunner | None = None
        self._own: list[asyncio.Task[None]] = []
        """ingest and the acknowledgements (stopped first)"""
        self._sink_started = False

    @property
    def http_url(self) -> str:
        return f"http://{self.config.http.host}:{self.http_port}"

    async def start(self) -> None:
        """Start the sink, HTTP and the MQTT connections."""
        try:
            await self.tasks.open()
            with owned_by(self.tasks.spawn):
                await self.sink.start()
            self._sink_started = True
            await self._start_http()
            self._own = [self.tasks.spawn(self.ingest.run(), "mqtt"),
                         self.tasks.spawn(self._acknowledge(), "acks")]
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Leave the share group and say `stopped` if another writer of it is online (else
        keep the session, where the broker queues the reports until a writer is back, and
        say `offline`, so that any writer of the group stands in for it); write and
        acknowledge what was taken, let go of the sessions held for dead writers, then
        disconnect and close."""
        own, self._own = self._own, []
        if own:
            self.ingest.pause_reading()
            leaving = self.stand_ins.others_online()
            if leaving:
                # leave the group before the session ends: what the broker handed us
                # already is taken and written (ending the session would drop it)
                if not await self.ingest.leave_reports(LEAVE_QUIET_S, LEAVE_LIMIT_S):
                    log.warning("stopping: the broker went on sending reports for %.0f s "
                                "after this writer left its share group; stopping anyway "
                                "(what was not acknowledged may be lost with the session)",
                                LEAVE_LIMIT_S)
                self.ingest.pause_reading()
            else:
                # the last writer of the group: keep the session, so the broker queues the
                # reports until a writer is back (a restart loses nothing), and say
                # `offline`: a writer that starts with another client id stands in for it
                self.ingest.reports.end_session_on_stop = False
            with contextlib.suppress(Exception):
                await self.sink.flush()
            self.ingest.ack(self.feed.settled_tokens())
            topic, payload = self.stand_ins.announce(STOPPED if leaving else OFFLINE)
            self.ingest.reports.publish(topic, payload, qos=1, retain=True)
            await self.stand_ins.stop()
            for task in own:
                task.cancel()
            await asyncio.wait(own)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._sink_started:
            self._sink_started = False
            await self.sink.close()
        await self.tasks.close()

    async def _acknowledge(self) -> None:
        while True:
            await asyncio.sleep(ACK_INTERVAL_S)
            self.ingest.ack(self.feed.settled_tokens())

    # ------------------------------------------------------------------ messages
    def on_batch(self, batch: list[RawMessage]) -> None:
        """Reports of our share: their points to the sink, their acknowledgements held."""
        decode, inc, feed = self.decoder.decode, self.metrics.inc, self.feed
        dsts = self.macs.dsts
        for topic, payload, received_at, token, _ in batch:
            message = decode(topic, payload, received_at)
            if isinstance(message, Report):
                feed.write_report(message, received_at, dsts(message.node, message.links))
                inc("meshmon_reports_received_total")
            elif message is not None:  # not a report on the report topic: cannot happen
                inc("meshmon_rejected_total", reason="topic")
            feed.hold(token)

    def on_control(self, batch: list[RawMessage]) -> None:
        """Retained info: the MACs each node announces; the group's writers' status."""
        for topic, payload, received_at, _, _ in batch:
            if self.stand_ins.on_message(topic, payload):
                continue
            message = self.decoder.decode(topic, payload, received_at)
            if isinstance(message, Info):
                self.macs.announce(message.node, message.macs)
                self.metrics.inc("meshmon_info_received_total")

    # ------------------------------------------------------------------ HTTP
    async def _start_http(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = make_runner(app)
        await self._runner.setup()
        http = self.config.http
        # several writers on one host: each takes a free port unless one is configured
        port = http.port if "port" in http.model_fields_set else 0
        site = web.TCPSite(self._runner, http.host, port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"HTTP cannot listen on {http.host}:{port} ({exc.strerror}); "
                               "choose another [http] port.") from None
        sockets = getattr(site._server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else port

    async def _healthz(self, _request: web.Request) -> web.Response:
        body: dict[str, object] = {
            "ok": not self.tasks.failure, "role": "writer",
            "mqtt_connected": self.ingest.connected.is_set(),
            "reports": self.metrics.get("meshmon_reports_received_total"),
            "acks_held": self.feed.held,
            "standing_in_for": sorted(self.stand_ins.active),
        }
        if self.tasks.failure:
            body["failure"] = self.tasks.failure
        return web.json_response(body, status=503 if self.tasks.failure else 200,
                                 headers={"Cache-Control": "no-store"})

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render().encode())
        response.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
        response.headers["Cache-Control"] = "no-store"
        return response
