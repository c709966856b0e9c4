"""InfluxDB 1.x sink against a real InfluxDB 1.6.7: values, outage recovery, overflow, 4xx."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request

from meshmon.sinks.base import Event
from meshmon.sinks.influx_v1 import InfluxV1Sink
from tests import servers
from tests.sinks.reports import DSTS, NOW, report


def rows(server: servers.Server, db: str, q: str) -> list[dict]:
    result = servers.influx_query(server, db, q)["results"][0]
    out: list[dict] = []
    for series in result.get("series", []):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            row.update(series.get("tags", {}))
            out.append(row)
    return out


async def test_report_and_event_read_back_with_influxql(influxdb1: servers.Server) -> None:
    sink = InfluxV1Sink(influxdb1.url, "t_values", flush_interval_s=60)
    await sink.start()  # creates the database
    sink.write_report(report(), NOW + 1, DSTS)
    sink.write_event(Event(NOW + 5, "outage", "n1", "n1 down", {"affected": 2}))
    await sink.flush()
    assert sink.stats()["written_points"] == 7  # node + 3 links + iface + radio + event
    await sink.close()

    links = rows(influxdb1, "t_values", 'SELECT * FROM link GROUP BY "dst", "iface", "kind", "src"')
    by_dst = {r["dst"]: r for r in links}
    assert set(by_dst) == {"n2", "n3", "mac:02:00:00:00:00:99"}
    n2 = by_dst["n2"]
    assert (n2["time"], n2["src"], n2["iface"], n2["kind"]) == (int(NOW), "n1", "wlan0", "wifi")
    assert n2["signal_dbm"] == -61 and n2["signal_avg_dbm"] == -62.5
    assert n2["chain0_dbm"] == -63 and n2["chain1_dbm"] == -65
    assert n2["tx_rate_mbps"] == 144.4 and n2["tx_retries"] == 12 and n2["inactive_ms"] == 40
    assert n2["peer_mac"] == "02:00:00:00:00:02" and n2["tq"] is None
    n3 = by_dst["n3"]
    assert (n3["kind"], n3["tq"], n3["signal_dbm"], n3["peer_mac"]) == ("batman", 230, None, None)
    unresolved = by_dst["mac:02:00:00:00:00:99"]
    assert unresolved["signal_dbm"] == -80 and unresolved["peer_mac"] == "02:00:00:00:00:99"
    assert unresolved["snr_db"] is None  # absent, not 0

    (node,) = rows(influxdb1, "t_values", "SELECT * FROM node")
    assert node["node"] == "n1" and node["online"] is True and node["load5"] == 0.25
    assert node["mem_total_kb"] == 65536 and node["clock_offset_s"] == 1.0
    (radio,) = rows(influxdb1, "t_values", "SELECT * FROM radio")
    assert (radio["iface"], radio["channel"], radio["busy_pct"]) == ("wlan0", 36, 12.5)
    (ev,) = rows(influxdb1, "t_values", "SELECT * FROM event")
    assert (ev["kind"], ev["node"], ev["summary"], ev["affected"]) == ("outage", "n1", "n1 down", 2)
    # field types as declared: ints are integers, floats are floats
    keys = rows(influxdb1, "t_values", "SHOW FIELD KEYS FROM link")
    types = {r["fieldKey"]: r["fieldType"] for r in keys}
    assert types["tq"] == "integer" and types["signal_dbm"] == "float"
    assert types["peer_mac"] == "string"


async def test_wild_agent_clock_uses_arrival_time_and_is_counted(influxdb1: servers.Server) -> None:
    sink = InfluxV1Sink(influxdb1.url, "t_clock", flush_interval_s=60)
    await sink.start()
    sink.write_report(report(ts=12.0, links=[]), NOW, [])
    await sink.flush()
    await sink.close()
    assert sink.stats()["clock_fallbacks"] == 1
    (node,) = rows(influxdb1, "t_clock", "SELECT uptime_s FROM node")
    assert node["time"] == int(NOW)


async def wait_until(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_database_down_then_up_loses_nothing_and_overflow_drops_oldest() -> None:
    port = servers.free_port()
    url = f"http://127.0.0.1:{port}"
    kw = {"flush_interval_s": 0.05, "retry_initial_s": 0.05, "retry_max_s": 0.2, "timeout_s": 2}
    keep = InfluxV1Sink(url, "t_down", batch_size=7, **kw)  # type: ignore[arg-type]
    small = InfluxV1Sink(url, "t_overflow", buffer_max_points=10, batch_size=5, **kw)  # type: ignore[arg-type]
    await keep.start()
    await small.start()
    try:
        for i in range(20):  # 20 reports × 6 points
            r = report(ts=NOW + i, seq=i)
            keep.write_report(r, NOW + i, DSTS)
            small.write_event(Event(NOW + i, "test", "n1", f"event {i}", {"i": i}))
        await wait_until(lambda: keep.stats()["write_errors"] >= 2)
        assert keep.stats()["queued"] == 120 and keep.stats()["written_points"] == 0
        assert small.stats()["queued"] == 10 and small.stats()["dropped_points"] == 10

        server = servers.start_influxdb1(port)
        try:
            await wait_until(lambda: keep.stats()["queued"] == 0 and small.stats()["queued"] == 0)
            assert keep.stats()["written_points"] == 120 and keep.stats()["dropped_points"] == 0
            for q, expected in [
                ("SELECT count(uptime_s) FROM node", 20),
                ("SELECT count(tq) FROM link", 20),
                ("SELECT count(signal_dbm) FROM link", 40),
                ("SELECT count(rx_bytes) FROM iface", 20),
                ("SELECT count(busy_pct) FROM radio", 20),
            ]:  # 20 × (1 + 3 + 1 + 1) = 120 points, every one of them
                (count,) = rows(server, "t_down", q)
                assert count["count"] == expected, q
            seqs = rows(server, "t_down", "SELECT seq FROM node")
            assert [r["seq"] for r in seqs] == list(range(20))
            # the small buffer kept the newest 10 events, dropped (and counted) the oldest 10
            kept = rows(server, "t_overflow", "SELECT i FROM event")
            assert [r["i"] for r in kept] == list(range(10, 20))
            assert small.stats()["written_points"] == 10
        finally:
            await keep.close()
            await small.close()
            server.stop()
    finally:
        await keep.close()
        await small.close()


async def test_bad_data_4xx_is_dropped_counted_and_writing_goes_on(
    influxdb1: servers.Server,
) -> None:
    sink = InfluxV1Sink(influxdb1.url, "t_bad", flush_interval_s=60)
    await sink.start()
    try:
        sink.write_event(Event(NOW, "a", "n1", "ok", {"x": 1}))
        await sink.flush()
        # x is an integer now: a string x conflicts; the server stores the rest of the batch
        sink.write_event(Event(NOW + 1, "a", "n1", "conflict", {"x": "text"}))
        sink.write_event(Event(NOW + 2, "b", "n1", "fine", {"x": 2}))
        await sink.flush()
        st = sink.stats()
        assert (st["written_points"], st["rejected_points"], st["dropped_points"]) == (2, 1, 1)
        assert st["queued"] == 0 and st["write_errors"] == 1
        # a batch of conflicting points only is rejected whole, and not retried
        sink.write_event(Event(NOW + 3, "a", "n1", "bad", {"x": "again"}))
        sink.write_event(Event(NOW + 4, "a", "n1", "bad", {"x": True}))
        await sink.flush()
        st = sink.stats()
        assert (st["written_points"], st["rejected_points"], st["queued"]) == (2, 3, 0)
        sink.write_event(Event(NOW + 5, "a", "n1", "later", {"x": 3}))
        await sink.flush()
    finally:
        await sink.close()
    assert [r["x"] for r in rows(influxdb1, "t_bad", "SELECT x FROM event")] == [1, 2, 3]


async def test_unparsable_batch_is_rejected_without_retry(influxdb1: servers.Server) -> None:
    sink = InfluxV1Sink(influxdb1.url, "t_parse", flush_interval_s=60)
    await sink.start()
    sink._append(b"this is not line protocol", 1, None)  # what a bug in the encoder would send
    await sink.flush()
    st = sink.stats()
    assert st["queued"] == 0 and st["rejected_points"] == 1 and st["written_points"] == 0
    await sink.close()


def test_database_is_created_on_start(influxdb1: servers.Server) -> None:
    async def go() -> None:
        sink = InfluxV1Sink(influxdb1.url, "t_created")
        await sink.start()
        await sink.close()

    asyncio.run(go())
    with urllib.request.urlopen(f"{influxdb1.url}/query?q=SHOW+DATABASES", timeout=5) as r:
        assert b'"t_created"' in r.read()


async def test_stored_lag_is_measured_from_the_report_ts(influxdb1: servers.Server) -> None:
    sink = InfluxV1Sink(influxdb1.url, "t_lag", flush_interval_s=60)
    await sink.start()
    try:
        now = time.time()
        sink.write_report(report(ts=now - 2.0), now, DSTS)
        sink.write_event(Event(now, "offline", "n1", "n1 is offline"))
        await sink.flush()
        st = sink.stats()
        assert st["written_points"] > 0
        assert 2000 <= st["lag_p50_ms"] < 12000
        assert st["lag_p99_ms"] >= st["lag_p50_ms"]
    finally:
        await sink.close()


async def test_write_only_user_writes_to_a_database_an_admin_made() -> None:
    server = servers.start_influxdb1(auth=True)
    try:
        def admin(q: str) -> None:
            data = urllib.parse.urlencode({"q": q}).encode()
            url = f"{server.url}/query?u=root&p=rootpw"
            with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
                body = r.read().decode()
            assert '"error"' not in body, (q, body)

        admin("CREATE USER root WITH PASSWORD 'rootpw' WITH ALL PRIVILEGES")
        admin('CREATE DATABASE "wo"')
        admin("CREATE USER writer WITH PASSWORD 'w'")
        admin('GRANT WRITE ON "wo" TO writer')
        sink = InfluxV1Sink(server.url, "wo", username="writer", password="w",
                            flush_interval_s=60)
        await sink.start()  # CREATE DATABASE is refused (403): not an error
        sink.write_report(report(), NOW + 1, DSTS)
        await sink.flush()
        stats = sink.stats()
        await sink.close()
        assert stats["written_points"] == 6 and stats["write_errors"] == 0
        data = urllib.parse.urlencode({"q": "SELECT count(seq) FROM node", "db": "wo"}).encode()
        req = urllib.request.Request(f"{server.url}/query?u=root&p=rootpw", data=data)
        with urllib.request.urlopen(req, timeout=10) as resp:
            result = json.loads(resp.read())["results"][0]
        assert result["series"][0]["values"][0][1] == 1
    finally:
        server.stop()


async def test_ingest_waits_while_points_wait_for_a_server_that_answers(
        influxdb1: servers.Server) -> None:
    """`behind`: half the buffer (here 50 points) waits for a server that answers; ingest
    then holds and the backlog stays in the broker. A server that is down holds nothing:
    the buffer rides it out, and drops and counts what does not fit."""
    sink = InfluxV1Sink(influxdb1.url, "t_behind", buffer_max_points=100, flush_interval_s=60)
    await sink.start()
    try:
        for i in range(8):  # 8 reports × 6 points, queued before the flusher can run
            sink.write_report(report(ts=NOW + i, seq=i), NOW + i, DSTS)
        assert sink.stats()["queued"] == 48 and not sink.behind()
        sink.write_report(report(ts=NOW + 8, seq=8), NOW + 8, DSTS)
        assert sink.behind()
        await sink.flush()
        assert sink.stats()["written_points"] == 54 and not sink.behind()
    finally:
        await sink.close()

    down = InfluxV1Sink(f"http://127.0.0.1:{servers.free_port()}", "t_behind",
                        buffer_max_points=100, flush_interval_s=0.05, retry_initial_s=60,
                        timeout_s=2)
    await down.start()
    try:
        for i in range(9):
            down.write_report(report(ts=NOW + i, seq=i), NOW + i, DSTS)
        assert down.behind()  # (nothing failed yet)
        await wait_until(lambda: down.stats()["write_errors"] >= 1)
        assert down.stats()["queued"] == 54 and not down.behind()
    finally:
        await down.close()
