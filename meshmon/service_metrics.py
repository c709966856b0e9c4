"""The collector's Prometheus metrics: what each means, and where its value is read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from meshmon.metrics import Metrics
from meshmon.sinks.lag import LagTracker

if TYPE_CHECKING:
    from meshmon.ingest.mqtt import MqttIngest
    from meshmon.service import Service
    from meshmon.sinks.base import Sink
    from meshmon.sinks.feed import SinkFeed

Series = dict[tuple[tuple[str, str], ...], float]


def register_metrics(service: Service) -> None:
    """Describe every metric of the collector and attach the gauges read on scrape."""
    m = service.metrics
    register_ingest_metrics(m, lambda: service.ingest, service.feed)
    m.describe("meshmon_ingest_http_waits_total", "counter",
               "times ingest's next slice of reports waited for HTTP requests under way")
    m.gauge_fn("meshmon_ingest_http_waits_total", lambda: float(service.http_first.waits))
    m.describe("meshmon_ingest_http_waits_refused_total", "counter",
               "times HTTP was under way but ingest went on: it had waited for HTTP half "
               "of the last second")
    m.gauge_fn("meshmon_ingest_http_waits_refused_total",
               lambda: float(service.http_first.refused))
    m.describe("meshmon_status_received_total", "counter", "valid status messages applied")
    m.describe("meshmon_bridge_status_received_total", "counter",
               "valid meshmon-bridge status messages applied")
    m.describe("meshmon_nodes", "gauge", "known nodes")
    m.describe("meshmon_nodes_online", "gauge", "nodes online")
    m.describe("meshmon_links", "gauge", "directed links")
    register_sink_metrics(m, service.sinks)
    m.describe("meshmon_reports_missed_total", "counter",
               "reports never stored, from gaps in each node's seq (lost on the way, or "
               "received by a collector that was killed before it wrote them)")
    m.gauge_fn("meshmon_reports_missed_total",
               lambda: float(service.store.missed_reports) if service.store is not None else 0.0)
    m.describe("meshmon_history_buckets_waiting", "gauge",
               "closed 5-minute history buckets not stored yet (stored a slice per write "
               "after each 5-minute boundary; their samples are in the journal)")
    m.gauge_fn("meshmon_history_buckets_waiting",
               lambda: float(service.store.worker_status.closed_waiting)
               if service.store is not None else 0.0)
    m.describe("meshmon_sqlite_worker_deaths_total", "counter",
               "SQLite worker processes that died (each replaced at the next write; the "
               "reports one held unstored are in meshmon_sink_dropped_total)")
    m.gauge_fn("meshmon_sqlite_worker_deaths_total",
               lambda: float(service.store.worker_deaths) if service.store is not None else 0.0)
    m.describe("meshmon_history_packed_rows_total", "counter",
               "finished history spans packed into long rows (4 hours of raw samples, a day "
               "of 5-minute records, 16 days of hourly ones)")
    m.gauge_fn("meshmon_history_packed_rows_total", lambda: _packer_figure(service, "rows"))
    m.describe("meshmon_history_packing_seconds_total", "counter",
               "time the SQLite store's writes spent packing history spans")
    m.gauge_fn("meshmon_history_packing_seconds_total",
               lambda: _packer_figure(service, "seconds"))
    m.describe("meshmon_analysis_duration_ms", "gauge", "last topology analysis, ms")
    m.describe("meshmon_components", "gauge", "connected components of online nodes")
    m.describe("meshmon_nodes_reaching_gateway", "gauge",
               "online nodes with a path to a gateway")
    m.describe("meshmon_articulation_points", "gauge", "nodes whose failure splits the mesh")
    m.describe("meshmon_bridges", "gauge", "links whose failure splits the mesh")

    topology = service.core.topology
    m.gauge_fn("meshmon_nodes", lambda: float(len(topology.nodes)))
    m.gauge_fn("meshmon_nodes_online",
               lambda: float(sum(1 for n in topology.nodes.values() if n.online)))
    m.gauge_fn("meshmon_links", lambda: float(len(topology.links)))
    m.describe("meshmon_bridges_silent", "gauge",
               "meshmon-bridge processes whose status is offline")
    m.gauge_fn("meshmon_bridges_silent", lambda: float(
        sum(1 for b in topology.bridges.states.values() if not b.online)))
    m.describe("meshmon_nodes_unmonitored", "gauge",
               "nodes that wait for their silent meshmon-bridge")
    m.gauge_fn("meshmon_nodes_unmonitored", lambda: float(len(topology.bridges.held)))

    m.describe("meshmon_broker_denied_total", "counter",
               "embedded broker: publishes/subscriptions its ACL refused, by action")
    m.gauge_fn("meshmon_broker_denied_total", lambda: {
        (("action", action),): float(service.broker.denied.get(action, 0))
        for action in ("publish", "subscribe", "receive")} if service.broker is not None else {})
    alerting, health = service.alerting, service.core.health
    m.describe("meshmon_alerts_total", "counter",
               "alert notices made, by outcome: sent (handed to a notifier), no_notifier "
               "(no notifier configured or no route took it), silenced")
    m.gauge_fn("meshmon_alerts_total", lambda: {
        (("outcome", "sent"),): float(alerting.engine.sent),
        (("outcome", "no_notifier"),): float(alerting.engine.unrouted),
        (("outcome", "silenced"),): float(alerting.engine.suppressed),
    })
    m.describe("meshmon_incidents_open", "gauge", "open incidents (outages, flapping, …)")
    m.gauge_fn("meshmon_incidents_open", lambda: float(len(health.incidents)))
    m.describe("meshmon_root_cause_ms", "gauge", "last root-cause evaluation, ms")
    m.gauge_fn("meshmon_root_cause_ms", lambda: health.last_duration_ms)
    m.describe("meshmon_alert_deliveries", "gauge",
               "notifications per notifier: delivered, pending, failed_attempts, dropped")
    m.gauge_fn("meshmon_alert_deliveries", lambda: {
        (("notifier", name), ("state", state)): value
        for name, stats in alerting.dispatcher.stats().items()
        for state, value in stats.items()
    })
    m.describe("meshmon_reports_duplicate_total", "counter",
               "reports delivered again (QoS 1 after a broken connection) and ignored")
    m.gauge_fn("meshmon_reports_duplicate_total", lambda: float(service.core.duplicates))
    m.describe("meshmon_change_log_lost_total", "counter",
               "change log entries a consumer fell too far behind to read")
    m.gauge_fn("meshmon_change_log_lost_total",
               lambda: float(service.core.log.lost))


def register_ingest_metrics(m: Metrics, ingest: Callable[[], MqttIngest | None],
                            feed: SinkFeed) -> None:
    """The MQTT side's metrics (collector and writer)."""
    m.describe("meshmon_reports_received_total", "counter", "valid reports applied")
    m.describe("meshmon_info_received_total", "counter", "valid info messages applied")
    m.describe("meshmon_rejected_total", "counter", "messages dropped, by reason")
    m.describe("meshmon_mqtt_messages_total", "counter", "MQTT messages received")
    m.describe("meshmon_ingest_queue_depth", "gauge", "reports waiting to be decoded")
    m.describe("meshmon_ingest_dropped_total", "counter", "messages dropped: ingest queue full")
    m.describe("meshmon_ingest_holds_total", "counter",
               "times ingest waited for the SQLite store to write its backlog")
    m.describe("meshmon_mqtt_connected", "gauge", "1 while both MQTT connections are up")
    m.describe("meshmon_acks_held", "gauge",
               "reports received but not acknowledged to the broker until stored")

    def ingest_stat(name: str) -> Callable[[], float]:
        def read() -> float:
            source = ingest()
            return float(getattr(source, name)) if source is not None else 0.0
        return read

    m.gauge_fn("meshmon_mqtt_messages_total", ingest_stat("received"))
    m.gauge_fn("meshmon_ingest_queue_depth", ingest_stat("queue_depth"))
    m.gauge_fn("meshmon_ingest_dropped_total", ingest_stat("dropped"))
    m.gauge_fn("meshmon_ingest_holds_total", ingest_stat("holds"))
    m.gauge_fn("meshmon_mqtt_connected", lambda: float(
        (source := ingest()) is not None and source.connected.is_set()))
    m.gauge_fn("meshmon_acks_held", lambda: float(feed.held))


def register_sink_metrics(m: Metrics, sinks: Sequence[Sink]) -> None:
    """Queue, written, dropped, errors, latency and publish→stored lag of each sink."""
    m.describe("meshmon_sink_queue_depth", "gauge", "points waiting in a sink, by sink")
    m.describe("meshmon_sink_written_total", "counter", "points/rows written, by sink")
    m.describe("meshmon_sink_dropped_total", "counter", "points/rows dropped, by sink")
    m.describe("meshmon_sink_errors_total", "counter", "failed writes, by sink")
    m.describe("meshmon_sink_write_latency_ms", "gauge", "duration of the last write")
    m.describe("meshmon_sink_writes_total", "counter", "successful writes, by sink")
    m.describe("meshmon_sink_write_seconds_total", "counter",
               "time spent in successful writes, by sink (with writes_total: the mean write)")

    stats = SinkStats(m)

    def sink_stat(stat: str) -> Callable[[], Series]:
        return lambda: {(("sink", s.name),): float(stats.of(s).get(stat, 0.0)) for s in sinks}

    for metric, stat in (
        ("meshmon_sink_queue_depth", "queued"),
        ("meshmon_sink_written_total", "written_points"),
        ("meshmon_sink_dropped_total", "dropped_points"),
        ("meshmon_sink_errors_total", "write_errors"),
        ("meshmon_sink_write_latency_ms", "last_write_ms"),
        ("meshmon_sink_writes_total", "writes"),
        ("meshmon_sink_write_seconds_total", "write_s_total"),
    ):
        m.gauge_fn(metric, sink_stat(stat))
    m.describe("meshmon_stored_lag_ms", "gauge",
               "report ts to written, recent reports, by sink and quantile")
    m.gauge_fn("meshmon_stored_lag_ms", lambda: stored_lag(sinks, stats))
    m.describe("meshmon_stored_within_total", "counter",
               "reports stored within `le` seconds of their ts, by sink (cumulative, like "
               "a histogram's buckets: the difference of two reads gives any span's lags)")
    m.gauge_fn("meshmon_stored_within_total", lambda: stored_within(sinks))


class SinkStats:
    """Each sink's `stats()`, read once per /metrics render: it sorts the recent lags
    (20,000 of them) for the quantiles, and eight gauges read it — at 35,000 nodes under
    load that held the event loop for up to a second per scrape (bench/README.md)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._render = -1
        self._stats: dict[int, dict[str, float]] = {}

    def of(self, sink: Sink) -> dict[str, float]:
        """`sink.stats()` as of this render."""
        if self._render != self._metrics.renders:
            self._render = self._metrics.renders
            self._stats = {}
        stats = self._stats.get(id(sink))
        if stats is None:
            stats = self._stats[id(sink)] = sink.stats()
        return stats


def stored_lag(sinks: Sequence[Sink], read: SinkStats) -> Series:
    """Publish→stored lag quantiles of every sink that tracks them."""
    out: Series = {}
    for sink in sinks:
        stats = read.of(sink)
        for q in ("0.5", "0.99"):
            key = "lag_p50_ms" if q == "0.5" else "lag_p99_ms"
            if key in stats:
                out[(("quantile", q), ("sink", sink.name))] = stats[key]
    return out


def stored_within(sinks: Sequence[Sink]) -> Series:
    """Reports stored within each lag bound, cumulative, of every sink that tracks them."""
    out: Series = {}
    for sink in sinks:
        lag = getattr(sink, "lag", None)
        if isinstance(lag, LagTracker):
            for bound, count in lag.stored_within().items():
                out[(("le", bound), ("sink", sink.name))] = count
    return out


def _packer_figure(service: Service, what: str) -> float:
    if service.store is None:
        return 0.0
    status = service.store.worker_status
    return float(status.packed_rows if what == "rows" else status.pack_busy_s)
