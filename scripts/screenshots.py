"""Screenshots of the pages on the demo network, for the README and docs.

    .venv/bin/python scripts/screenshots.py [--seconds 60] [--out docs/img]

Runs the demo (embedded broker, collector, the simulated Freifunk Bremen network) in this
process, waits until it has settled, takes down the router whose loss cuts off the most
nodes (so that the pages show a real outage besides the demo's random ones), and saves
the map (desktop and phone), the node list (phone), one node's installer view (phone) and
the maintainer page (desktop and phone) with Debian's Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

from meshmon.config import Config
from meshmon.demo.network import DemoNetwork, load_network
from meshmon.demo.runner import installer_example
from meshmon.demo.simulator import Simulator
from meshmon.model.analysis import gateway_cuts
from meshmon.service import Service

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def worst_failure(network: DemoNetwork) -> str | None:
    """The router (not a gateway) whose loss cuts off the most nodes; None if none does."""
    adj: dict[str, set[str]] = {n.id: set() for n in network.nodes}
    for link in network.links:
        adj[link.source].add(link.target)
        adj[link.target].add(link.source)
    gateways = [n.id for n in network.nodes if n.gateway]
    cuts = gateway_cuts(adj, gateways).node_cuts
    routers = sorted(set(cuts) - set(gateways))
    return max(routers, key=lambda n: len(cuts[n])) if routers else None


async def main(seconds: float, out: Path, nodes: int | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="meshmon-shots-"))
    config = Config.model_validate({
        "mqtt": {"embedded": {"port": 0}},
        "http": {"port": 0, "admin_token": "screenshots"},
        "storage": {"path": str(tmp / "demo.sqlite")},
        "map": {"tile_url": ""},  # no tiles from outside: the neutral background
    })  # fmt: skip
    network = load_network(nodes)
    service = Service(config)
    await service.start()
    sim = Simulator(network, service.mqtt_address.host, service.mqtt_address.port,
                    interval_s=5)
    sim.start()
    runner = asyncio.create_task(sim.run(None))
    try:
        await asyncio.sleep(seconds)
        victim = worst_failure(network)
        if victim is not None:
            await sim.take_down(victim, 3600)
            await asyncio.sleep(8)  # last wills, the grouping wait, two map refreshes
        url = service.http_url
        busiest = installer_example(network)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               args=CHROMIUM_ARGS)
            for name, size in (("map-desktop", (1280, 800)), ("map-phone", (390, 844))):
                page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
                await page.goto(f"{url}/")
                await page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                if name == "map-desktop":  # close enough to see the links of a busy node
                    await page.evaluate("id => window.meshmonMap.open(id, true)", busiest.id)
                await page.wait_for_timeout(1500)
                await page.screenshot(path=str(out / f"{name}.png"), timeout=60_000)
                await page.close()
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{url}/nodes")
            await page.screenshot(path=str(out / "nodes-phone.png"))
            await page.close()
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{url}/install/{busiest.id}")
            await page.wait_for_timeout(6000)
            await page.screenshot(path=str(out / "installer-phone.png"), timeout=60_000,
                                  animations="disabled")
            await page.close()
            for name, size in (("admin-desktop", (1280, 900)), ("admin-phone", (390, 844))):
                page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
                await page.goto(f"{url}/admin?token=screenshots")
                await page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                await page.screenshot(path=str(out / f"{name}.png"))
                await page.close()
            await browser.close()
        print(f"saved to {out}")
    finally:
        sim.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--nodes", type=int, default=None, help="limit the demo network")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.out, args.nodes))
