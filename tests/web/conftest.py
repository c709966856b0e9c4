"""A small network fed to a core as real wire models, and the app served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from meshmon.config import Config
from meshmon.metrics import Metrics
from meshmon.model.core import Core, CoreSettings
from meshmon.model.topology import Topology
from meshmon.model.wire import Info, Report, Status
from meshmon.web.app import create_app
from meshmon.web.context import WebContext

NOW = 1_700_000_000.0

CONTACTS = (
    "alice@example.org",
    "+49 170 5550101",
    "Bob Builder",
    "bob@builder.example",
    "carol-signal-handle",
)
MACS = {
    "alpha": ["02:aa:00:00:00:01", "02:aa:00:00:00:02"],
    "bravo": ["02:bb:00:00:00:01", "02:bb:00:00:00:02"],
    "charlie": ["02:cc:00:00:00:01"],
    "delta": ["02:dd:00:00:00:01"],
}
UNKNOWN_MAC = "02:ee:00:00:00:99"
SECRETS = (*CONTACTS, *(m for ms in MACS.values() for m in ms), UNKNOWN_MAC)

ALPHA_LOC = {"lat": 52.520008, "lon": 13.404954, "alt_m": 48.0}
BRAVO_LOC = {"lat": 52.512345, "lon": 13.418765, "alt_m": 12.0}


def infos() -> list[Info]:
    return [
        Info.model_validate({
            "v": 1, "node": "alpha", "hostname": "alpha-roof", "model": "Ubiquiti NanoStation M5",
            "firmware": "OpenWrt 23.05.2", "location": ALPHA_LOC, "macs": MACS["alpha"],
            "gateway": True, "owner": {"contact": "alice@example.org +49 170 5550101"},
            "tags": ["backbone", "roof"],
        }),
        Info.model_validate({
            "v": 1, "node": "bravo", "hostname": "bravo-home", "model": "TP-Link CPE510",
            "firmware": "gluon-v2023.2", "location": BRAVO_LOC, "macs": MACS["bravo"],
            "owner": {"contact": "Bob Builder bob@builder.example"}, "public": False,
        }),
        Info.model_validate({
            "v": 1, "node": "charlie", "hostname": "charlie", "macs": MACS["charlie"],
            "owner": {"contact": "carol-signal-handle"},
        }),
        # agents are not trusted: addresses hidden in free text must not come out
        Info.model_validate({
            "v": 1, "node": "delta", "hostname": "192.168.7.1", "model": "x86",
            "firmware": "build 02:dd:00:00:00:01", "macs": MACS["delta"],
            "tags": ["mail me: dave@example.net", "ok-tag", "fd00::7"],
        }),
    ]  # fmt: skip


def reports() -> list[Report]:
    return [
        Report.model_validate({
            "v": 1, "node": "alpha", "ts": NOW, "seq": 5, "interval_s": 30, "clients": 7,
            "sys": {"uptime_s": 3600, "load": [0.5, 0.4, 0.3], "mem_total_kb": 60000,
                    "mem_avail_kb": 30000, "rootfs_used_pct": 40},
            "ifaces": [{"name": "wlan0", "up": True, "rx_bytes": 1000, "tx_bytes": 2000},
                       {"name": "eth0", "up": True}],
            "radios": [{"iface": "wlan0", "freq_mhz": 5180, "channel": 36, "width_mhz": 20,
                        "noise_dbm": -95, "clients": 7}],
            "links": [
                {"peer_mac": MACS["bravo"][0], "iface": "wlan0", "kind": "wifi",
                 "signal_dbm": -61, "chains_dbm": [-63, -64], "snr_db": 34,
                 "tx_rate_mbps": 130, "expected_tput_mbps": 60},
                {"peer_mac": UNKNOWN_MAC, "iface": "wlan0", "kind": "wifi", "signal_dbm": -80},
            ],
        }),
        Report.model_validate({
            "v": 1, "node": "bravo", "ts": NOW, "seq": 9, "interval_s": 30,
            "sys": {"uptime_s": 120},
            "links": [
                {"peer": "alpha", "iface": "wlan1", "kind": "wifi", "signal_dbm": -64},
                {"peer_mac": MACS["charlie"][0], "iface": "bat0", "kind": "batman", "tq": 200},
            ],
        }),
        Report.model_validate({
            "v": 1, "node": "charlie", "ts": NOW, "seq": 1, "interval_s": 30,
            "links": [{"peer": "alpha", "iface": "eth0", "kind": "ethernet"}],
        }),
    ]  # fmt: skip


def build_core() -> Core:
    core = Core(CoreSettings(offline_after_intervals=3, link_timeout_s=300))
    for info in infos():
        core.apply(info, NOW - 10)
    for node in ("alpha", "bravo", "charlie"):
        core.apply(Status(v=1, node=node, online=True, ts=NOW), NOW - 5)
    for report in reports():
        core.apply(report, NOW)
    return core


def build_topology() -> Topology:
    """The topology of `build_core()`, for the pure functions that read one."""
    return build_core().topology


@dataclass
class Served:
    client: TestClient[Any, Any]
    ctx: WebContext

    async def get_json(self, path: str, status: int = 200) -> Any:
        resp = await self.client.get(path)
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        return await resp.json()


@pytest.fixture
def core() -> Core:
    return build_core()


@pytest.fixture
def topology(core: Core) -> Topology:
    """The core's topology, to read (changes go through `core.apply`)."""
    return core.topology


@pytest.fixture
def ctx(core: Core) -> WebContext:
    return WebContext(core=core, config=Config(), metrics=Metrics(), clock=lambda: NOW)


@pytest.fixture
async def served(ctx: WebContext) -> AsyncIterator[Served]:
    server = TestServer(create_app(ctx), host="127.0.0.1")
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    try:
        yield Served(client, ctx)
    finally:
        await client.close()
