"""Outage alerts end to end: nodes over a real Mosquitto, the collector, a real webhook
receiver (and a real SMTP server). Each test asserts exactly which alerts arrive."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiosmtpd.controller import Controller

from meshmon.service import Service
from tests import servers
from tests.agent_process import start_agent, stop
from tests.integration.harness import (
    collector_config,
    eventually,
    get_json,
    get_text,
    metric,
    started,
)
from tests.integration.scripted_mesh import LEAVES, ScriptedMesh, WebhookReceiver, backbone_edges
from tests.servers import free_port


def config_for(tmp: Path, port: int, hook: WebhookReceiver, **extra: Any) -> Any:
    sections: dict[str, Any] = {
        "notifiers": [{"name": "hook", "type": "webhook", "url": hook.url, "timeout_s": 2}],
        "alerts": {"retry_max_s": 1},
        "http": {"admin_token": "sekrit"},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(sections.get(key), dict):
            sections[key] = {**sections[key], **value}
        else:
            sections[key] = value
    return collector_config(tmp, port, **sections)


async def settle(mesh: ScriptedMesh, service: Service, nodes: int) -> None:
    """Wait until the collector has every node online and the links of a full round."""
    async def ready() -> bool:
        topo = service.topology
        online = sum(1 for n in topo.nodes.values() if n.online)
        return online == nodes and topo.graph.number_of_edges() >= len(mesh.adj) - 1
    await eventually(ready, 15, "mesh online")


async def quiet(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_leaf_power_cut_fires_once_through_the_last_will(tmp_path: Path,
                                                               mosquitto: servers.Server) -> None:
    hook = WebhookReceiver()
    await hook.start()
    # a real agent process is the leaf; a scripted gateway hears it
    proc = start_agent(tmp_path, mosquitto.port, "leaf-1", 1.0)
    mesh = ScriptedMesh(mosquitto.port, [("gw", "leaf-1")], {"gw"}, external=frozenset({"leaf-1"}))
    service = await started(config_for(tmp_path, mosquitto.port, hook))
    try:
        await mesh.start()
        await eventually(lambda: _reported(service, "leaf-1"), 20, "agent reporting")
        proc.send_signal(signal.SIGKILL)  # power cut: no DISCONNECT, no clean status
        killed_at = time.time()
        mesh.radio_up.discard("leaf-1")
        await eventually(lambda: _count(hook, "outage", "firing", 1), 5, "firing alert")
        latency = hook.times[0] - killed_at
        alert = hook.received[0]
        assert alert["cause"] == {"nodes": ["leaf-1"], "links": []}
        assert alert["affected"] == [] and alert["status"] == "firing"
        assert alert["id"] and alert["started_at"].endswith("Z") and alert["ended_at"] is None
        assert "leaf-1" in alert["summary"]
        assert latency < 2.0, latency
        await quiet(2)
        assert len(hook.received) == 1, hook.received
        # it comes back: one resolved alert with the duration
        proc = start_agent(tmp_path, mosquitto.port, "leaf-1", 1.0)
        await eventually(lambda: _count(hook, "outage", "resolved", 1), 15, "resolved alert")
        done = hook.of("outage", "resolved")[0]
        assert done["id"] == alert["id"]
        assert done["duration_s"] > 0 and done["ended_at"] is not None
    finally:
        stop(proc)
        await mesh.stop()
        await service.stop()
        await hook.stop()


async def test_backbone_failure_is_one_alert_naming_it_with_its_ten_leaves(
    tmp_path: Path, mosquitto: servers.Server, influxdb1: servers.Server
) -> None:
    hook = WebhookReceiver()
    await hook.start()
    mesh = ScriptedMesh(mosquitto.port, backbone_edges(), {"gw"})
    influx = {"enabled": True, "api": "v1", "url": influxdb1.url, "database": "alerts_e2e",
              "flush_interval_s": 0.2}
    service = await started(config_for(tmp_path, mosquitto.port, hook, influxdb=influx))
    try:
        await mesh.start()
        await settle(mesh, service, 13)
        order = ["b", *LEAVES]
        random.Random(3).shuffle(order)  # the wills arrive in any order
        for node in order:
            mesh.drop(node)
        await eventually(lambda: _count(hook, "outage", "firing", 1), 5, "one firing alert")
        await quiet(2.5)
        assert len(hook.received) == 1, [a["summary"] for a in hook.received]
        alert = hook.received[0]
        assert alert["cause"]["nodes"] == ["b"]
        assert alert["affected"] == sorted(LEAVES)
        assert alert["severity"] == "critical"
        # public outage API names the same, without owner contacts
        body = (await get_json(f"{service.http_url}/api/v1/outages"))["body"]
        assert [o["id"] for o in body["outages"]] == [alert["id"]]
        assert "example.org" not in str(body)
        # weak points (before the failure b cut off the leaves) are listed
        for node in ["b", *LEAVES]:
            await mesh.revive(node)
        await eventually(lambda: _count(hook, "outage", "resolved", 1), 10, "resolved")
        await quiet(2)
        assert [(a["status"], a["kind"]) for a in hook.received] == [
            ("firing", "outage"), ("resolved", "outage")]
        done = hook.received[1]
        assert done["id"] == alert["id"] and done["duration_s"] >= 2.5
        text = await get_text(f"{service.http_url}/metrics")
        assert metric(text, "meshmon_alerts_total", outcome="sent") == 2
        assert metric(text, "meshmon_alert_deliveries", notifier="hook", state="delivered") == 2
        assert metric(text, "meshmon_incidents_open") == 0
        # every alert is an `event` point in InfluxDB too
        await service.sinks[-1].flush()
        query = "SELECT status, cause, affected FROM event WHERE kind = 'outage'"
        rows = servers.influx_query(influxdb1, "alerts_e2e", query)
        values = rows["results"][0]["series"][0]["values"]
        assert [(v[1], v[2], v[3]) for v in values] == [("firing", "b", 10), ("resolved", "b", 10)]
    finally:
        await mesh.stop()
        await service.stop()
        await hook.stop()


async def test_backbone_failing_again_blames_only_the_backbone(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    """b and two of its leaves are real agent processes (their neighbours list them by
    id); b loses power three times within a minute and its leaves lose their MQTT path
    with it (their wills arrive in any order).
    Each of the first two failures is one outage naming b with its ten leaves; the third
    is one flapping alert, for b. The leaves, only ever cut off, never flap."""
    hook = WebhookReceiver()
    await hook.start()
    agents = ["b", "l3", "l6"]
    procs = {n: start_agent(tmp_path, mosquitto.port, n, 1.0) for n in agents}
    mesh = ScriptedMesh(mosquitto.port, backbone_edges(), {"gw"}, external=frozenset(agents))
    service = await started(config_for(tmp_path, mosquitto.port, hook))
    rng = random.Random(11)
    try:
        await mesh.start()
        await settle(mesh, service, 13)
        for cycle in range(3):
            order = ["b", *LEAVES]
            rng.shuffle(order)
            for node in order:
                if node in procs:  # power cut: no DISCONNECT, the broker sends the will
                    procs[node].send_signal(signal.SIGKILL)
                    mesh.radio_up.discard(node)
                else:
                    mesh.drop(node)
            kind, n = ("outage", cycle + 1) if cycle < 2 else ("flapping", 1)
            await eventually(lambda k=kind, n=n: _count(hook, k, "firing", n), 8,
                             f"firing alert of failure {cycle + 1}")
            await quiet(1)  # the leaves' wills and timeouts come in meanwhile
            for node in ["b", *LEAVES]:
                if node in procs:
                    procs[node] = start_agent(tmp_path, mosquitto.port, node, 1.0)
                else:
                    await mesh.revive(node)
            for node in procs:  # neighbours hear it once it is up (before: only `silent`)
                await eventually(lambda n=node: _reported(service, n), 10, f"{node} back")
                mesh.radio_up.add(node)
            await settle(mesh, service, 13)
            if cycle < 2:
                await eventually(lambda c=cycle: _count(hook, "outage", "resolved", c + 1), 8,
                                 f"recovery {cycle + 1}")
        await quiet(1.5)
        assert [(a["kind"], a["status"]) for a in hook.received] == [
            ("outage", "firing"), ("outage", "resolved"),
            ("outage", "firing"), ("outage", "resolved"), ("flapping", "firing")], [
                (a["status"], a["summary"]) for a in hook.received]
        for alert in hook.of("outage", "firing"):
            assert alert["cause"] == {"nodes": ["b"], "links": []}
            assert alert["affected"] == sorted(LEAVES)
        assert hook.of("flapping")[0]["cause"] == {"nodes": ["b"], "links": []}
        nodes = (await get_json(f"{service.http_url}/api/v1/nodes"))["body"]
        states = {n["id"]: n.get("state") for n in nodes["nodes"]}
        assert states["b"] == "flapping"
        assert {states[leaf] for leaf in LEAVES} == {"online"}
    finally:
        for proc in procs.values():
            stop(proc)
        await mesh.stop()
        await service.stop()
        await hook.stop()


async def test_hung_agent_is_an_outage_by_timeout_but_a_heard_one_is_only_silent(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    hook = WebhookReceiver()
    await hook.start()
    edges = [("gw", "a"), ("a", "heard"), ("gw", "lonely")]
    mesh = ScriptedMesh(mosquitto.port, edges, {"gw"})
    service = await started(
        config_for(tmp_path, mosquitto.port, hook, topology={"offline_after_s": 3}))
    try:
        await mesh.start()
        await settle(mesh, service, 4)
        mesh.hang("heard")  # a still hears it: router up, agent hung
        mesh.hang("lonely")
        mesh.radio_up.discard("lonely")  # nobody hears this one
        hung_at = time.time()
        await eventually(lambda: _count(hook, "outage", "firing", 1), 8, "timeout outage")
        assert hook.of("outage")[0]["cause"]["nodes"] == ["lonely"]
        assert hook.times[-1] - hung_at <= 3 + 1 + 1.0  # offline_after_s + a report interval + 1 s
        await eventually(lambda: _count(hook, "silent", "firing", 1), 8, "silent alert")
        assert hook.of("silent")[0]["cause"]["nodes"] == ["heard"]
        await quiet(2)
        assert sorted((a["kind"], a["status"]) for a in hook.received) == [
            ("outage", "firing"), ("silent", "firing")]
        node = (await get_json(f"{service.http_url}/api/v1/alerts?token=sekrit"))["body"]
        assert {i["kind"] for i in node["open"]} == {"outage", "silent"}
    finally:
        await mesh.stop()
        await service.stop()
        await hook.stop()


async def test_flapping_node_and_flapping_link_give_one_flapping_alert_each(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    hook = WebhookReceiver()
    await hook.start()
    edges = [("gw", "a"), ("a", "b"), ("gw", "b"), ("gw", "f")]
    mesh = ScriptedMesh(mosquitto.port, edges, {"gw"}, interval_s=0.5)
    service = await started(config_for(tmp_path, mosquitto.port, hook))
    try:
        await mesh.start()
        await settle(mesh, service, 4)
        for _ in range(4):  # f drops and comes back faster than the group wait
            mesh.drop("f")
            await asyncio.sleep(0.15)
            await mesh.revive("f")
            await asyncio.sleep(0.6)
        for i in range(6):  # a's view of b comes and goes
            if i % 2 == 0:
                mesh.hidden_links.add(("a", "b"))
            else:
                mesh.hidden_links.discard(("a", "b"))
            await asyncio.sleep(0.6)
        await eventually(lambda: _count(hook, "flapping", "firing", 2), 5, "two flapping alerts")
        await quiet(1.5)
        flaps = hook.of("flapping")
        assert len(hook.received) == 2, [a["summary"] for a in hook.received]
        assert sorted(str(a["cause"]) for a in flaps) == sorted([
            str({"nodes": ["f"], "links": []}),
            str({"nodes": [], "links": [{"a": "a", "b": "b", "kind": "wifi"}]}),
        ])
    finally:
        await mesh.stop()
        await service.stop()
        await hook.stop()


async def test_silenced_node_says_nothing_until_the_silence_ends(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    hook = WebhookReceiver()
    await hook.start()
    mesh = ScriptedMesh(mosquitto.port, [("gw", "m"), ("gw", "other")], {"gw"})
    service = await started(config_for(tmp_path, mosquitto.port, hook))
    url = f"{service.http_url}/api/v1/silences"
    try:
        await mesh.start()
        await settle(mesh, service, 3)
        async with aiohttp.ClientSession() as s:
            async with s.post(url, json={"node": "m", "duration_s": 4, "reason": "roof work"}) as r:
                assert r.status == 401
            async with s.post(url, json={"node": "m", "duration_s": 4, "reason": "roof work"},
                              headers={"Authorization": "Bearer sekrit"}) as r:
                assert r.status == 201
                silence = await r.json()
        mesh.drop("m")
        await quiet(2)
        assert hook.received == []
        mesh.drop("other")  # not silenced: fires
        await eventually(lambda: _count(hook, "outage", "firing", 1), 5, "unsilenced alert")
        assert hook.received[0]["cause"]["nodes"] == ["other"]
        # the silence ends while m is still down: now it fires
        await eventually(lambda: _count(hook, "outage", "firing", 2), 8, "after the silence")
        assert hook.received[1]["cause"]["nodes"] == ["m"]
        assert hook.times[1] >= silence["ends_at"] - 0.5
        log = (await get_json(f"{service.http_url}/api/v1/alerts?token=sekrit"))["body"]["log"]
        assert [(row["silenced"], row["payload"]["cause"]["nodes"]) for row in log] == [
            (True, ["m"]), (False, ["other"]), (False, ["m"])]
        text = await get_text(f"{service.http_url}/metrics")
        assert metric(text, "meshmon_alerts_total", outcome="sent") == 2
        assert metric(text, "meshmon_alerts_total", outcome="silenced") == 1
        assert metric(text, "meshmon_alerts_total", outcome="no_notifier") == 0
    finally:
        await mesh.stop()
        await service.stop()
        await hook.stop()


async def test_without_a_notifier_alerts_are_counted_as_going_nowhere(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    mesh = ScriptedMesh(mosquitto.port, [("gw", "x")], {"gw"})
    service = await started(collector_config(tmp_path, mosquitto.port,
                                             http={"admin_token": "sekrit"}))
    try:
        await mesh.start()
        await settle(mesh, service, 2)
        mesh.drop("x")

        async def logged() -> bool:
            body = (await get_json(f"{service.http_url}/api/v1/alerts?token=sekrit"))["body"]
            return bool(body["log"])

        await eventually(logged, 10, "the outage in the alert log")
        log = (await get_json(f"{service.http_url}/api/v1/alerts?token=sekrit"))["body"]["log"]
        assert [(row["kind"], row["notifiers"], row["silenced"]) for row in log] == [
            ("outage", [], False)]
        # made, but handed to nobody: not "sent"
        text = await get_text(f"{service.http_url}/metrics")
        assert metric(text, "meshmon_alerts_total", outcome="no_notifier") == 1
        assert metric(text, "meshmon_alerts_total", outcome="sent") == 0
    finally:
        await mesh.stop()
        await service.stop()


async def test_alert_waits_for_a_webhook_that_is_down_and_survives_a_restart(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    hook = WebhookReceiver()  # not started: the receiver is down
    mesh = ScriptedMesh(mosquitto.port, [("gw", "r1"), ("r1", "b"), ("b", "c")], {"gw"})
    config = config_for(tmp_path, mosquitto.port, hook)
    service = await started(config)
    try:
        await mesh.start()
        await settle(mesh, service, 4)
        mesh.drop("b")
        mesh.drop("c")
        await eventually(lambda: _has_log(service, 1), 5, "alert logged")
        await service.stop()  # restart mid-outage, with the firing still undelivered
        service = await started(config)
        await quiet(1.5)
        await hook.start()
        await eventually(lambda: _count(hook, "outage", "firing", 1), 10, "late delivery")
        assert hook.received[0]["cause"]["nodes"] == ["b"]
        assert hook.received[0]["affected"] == ["c"]
        await quiet(1.5)
        assert len(hook.received) == 1  # no duplicate firing after the restart
        await mesh.revive("b")
        await mesh.revive("c")
        await eventually(lambda: _count(hook, "outage", "resolved", 1), 10, "resolved")
        assert hook.of("outage", "resolved")[0]["id"] == hook.received[0]["id"]
    finally:
        await mesh.stop()
        await service.stop()
        await hook.stop()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


async def test_outage_is_emailed_through_a_real_smtp_server(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hook = WebhookReceiver()
    mesh = ScriptedMesh(mosquitto.port, [("gw", "x")], {"gw"})
    mail = {"name": "mail", "type": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
            "security": "none", "sender": "meshmon@example.net", "to": ["noc@example.net"]}
    service = await started(config_for(tmp_path, mosquitto.port, hook, notifiers=[mail]))
    try:
        await mesh.start()
        await settle(mesh, service, 2)
        mesh.drop("x")

        async def mailed() -> bool:
            return len(inbox.messages) == 1
        await eventually(mailed, 8, "email")
        text = inbox.messages[0].decode()
        assert "To: noc@example.net" in text
        assert "outage" in text and "x" in text
    finally:
        await mesh.stop()
        await service.stop()
        smtp.stop()


async def _reported(service: Service, node: str) -> bool:
    state = service.topology.nodes.get(node)
    return state is not None and state.online and state.last_report is not None


async def _count(hook: WebhookReceiver, kind: str, status: str, n: int) -> bool:
    return len(hook.of(kind, status)) >= n


async def _has_log(service: Service, n: int) -> bool:
    return len(await service.alerting.alert_log(0, 100)) >= n
