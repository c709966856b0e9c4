"""End to end: agents → real MQTT broker → collector → topology → SQLite / InfluxDB → HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
import urllib.parse
import urllib.request
from pathlib import Path

from meshmon.history import query
from meshmon.history.recorder import pending_buckets
from meshmon.history.samples import SeriesKey
from meshmon.history.tables import HistoryTables
from tests import servers
from tests.agent_process import CAPTURED_PEERS, start_agent, stop
from tests.integration.harness import (
    Publisher,
    collector_config,
    eventually,
    get_json,
    get_text,
    metric,
    started,
)

PEER_MAC, PEER_SIGNAL = next(iter(CAPTURED_PEERS.items()))


def info(node: str, **extra: object) -> dict:  # type: ignore[type-arg]
    return {"v": 1, "node": node, "hostname": node, **extra}


def report(node: str, seq: int, links: list[dict], ts: float | None = None) -> dict:  # type: ignore[type-arg]
    return {"v": 1, "node": node, "ts": ts or time.time(), "seq": seq, "interval_s": 30,
            "sys": {"uptime_s": 100 + seq}, "links": links}


async def test_agent_through_mosquitto_to_api_sqlite_and_influxdb_v1(
    tmp_path: Path, mosquitto: servers.Server, influxdb1: servers.Server
) -> None:
    config = collector_config(
        tmp_path, mosquitto.port,
        influxdb={"enabled": True, "api": "v1", "url": influxdb1.url, "database": "e2e_v1",
                  "flush_interval_s": 0.2},
    )
    service = await started(config)
    pub = Publisher(mosquitto.port)
    agent = None
    try:
        # a neighbour announces the MAC the agent's captured station dump sees
        await pub.send("meshmon/v1/node/roof-a/info", info("roof-a", macs=[PEER_MAC.upper()]),
                 retain=True)
        agent = start_agent(tmp_path, mosquitto.port, "agent-e2e", interval_s=1)
        url = f"{service.http_url}/api/v1/nodes/agent-e2e"

        async def link_resolved() -> bool:
            got = await get_json(url)
            if got["status"] != 200:
                return False
            peers = {e["peer"]: e for e in got["body"]["links"]}
            return "roof-a" in peers and peers["roof-a"]["out"] is not None

        await eventually(link_resolved, 20, "agent's link resolved to roof-a in the API")
        body = (await get_json(url))["body"]
        entry = next(e for e in body["links"] if e["peer"] == "roof-a")
        assert entry["kind"] == "wifi"
        assert entry["out"]["metrics"]["signal_dbm"] == PEER_SIGNAL
        assert body["online"] is True and body["location"] == {"lat": 41.38, "lon": 2.17}
        # the other two stations and the 4 batman-adv neighbours of the LibreMesh capture
        # have MACs no node announced: kept, counted, but not shown
        assert body["unresolved_links"] == len(CAPTURED_PEERS) - 1 + 4

        async def in_influx() -> bool:
            res = servers.influx_query(
                influxdb1, "e2e_v1",
                "SELECT signal_dbm FROM link WHERE src='agent-e2e' AND dst='roof-a'")
            return bool(res["results"][0].get("series"))

        await eventually(in_influx, 15, "link point in InfluxDB")
        res = servers.influx_query(
            influxdb1, "e2e_v1",
            "SELECT last(signal_dbm), last(tx_retries) FROM link "
            "WHERE src='agent-e2e' AND dst='roof-a'")
        values = res["results"][0]["series"][0]["values"][0]
        assert values[1] == PEER_SIGNAL
        node_pts = servers.influx_query(
            influxdb1, "e2e_v1", "SELECT count(uptime_s) FROM node WHERE node='agent-e2e'")
        assert node_pts["results"][0]["series"][0]["values"][0][1] >= 1
    finally:
        if agent is not None:
            stop(agent)
        pub.close()
        await service.stop()
    db = sqlite3.connect(tmp_path / "meshmon.sqlite")
    tables = HistoryTables(db)
    # (the open buckets stay in the journal at a stop: read as the collector would)
    rows = [s for key in tables.series if (key.node, key.peer) == ("agent-e2e", "roof-a")
            for s in query.samples(tables, pending_buckets(tables), key)]
    assert rows and all(r["signal_dbm"] == PEER_SIGNAL for r in rows)
    db.close()


async def test_agent_and_report_through_v2_api_land_in_victoria_metrics(
    tmp_path: Path, mosquitto: servers.Server, victoria: servers.Server
) -> None:
    config = collector_config(
        tmp_path, mosquitto.port,
        influxdb={"enabled": True, "api": "v2", "url": victoria.url, "bucket": "meshmon",
                  "org": "mesh", "token": "t", "flush_interval_s": 0.2},
    )
    service = await started(config)
    pub = Publisher(mosquitto.port)
    agent = start_agent(tmp_path, mosquitto.port, "vm-agent", interval_s=1)
    try:
        await pub.send("meshmon/v1/node/vm-a/report", report("vm-a", 1, [
            {"peer": "vm-b", "iface": "wlan0", "kind": "wifi", "signal_dbm": -67,
             "expected_tput_mbps": 42.5}]))

        def export(match: str) -> list[dict]:  # type: ignore[type-arg]
            urllib.request.urlopen(victoria.url + "/internal/force_flush", timeout=5).read()
            q = urllib.parse.urlencode({"match[]": match})
            with urllib.request.urlopen(f"{victoria.url}/api/v1/export?{q}", timeout=5) as r:
                return [json.loads(line) for line in r.read().decode().splitlines() if line]

        links_of_vm_a = '{__name__=~"link_.*",src="vm-a"}'

        async def landed() -> bool:
            names = {s["metric"]["__name__"] for s in export(links_of_vm_a)}
            agent_rows = export('{__name__="link_signal_dbm",src="vm-agent"}')
            return "link_signal_dbm" in names and len(agent_rows) == len(CAPTURED_PEERS)

        await eventually(landed, 20, "report and agent links in VictoriaMetrics")
        series = {s["metric"]["__name__"]: s for s in export(links_of_vm_a)}
        assert series["link_signal_dbm"]["values"] == [-67]
        assert series["link_signal_dbm"]["metric"]["dst"] == "vm-b"
        assert series["link_expected_tput_mbps"]["values"] == [42.5]
        # the agent's three stations, unresolved (no node announced their MACs)
        agent_rows = export('{__name__="link_signal_dbm",src="vm-agent"}')
        got = {r["metric"]["dst"].removeprefix("mac:"): r["values"][-1] for r in agent_rows}
        assert got == CAPTURED_PEERS
    finally:
        stop(agent)
        pub.close()
        await service.stop()


async def test_embedded_broker_takes_a_report_from_mosquitto_pub(tmp_path: Path) -> None:
    service = await started(collector_config(tmp_path, None))
    try:
        assert service.broker is not None
        payload = json.dumps(report("hill-3", 1, [
            {"peer": "roof-7", "iface": "wlan0", "kind": "wifi", "signal_dbm": -63}]))
        # the broker runs on this event loop: the client must not block it
        proc = await asyncio.create_subprocess_exec(
            "mosquitto_pub", "-h", "127.0.0.1", "-p", str(service.broker.port), "-q", "1",
            "-t", "meshmon/v1/node/hill-3/report", "-m", payload,
        )
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        url = f"{service.http_url}/api/v1/nodes/hill-3"

        async def shown() -> bool:
            return (await get_json(url))["status"] == 200

        await eventually(shown, 10, "hill-3 in the API")
        body = (await get_json(url))["body"]
        assert body["uptime_s"] == 101
        assert [(e["peer"], e["out"]["metrics"]["signal_dbm"]) for e in body["links"]] == [
            ("roof-7", -63)]
        topo = (await get_json(f"{service.http_url}/api/v1/topology"))["body"]
        assert topo["type"] == "NetworkGraph"
        assert {(lk["source"], lk["target"]) for lk in topo["links"]} == {("hill-3", "roof-7")}
    finally:
        await service.stop()


async def test_malformed_input_is_counted_by_reason_and_never_stops_ingest(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    service = await started(collector_config(tmp_path, mosquitto.port))
    pub = Publisher(mosquitto.port)
    good_link = {"peer": "x2", "iface": "wlan0", "kind": "wifi", "signal_dbm": -70}
    bad = {
        "json": ("meshmon/v1/node/bad1/report", b"{oops"),
        "schema": ("meshmon/v1/node/bad2/report",
                   json.dumps(report("bad2", 1, [good_link]) | {"seq": "many"}).encode()),
        "node_mismatch": ("meshmon/v1/node/bad3/report",
                          json.dumps(report("someone-else", 1, [good_link])).encode()),
        "version": ("meshmon/v1/node/bad4/report",
                    json.dumps(report("bad4", 1, [good_link]) | {"v": 9}).encode()),
        "oversize": ("meshmon/v1/node/bad5/report", b"{" + b" " * 70_000 + b"}"),
    }
    out_of_range = report("bad6", 1, [good_link | {"signal_dbm": 400}])
    wrong_type_status = {"v": 1, "node": "bad7", "online": "maybe"}
    try:
        for topic, payload in bad.values():
            await pub.send(topic, payload)
        await pub.send("meshmon/v1/node/bad6/report", out_of_range)
        await pub.send("meshmon/v1/node/bad7/status", wrong_type_status)
        await pub.send("meshmon/v1/node/good1/report", report("good1", 1, [good_link]))
        url = service.http_url

        async def counted() -> bool:
            text = await get_text(f"{url}/metrics")
            return metric(text, "meshmon_reports_received_total") >= 1 and metric(
                text, "meshmon_rejected_total", reason="schema") >= 3

        await eventually(counted, 10, "rejections counted")
        text = await get_text(f"{url}/metrics")
        assert metric(text, "meshmon_rejected_total", reason="json") == 1
        assert metric(text, "meshmon_rejected_total", reason="schema") == 3
        assert metric(text, "meshmon_rejected_total", reason="node_mismatch") == 1
        assert metric(text, "meshmon_rejected_total", reason="version") == 1
        assert metric(text, "meshmon_rejected_total", reason="oversize") == 1
        nodes = (await get_json(f"{url}/api/v1/nodes"))["body"]["nodes"]
        assert [n["id"] for n in nodes] == ["good1"]
        # and ingest goes on after all of that
        await pub.send("meshmon/v1/node/good2/report", report("good2", 1, [good_link]))

        async def good2() -> bool:
            return (await get_json(f"{url}/api/v1/nodes/good2"))["status"] == 200

        await eventually(good2, 10, "a valid report after the bad ones")
    finally:
        pub.close()
        await service.stop()


async def test_broker_restart_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    mq = servers.start_mosquitto(persistence=True)
    service = await started(collector_config(tmp_path, mq.port))
    agent = start_agent(tmp_path, mq.port, "steady", interval_s=0.5)
    try:
        async def reporting() -> bool:
            text = await get_text(f"{service.http_url}/metrics")
            return metric(text, "meshmon_reports_received_total") >= 3

        await eventually(reporting, 15, "agent reporting")
        mq.proc.terminate()  # Mosquitto saves sessions and queued messages on SIGTERM
        mq.proc.wait(10)
        outage_from = time.time()
        await asyncio.sleep(3)
        outage_to = time.time()
        servers.restart(mq)

        async def after_outage() -> bool:
            assert service.store is not None
            rows = await service.store.samples(SeriesKey("node", "steady"))
            return any(r["ts"] > outage_to + 2 for r in rows)

        await eventually(after_outage, 30, "reports after the outage")
    finally:
        stop(agent)
        await service.stop()
        mq.stop()
    db = sqlite3.connect(tmp_path / "meshmon.sqlite")
    tables = HistoryTables(db)
    ts = [r["ts"] for r in query.samples(tables, pending_buckets(tables),
                                         SeriesKey("node", "steady"))]
    db.close()
    during = [t for t in ts if outage_from < t < outage_to]
    assert len(during) >= 4, "reports taken during the outage arrive afterwards"
    # (samples are stored by the time they were taken, whenever they arrive)
    gaps = [b - a for a, b in itertools.pairwise(ts)]
    assert max(gaps) < 1.2, f"a report is missing: largest gap {max(gaps):.2f}s"


async def test_restarted_collector_shows_the_network_from_sqlite(tmp_path: Path) -> None:
    first = await started(collector_config(tmp_path, None))
    assert first.broker is not None
    pub = Publisher(first.broker.port)
    try:
        await pub.send("meshmon/v1/node/gw-1/info", info("gw-1", gateway=True,
                                                   macs=["02:00:00:00:00:01"]))
        await pub.send("meshmon/v1/node/leaf-2/report", report("leaf-2", 1, [
            {"peer_mac": "02:00:00:00:00:01", "iface": "wlan0", "kind": "wifi",
             "signal_dbm": -58}]))
        await pub.send("meshmon/v1/node/gw-1/report", report("gw-1", 1, [
            {"peer": "leaf-2", "iface": "wlan0", "kind": "wifi", "signal_dbm": -60}]))

        async def both() -> bool:
            links = (await get_json(f"{first.http_url}/api/v1/links"))["body"]["links"]
            return len(links) == 2

        await eventually(both, 10, "two links")
        before = (await get_json(f"{first.http_url}/api/v1/topology"))["body"]
    finally:
        pub.close()
        await first.stop()

    # a new collector on a new, empty broker: everything it shows comes from SQLite
    second = await started(collector_config(tmp_path, None))
    try:
        after = (await get_json(f"{second.http_url}/api/v1/topology"))["body"]
        assert {n["id"] for n in after["nodes"]} == {n["id"] for n in before["nodes"]} == {
            "gw-1", "leaf-2"}
        assert after["links"] == before["links"]
        gw = (await get_json(f"{second.http_url}/api/v1/nodes/gw-1"))["body"]
        assert gw["gateway"] is True and gw["online"] is True
        assert [(e["peer"], e["out"]["metrics"]["signal_dbm"], e["in"]["metrics"]["signal_dbm"])
                for e in gw["links"]] == [("leaf-2", -60, -58)]
    finally:
        await second.stop()
