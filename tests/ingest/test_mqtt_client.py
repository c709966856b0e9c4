"""The collector's own MQTT client against a real Mosquitto: keepalive, a broker that stops
answering, and QoS 1 publishes (the installer's `fast` command) sent again after a
reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from meshmon.ingest.mqtt_client import Endpoint, Incoming, MqttConnection
from meshmon.ingest.mqtt_packets import MQTT_5, ConnectRequest
from tests import servers

KEEPALIVE_S = 2


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[servers.Server]:
    # every packet in a log file (written line by line) with its time: the PINGREQs
    server = servers.start_mosquitto(extra_conf=(
        f"log_type all\nlog_dest file {tmp_path}/mosquitto.log\nlog_timestamp_format %s"))
    server.extra["log"] = str(tmp_path / "mosquitto.log")
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def running(connection: MqttConnection) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connection.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def connection(port: int, client_id: str, on_messages: list[Incoming] | None = None,
               subscriptions: list[tuple[str, int]] | None = None) -> MqttConnection:
    received = on_messages if on_messages is not None else []
    return MqttConnection(
        client_id, Endpoint("127.0.0.1", port),
        ConnectRequest(client_id=client_id, version=MQTT_5, clean_start=True,
                       keepalive_s=KEEPALIVE_S),
        subscriptions or [("test/ignored", 1)], received.extend, reconnect_delay_s=0.2)


async def connects(conn: MqttConnection, count: int, timeout: float) -> None:
    """Wait until the connection was accepted `count` times and is up."""
    async with asyncio.timeout(timeout):
        while conn.connects < count or not conn.connected.is_set():
            await asyncio.sleep(0.05)


def pingreq_times(server: servers.Server, client_id: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(
        rf"^(\d+): Received PINGREQ from {re.escape(client_id)}$",
        Path(server.extra["log"]).read_text(), re.M)]


async def test_keepalive_pings_at_the_interval_and_a_silent_broker_makes_it_reconnect(
        mosquitto: servers.Server, caplog: pytest.LogCaptureFixture) -> None:
    conn = connection(mosquitto.port, "keepalive-test")
    async with running(conn):
        await connects(conn, 1, timeout=10)
        # idle: a PINGREQ every keepalive/2, each answered
        async with asyncio.timeout(4 * KEEPALIVE_S):
            while conn.pings < 3:
                await asyncio.sleep(0.05)
        pings = pingreq_times(mosquitto, "keepalive-test")
        assert len(pings) >= 3
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        # the log has whole seconds: keepalive/2 = 1 s apart, never a keepalive or more
        assert all(gap < KEEPALIVE_S for gap in gaps), pings
        # the broker stops answering (its process stopped; the TCP connection stays open)
        caplog.set_level(logging.WARNING, logger="meshmon.ingest.mqtt_client")
        os.kill(mosquitto.proc.pid, signal.SIGSTOP)
        try:
            async with asyncio.timeout(4 * KEEPALIVE_S):
                while conn.connected.is_set():
                    await asyncio.sleep(0.05)
        finally:
            os.kill(mosquitto.proc.pid, signal.SIGCONT)
        assert "no answer from the broker" in caplog.text
        await connects(conn, 2, timeout=15)
        pinged = conn.pings
        async with asyncio.timeout(4 * KEEPALIVE_S):  # and it keeps pinging afterwards
            while conn.pings == pinged:
                await asyncio.sleep(0.05)


@pytest.fixture
def persistent_mosquitto() -> Iterator[servers.Server]:
    server = servers.start_mosquitto(persistence=True)
    try:
        yield server
    finally:
        server.stop()


async def test_a_command_published_while_the_broker_is_away_arrives_after_the_reconnect(
        persistent_mosquitto: servers.Server) -> None:
    mosquitto = persistent_mosquitto  # the agent's session survives the broker's restart
    got: list[tuple[str, bytes]] = []
    subscribed = asyncio.Event()
    loop = asyncio.get_running_loop()
    # the agent's side: a persistent paho session that keeps its subscription
    agent = paho.Client(CallbackAPIVersion.VERSION2, client_id="agent-cmd", clean_session=False)
    agent.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    agent.on_subscribe = lambda *_a: loop.call_soon_threadsafe(subscribed.set)
    agent.connect("127.0.0.1", mosquitto.port)
    agent.subscribe("meshmon/v1/node/agent-cmd/cmd", qos=1)
    agent.loop_start()
    conn = connection(mosquitto.port, "collector-control")
    try:
        async with running(conn):
            await connects(conn, 1, timeout=10)
            async with asyncio.timeout(10):
                await subscribed.wait()
            assert conn.publish("meshmon/v1/node/agent-cmd/cmd", b'{"cmd":"fast","n":1}')
            async with asyncio.timeout(10):
                while len(got) < 1 or conn._unacked:  # delivered, and acknowledged to us
                    await asyncio.sleep(0.05)
            # the broker goes away (a restart; it keeps no state): the next command
            # cannot be sent now, and is sent once the collector is connected again
            servers.pause(mosquitto)
            async with asyncio.timeout(10):
                while conn.connected.is_set():
                    await asyncio.sleep(0.05)
            assert not conn.publish("meshmon/v1/node/agent-cmd/cmd", b'{"cmd":"fast","n":2}')
            servers.restart(mosquitto)
            await connects(conn, 2, timeout=15)  # the agent's paho reconnects on its own
            async with asyncio.timeout(15):
                while len(got) < 2:
                    await asyncio.sleep(0.05)
    finally:
        agent.loop_stop()
        agent.disconnect()
    assert got[1] == ("meshmon/v1/node/agent-cmd/cmd", b'{"cmd":"fast","n":2}')
    assert not conn._unacked and conn.published_dropped == 0
