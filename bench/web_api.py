"""Latency of the whole-network API responses at scale (not a test).

    .venv/bin/python bench/web_api.py 2000 35000

Feeds a core N nodes (about 3 reported links each, both directions, one in ten nodes
private) as real wire models through `core.apply`, then times each endpoint over a real
loopback HTTP server with the response cache off: the first request (builds the document
from the whole topology), the median of five with nothing changed, and one after a full
report round (every node and link has a new report). There is no collector here, so
after the round the documents' catch-up (`Documents.catch_up`, which the collector runs
after each ingest batch and tick) is timed on its own before the requests.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time

from aiohttp import ClientSession, web

from meshmon.config import Config
from meshmon.metrics import Metrics
from meshmon.model.core import Core, CoreSettings
from meshmon.model.wire import Info, Report, Status
from meshmon.runtime import tune_runtime
from meshmon.web.app import create_app
from meshmon.web.context import WebContext

NOW = 1_700_000_000.0


def reports(n: int, seq: int, seed: int) -> list[Report]:
    """One report per node; each seed gives new signal values (a new report round)."""
    rnd = random.Random(seed)
    ids = [f"node-{i:05d}" for i in range(n)]
    out = []
    for i, nid in enumerate(ids):
        peers = sorted({ids[(i + d) % n] for d in (1, 2, 3 + (i * 7919) % (n - 3))} - {nid})
        links = [
            {"peer": p, "iface": "wlan0", "kind": "wifi", "signal_dbm": -50 - rnd.randrange(40),
             "snr_db": 30, "tx_rate_mbps": 130.0, "expected_tput_mbps": 50.0, "tx_retries": 3}
            for p in peers
        ]  # fmt: skip
        out.append(
            Report.model_validate({
                "v": 1, "node": nid, "ts": NOW, "seq": seq, "interval_s": 30, "clients": 3,
                "sys": {"uptime_s": 1000 + seq * 30, "load": [0.1, 0.2, 0.3]},
                "radios": [{"iface": "wlan0", "channel": 36}],
                "ifaces": [{"name": "wlan0", "up": True}], "links": links,
            })
        )  # fmt: skip
    return out


def build(n: int, seed: int = 1) -> Core:
    """A ring with one long chord per node: about 3 links per node, n nodes."""
    rnd = random.Random(seed)
    core = Core(CoreSettings(offline_after_intervals=3, link_timeout_s=300))
    for i in range(n):
        nid = f"node-{i:05d}"
        mac = f"02:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01"
        core.apply(
            Info.model_validate({
                "v": 1, "node": nid, "hostname": f"host{i}", "model": "TP-Link CPE510",
                "firmware": "OpenWrt 23.05.2", "macs": [mac], "gateway": i % 50 == 0,
                "public": i % 10 != 0, "owner": {"contact": f"owner{i}@example.org"},
                "location": {"lat": round(52 + rnd.random(), 6),
                             "lon": round(13 + rnd.random(), 6)},
                "tags": ["bench"],
            }),
            NOW,
        )  # fmt: skip
        core.apply(Status(v=1, node=nid, online=True, ts=NOW), NOW)
    for report in reports(n, 1, seed):
        core.apply(report, NOW)
    core.tick(NOW)
    return core


async def measure(n: int) -> None:
    core = build(n)
    topo = core.topology
    ctx = WebContext(core=core, config=Config(), metrics=Metrics(), cache_ttl_s=0)
    runner = web.AppRunner(create_app(ctx), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    print(f"{n} nodes, {len(topo.links)} directed links")
    paths = ("/api/v1/nodes", "/api/v1/topology", "/api/v1/links", "/api/v1/nodes/node-00001")
    round_two = reports(n, 2, seed=2)
    async with ClientSession() as session:

        async def get(path: str) -> tuple[float, int]:
            t0 = time.perf_counter()
            async with session.get(base + path) as resp:
                body = await resp.read()
            return (time.perf_counter() - t0) * 1000, len(body)

        first = {p: await get(p) for p in paths}
        same = {p: statistics.median([(await get(p))[0] for _ in range(5)]) for p in paths}
        for report in round_two:  # one full report round: every node and link changed
            core.apply(report, NOW + 30)
        t0 = time.perf_counter()
        ctx.documents.catch_up()
        caught_up = (time.perf_counter() - t0) * 1000
        churn = {p: await get(p) for p in paths}
        print(f"  catch-up after the round (nodes, topology, links documents): "
              f"{caught_up:.0f} ms, {caught_up / n * 1000:.0f} µs per report")
        print("  path                          first  unchanged  after-round      size")
        for p in paths:
            print(
                f"  {p:28s} {first[p][0]:6.1f} ms {same[p]:7.1f} ms {churn[p][0]:8.1f} ms"
                f"  {churn[p][1] / 1e6:6.2f} MB"
            )
    await runner.cleanup()


if __name__ == "__main__":
    tune_runtime()  # as `meshmon serve` runs the collector
    for arg in sys.argv[1:] or ["2000"]:
        asyncio.run(measure(int(arg)))
