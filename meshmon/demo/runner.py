"""`meshmon demo`: embedded broker, collector and a simulated Freifunk network in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from meshmon.config import Config
from meshmon.demo.network import DemoNetwork, DemoNode, load_network
from meshmon.demo.simulator import Simulator
from meshmon.runtime import run_freezing_survivors

if TYPE_CHECKING:
    from meshmon.sinks.sqlite import SqliteStore

log = logging.getLogger(__name__)


async def _backfill(store: SqliteStore, past: Simulator, days: float, now: float) -> None:
    """Write the days before `now` while the demo runs, node by node (each node's page
    shows its past as soon as it is written); `past` is a simulator of its own."""
    from meshmon.demo.backfill import backfill

    print(f"meshmon demo: writing {days:g} days of history for {len(past.network.nodes)} "
          "nodes in the background (a node's page shows its past once it is written)…",
          flush=True)
    started = time.monotonic()
    try:
        await backfill(store, past, days, now)
    except Exception:
        log.exception("history back-fill failed")
        return
    finally:
        past.stop()  # never started: only its thread pool goes
    print(f"meshmon demo: history back-filled in {time.monotonic() - started:.0f} s",
          flush=True)


def demo_config(config: Config, http_port: int) -> Config:
    """The config the demo runs with: embedded broker on a free port unless set, HTTP port."""
    cfg = config.model_copy(deep=True)
    if cfg.mqtt.broker == "embedded" and "port" not in cfg.mqtt.embedded.model_fields_set:
        cfg.mqtt.embedded.port = 0  # a free one: 1883 may be taken by a real broker
    cfg.http.port = http_port
    return cfg


def demo_network(nodes: int | None, snapshot: Path | None) -> DemoNetwork:
    """The network to simulate (at most `nodes`, a connected part)."""
    if snapshot is None:
        return load_network(nodes)
    from meshmon.demo.snapshot import network_from_snapshot  # pulls in the bridge parsers

    network = network_from_snapshot(snapshot)
    return network if nodes is None else network.subset(nodes)


def installer_example(network: DemoNetwork) -> DemoNode:
    """The node whose installer view the demo suggests: one on the map with the most
    radio links (the first node of the list may be a VPN server or a cellar router)."""
    radio: dict[str, int] = {}
    for link in network.links:
        if link.type == "wifi":
            for end in (link.source, link.target):
                radio[end] = radio.get(end, 0) + 1
    return max(network.nodes, key=lambda n: (n.location is not None, radio.get(n.id, 0)))


async def run_demo(
    config: Config,
    http_port: int,
    nodes: int | None,
    interval_s: float,
    duration_s: float | None,
    snapshot: Path | None = None,
    history_days: float = 0.0,
) -> None:
    """Run collector + simulated network until `duration_s` has passed or it is cancelled;
    the network is the shipped Bremen one, or a community's map file (`snapshot`).
    `history_days` > 0: first back-fill that many days of history (`meshmon.demo.backfill`)."""
    from meshmon.service import Service  # the collector pulls in everything; import late

    cfg = demo_config(config, http_port)
    # hundreds of simulated agents would log each (re)connect
    logging.getLogger("meshmon_agent").setLevel(logging.WARNING)
    network = demo_network(nodes, snapshot)
    service = Service(cfg)
    await service.start()
    freezer = asyncio.create_task(run_freezing_survivors(), name="gc-freezer")  # as serve
    try:
        address = service.mqtt_address
        external = cfg.mqtt.broker == "external"
        sim = Simulator(
            network, address.host, address.port, interval_s=interval_s,
            prefix=cfg.mqtt.topic_prefix,
            mqtt_username=cfg.mqtt.username if external else "",
            mqtt_password=cfg.mqtt.password if external else "",
        )
        filling = None
        if history_days > 0 and service.store is not None:
            # a simulator of its own (same network and seed, so the same MACs): the live
            # one's nodes must not be moved by reports into the past
            past = Simulator(network, address.host, address.port, interval_s=interval_s)
            filling = asyncio.create_task(
                _backfill(service.store, past, history_days, service.clock()), name="backfill")
        sim.start()
        url = service.http_url
        example = installer_example(network).id
        print(f"meshmon demo: {len(network.nodes)} nodes, open {url}/ (the map)\n"
              f"  installer view: {url}/install/NODE (e.g. {url}/install/{example})\n"
              f"  maintainers: {url}/admin, token: {service.admin_token}", flush=True)
        try:
            await sim.run(duration_s)
        finally:
            sim.stop()
            if filling is not None:
                filling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await filling
            # let the broker take the agents' last `online: false` before it goes away
            await asyncio.sleep(0.3)
    finally:
        freezer.cancel()
        await service.stop()
