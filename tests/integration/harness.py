"""Helpers for end-to-end tests: a collector on real servers, a paho publisher, polling."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from meshmon.config import Config
from meshmon.service import Service


def collector_config(tmp: Path, mqtt_port: int | None, **sections: Any) -> Config:
    """A config for a test collector: external broker on `mqtt_port` (None → embedded)."""
    data: dict[str, Any] = {
        "mqtt": (
            {"broker": "external", "host": "127.0.0.1", "port": mqtt_port,
             "client_id": f"collector-{tmp.name}"[:60]}
            if mqtt_port is not None
            else {"broker": "embedded", "embedded": {"port": 0}}
        ),
        "http": {"host": "127.0.0.1", "port": 0},
        "storage": {"path": str(tmp / "meshmon.sqlite"), "flush_interval_s": 0.2},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(name, {}).update(values)
        else:  # [[notifiers]], [[routes]]
            data[name] = values
    return Config.model_validate(data)


async def started(config: Config) -> Service:
    service = Service(config)
    await service.start()
    assert service.ingest is not None
    await asyncio.wait_for(service.ingest.connected.wait(), 10)
    return service


async def collector_with_webhook(tmp: Path, mqtt_port: int, hook_url: str,
                                 **sections: Any) -> Service:
    """A started test collector on an external broker whose alerts all go to one webhook
    (a failed delivery is retried within a second)."""
    return await started(collector_config(
        tmp, mqtt_port, alerts={"retry_max_s": 1}, **sections,
        notifiers=[{"name": "hook", "type": "webhook", "url": hook_url, "timeout_s": 2}]))


class Publisher:
    """A bare paho client that publishes raw payloads (QoS 1) and waits for PUBACK."""

    def __init__(self, port: int, client_id: str = "") -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    async def send(
        self, topic: str, payload: bytes | str | dict[str, Any], retain: bool = False
    ) -> None:
        """Publish and wait for the PUBACK without blocking the loop (it may run the broker)."""
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)
        assert info.is_published(), f"no PUBACK for {topic}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return {"status": r.status, "body": await r.json(content_type=None)}


async def get_text(url: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.text()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.1)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text (0 when absent)."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
                   if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0
