"""Hostile MQTT traffic through a real Mosquitto into a running `meshmon serve`: every message
that reaches the collector becomes a model or a reject counted on /metrics by reason, none
is an exception ("internal"), nothing is logged as an error, and a valid report still gets
in afterwards."""

from __future__ import annotations

import json
import threading
import time
import unicodedata
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from tests import servers
from tests.collector_process import CollectorProcess, serve_config
from tests.fuzz import scaled
from tests.fuzz.payloads import BASES, PREFIX, messages
from tests.integration.harness import metric

SUBSCRIPTIONS = [f"{PREFIX}/v1/node/+/{kind}" for kind in ("status", "info", "report")]
WAIT_S = 20.0


def broker_takes(topic: str) -> bool:
    """A topic Mosquitto accepts in a PUBLISH (others close the connection: MQTT 3.1.1
    forbids wildcards, U+0000, and Mosquitto control characters and non-characters too)."""
    if not topic or "+" in topic or "#" in topic or len(topic.encode("utf-8", "replace")) > 65535:
        return False
    for ch in topic:
        code = ord(ch)
        if unicodedata.category(ch) in ("Cc", "Cs") or 0xFDD0 <= code <= 0xFDEF:
            return False
        if code & 0xFFFF in (0xFFFE, 0xFFFF):
            return False
    return True


def delivered(topic: str) -> bool:
    return any(paho.topic_matches_sub(sub, topic) for sub in SUBSCRIPTIONS)


def counts(text: str) -> tuple[float, float, float]:
    """(messages received, messages classified: applied or rejected, rejected as internal)."""
    rejected = sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("meshmon_rejected_total{"))
    applied = sum(metric(text, f"meshmon_{kind}_received_total")
                  for kind in ("reports", "status", "info"))
    return (metric(text, "meshmon_mqtt_messages_total"), applied + rejected,
            metric(text, "meshmon_rejected_total", reason="internal"))


class Sender:
    """A paho client publishing at QoS 1 and waiting for each PUBACK."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fuzzer")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), f"no PUBACK for {topic!r}: the broker closed on it?"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess, Sender]]:
    mosquitto = servers.start_mosquitto()
    work = tmp_path_factory.mktemp("fuzz-collector")
    collector = CollectorProcess(work, serve_config(work, mosquitto.port, servers.free_port()))
    sender: Sender | None = None
    try:
        collector.start()
        sender = Sender(mosquitto.port)
        yield collector, sender
    finally:
        if sender is not None:
            sender.close()
        collector.stop()
        mosquitto.stop()


@settings(max_examples=scaled(20))
@given(st.lists(messages(subscribed=True).filter(lambda m: broker_takes(m[0])),
                min_size=5, max_size=30))
def test_every_message_is_applied_or_counted_as_rejected(
    setup: tuple[CollectorProcess, Sender], batch: list[tuple[str, bytes]]
) -> None:
    collector, sender = setup
    received, classified, _ = counts(collector.metrics())
    assert received == classified
    for topic, payload in batch:
        sender.send(topic, payload)
    expected = received + sum(delivered(topic) for topic, _ in batch)
    deadline = time.monotonic() + WAIT_S
    while True:
        now_received, now_classified, internal = counts(collector.metrics())
        if now_received == now_classified == expected:
            break
        assert time.monotonic() < deadline, (
            f"received {now_received}, classified {now_classified}, expected {expected}")
        time.sleep(0.05)
    assert internal == 0, collector.problems()


def test_a_valid_report_still_gets_in_and_nothing_was_logged_as_an_error(
    setup: tuple[CollectorProcess, Sender]
) -> None:
    collector, sender = setup
    report = dict(BASES["report"], node="after-fuzz", seq=4242, ts=time.time())
    sender.send(f"{PREFIX}/v1/node/after-fuzz/report", json.dumps(report).encode())
    deadline = time.monotonic() + WAIT_S
    while collector.get("/api/v1/nodes/after-fuzz")[0] != 200:
        assert time.monotonic() < deadline, "a valid report after the fuzzing"
        time.sleep(0.05)
    text = collector.metrics()
    assert metric(text, "meshmon_mqtt_messages_total") >= 100  # most of it reached it
    assert metric(text, "meshmon_rejected_total", reason="schema") > 0
    assert metric(text, "meshmon_rejected_total", reason="internal") == 0
    assert collector.problems() == []


def test_topic_filter_matches_what_the_broker_accepts() -> None:
    """The filter above only keeps topics Mosquitto takes: checked against a real one."""
    mosquitto = servers.start_mosquitto()
    try:
        for topic, ok in [("a/b", True), ("a/\u0001", False), ("a/\x7f", False),
                          ("a/\ufdd0", False), ("a/\U0001fffe", False), ("a/ö", True)]:
            assert broker_takes(topic) is ok
            closed = threading.Event()
            client = paho.Client(CallbackAPIVersion.VERSION2)
            client.on_disconnect = lambda *_args, closed=closed: closed.set()
            client.connect("127.0.0.1", mosquitto.port)
            client.loop_start()
            try:
                info = client.publish(topic, b"x", qos=1)
                deadline = time.monotonic() + 5
                while not (info.is_published() or closed.is_set()):
                    assert time.monotonic() < deadline, topic
                    time.sleep(0.01)
                assert info.is_published() is ok, topic
            finally:
                client.disconnect()
                client.loop_stop()
    finally:
        mosquitto.stop()

