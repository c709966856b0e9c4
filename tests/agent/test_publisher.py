"""Publisher against a real Mosquitto: status, will, info, bounded queue, order, fast stop."""

from __future__ import annotations

import time

from meshmon_agent.config import MqttSettings
from meshmon_agent.publisher import Publisher

from tests import servers
from tests.agent.mqtt_helpers import Recorder

BASE = "meshmon/v1/node/"


def test_status_info_report_and_commands(mosquitto: servers.Server) -> None:
    rec = Recorder(mosquitto.port, BASE + "p1/#")
    pub = Publisher(MqttSettings(port=mosquitto.port), "p1")
    got: list[dict] = []
    pub.on_command(got.append)
    pub.publish_info({"v": 1, "node": "p1", "macs": []})
    pub.start()
    try:
        status = rec.wait_for(lambda m: m.topic.endswith("/status"), what="status")
        assert status.payload["online"] is True and status.payload["node"] == "p1"
        rec.wait_for(lambda m: m.topic.endswith("/info"), what="info")
        pub.publish_report({"v": 1, "node": "p1", "seq": 0})
        rec.wait_for(lambda m: m.topic.endswith("/report"), what="report")
        rec.publish(BASE + "p1/cmd", {"cmd": "fast", "interval_s": 1, "duration_s": 5})
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [{"cmd": "fast", "interval_s": 1, "duration_s": 5}]
        started = time.monotonic()
        pub.stop()
        assert time.monotonic() - started < 0.5
        off = rec.wait_for(lambda m: m.topic.endswith("/status") and not m.payload["online"])
        assert off.payload["ts"] > 0
    finally:
        pub.stop()
        rec.close()


def test_kill_makes_the_broker_send_the_will(mosquitto: servers.Server) -> None:
    pub = Publisher(MqttSettings(port=mosquitto.port), "p2")
    pub.start()
    rec = Recorder(mosquitto.port, BASE + "p2/status")
    try:
        rec.wait_for(lambda m: m.payload["online"] is True)
        pub.kill()
        will = rec.wait_for(lambda m: m.payload["online"] is False, what="last will")
        assert will.payload == {"v": 1, "node": "p2", "online": False}
    finally:
        rec.close()
    late = Recorder(mosquitto.port, BASE + "p2/status")
    try:
        retained = late.wait_for(lambda m: True, what="retained status")
        assert retained.retain and retained.payload["online"] is False
    finally:
        late.close()


def test_queue_while_no_broker_is_bounded_then_sent_in_order() -> None:
    port = servers.free_port()
    pub = Publisher(MqttSettings(port=port, queue_max=3), "p3")
    pub.start()
    for seq in range(5):
        pub.publish_report({"v": 1, "node": "p3", "seq": seq})
    assert (pub.pending, pub.dropped) == (3, 2)
    server = servers.start_mosquitto(port)
    rec = Recorder(port, BASE + "p3/report")
    try:
        # the publisher retries every 1 s; the recorder subscribed first
        rec.wait_for(lambda m: m.payload["seq"] == 4, timeout=10)
        assert [m.payload["seq"] for m in rec.where("/report")] == [2, 3, 4]
        assert pub.wait_idle(5) and pub.sent == 3
    finally:
        pub.stop()
        rec.close()
        server.stop()
