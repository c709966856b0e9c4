"""Fill a real InfluxDB 1.x the way a deployment does: the demo's simulated agents (the
network `meshmon demo` runs, a subset of it) → a real Mosquitto → a real collector → its
InfluxDB v1 sink. Two power cuts make outages: one node comes back (`firing`, then
`resolved` with `duration_s`), one stays down (still `firing` at the end)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshmon.demo.network import DemoNetwork, load_network
from meshmon.demo.simulator import Simulator
from tests.integration.harness import collector_config, eventually, started


@dataclass(frozen=True)
class Filled:
    """What went into the database."""

    database: str
    nodes: list[str]
    recovered: str  # lost power, came back: outage fired and resolved
    down: str  # lost power and stays down: outage still firing
    started_at: float
    ended_at: float


def query(url: str, db: str, q: str) -> dict[str, Any]:
    """First statement's result of an InfluxQL query."""
    qs = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"})
    with urllib.request.urlopen(f"{url}/query?{qs}", timeout=10) as r:
        result: dict[str, Any] = json.loads(r.read())["results"][0]
        return result


def _outage_statuses(url: str, db: str, node: str) -> list[str]:
    result = query(url, db, f"SELECT \"status\" FROM \"event\" WHERE \"kind\" = 'outage' "
                            f"AND \"node\" = '{node}'")
    return [v[1] for s in result.get("series", []) for v in s["values"]]


def _cuts_off(network: DemoNetwork, gateways: set[str], node: str) -> bool:
    """True if some node reaches no gateway once `node` is gone."""
    adj: dict[str, set[str]] = {}
    for lk in network.links:
        adj.setdefault(lk.source, set()).add(lk.target)
        adj.setdefault(lk.target, set()).add(lk.source)
    seen = set(gateways) - {node}
    todo = list(seen)
    while todo:
        for peer in adj.get(todo.pop(), ()):
            if peer != node and peer not in seen:
                seen.add(peer)
                todo.append(peer)
    return len(seen) < len(network.nodes) - 1


async def _written(url: str, db: str, node: str, status: str, timeout: float) -> None:
    async def check() -> bool:
        return status in await asyncio.to_thread(_outage_statuses, url, db, node)

    await eventually(check, timeout, f"{status} outage of {node} in InfluxDB")


async def fill(
    influx_url: str,
    database: str,
    mqtt_port: int,
    workdir: Path,
    *,
    nodes: int = 40,
    interval_s: float = 1.0,
    run_s: float = 20.0,
    outage_s: float = 4.0,
    **simulator: Any,
) -> Filled:
    """Run collector + simulated agents for about `run_s` seconds with two outages (more
    if `simulator` options such as `outages_per_node_h` ask for random ones)."""
    network = load_network(nodes)
    config = collector_config(
        workdir, mqtt_port,
        influxdb={"enabled": True, "api": "v1", "url": influx_url, "database": database,
                  "flush_interval_s": 0.2},
    )  # fmt: skip
    service = await started(config)
    sim = Simulator(network, "127.0.0.1", mqtt_port, interval_s=interval_s,
                    **{"seed": 11, "outages_per_node_h": 0, **simulator})
    sim.start()
    t0 = time.time()
    task = asyncio.create_task(sim.run(None))
    try:
        ids = {n.id for n in network.nodes}

        async def all_online() -> bool:
            online = {n for n, st in service.topology.nodes.items() if st.online}
            return online >= ids

        await eventually(all_online, 20, "every simulated node online")
        # routers with a radio link that are not gateways: their outage is an outage
        wifi = sorted(
            {lk.source for lk in network.links if lk.type == "wifi"}
            | {lk.target for lk in network.links if lk.type == "wifi"}
        )
        gateways = {n.id for n in network.nodes if n.gateway}
        candidates = [n for n in wifi if n not in gateways]
        recovered = candidates[0]
        # the one that stays down cuts others off, if the network has such a node
        cutters = [n for n in candidates[1:] if _cuts_off(network, gateways, n)]
        down = (cutters or candidates[1:])[0]
        await asyncio.sleep(3 * interval_s)  # a few reports of everyone first
        await sim.take_down(recovered, outage_s, "power")
        await _written(influx_url, database, recovered, "resolved", outage_s + 20)
        # the second one only now: it might lie on the first one's way to a gateway
        await sim.take_down(down, 3600, "power")
        await _written(influx_url, database, down, "firing", 20)
        await asyncio.sleep(max(0.0, run_s - (time.time() - t0)))
    finally:
        await service.stop()  # flushes the sink; stop agents afterwards (no clean-stop noise)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sim.stop()
    return Filled(database, sorted(ids), recovered, down, t0, time.time())
