"""How long one `[[routing]]` poll of a large OLSR mesh takes (read, netdiff parse, names,
NodeUpdates), against a target of 10 % of the default 30 s interval.

    python bench/routing.py [--nodes 1000 5000 20000] [--degree 4]

The topology is olsrd jsoninfo (`topology` + `mid`) of N nodes, each advertising links to
its `degree` nearest neighbours on a ring with random chords; no names are configured, so
every node gets a keyed-hash id (the most work per node).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

from meshmon_bridge.source import BridgeContext
from meshmon_bridge.sources.routing import RoutingConfig, create_routing_sources

TARGET_S = 3.0


def jsoninfo(nodes: int, degree: int, seed: int = 1) -> dict[str, object]:
    """An olsrd jsoninfo dump of a ring mesh with chords."""
    rng = random.Random(seed)

    def ip(i: int) -> str:
        return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"

    topology = []
    for i in range(nodes):
        peers = {(i + d) % nodes for d in range(1, degree // 2 + 1)}
        peers |= {(i - d) % nodes for d in range(1, degree // 2 + 1)}
        if rng.random() < 0.1:
            peers.add(rng.randrange(nodes))
        for j in peers - {i}:
            lq, nlq = rng.uniform(0.3, 1), rng.uniform(0.3, 1)
            topology.append({"lastHopIP": ip(i), "destinationIP": ip(j), "linkQuality": lq,
                             "neighborLinkQuality": nlq, "tcEdgeCost": int(1024 / (lq * nlq))})
    mid = [{"ipAddress": ip(i), "aliases": [{"ipAddress": f"172.16.{i >> 8 & 255}.{i & 255}"}]}
           for i in range(nodes)]  # fmt: skip
    return {"topology": topology, "mid": mid}


async def one(nodes: int, degree: int, work: Path) -> tuple[float, int]:
    path = work / f"olsr-{nodes}.json"
    path.write_text(json.dumps(jsoninfo(nodes, degree)))
    table = RoutingConfig(kind="olsr1", file=path, id_key="bench")
    (source,) = create_routing_sources([table], BridgeContext("bench", work))
    start = time.perf_counter()
    updates = await source.poll()
    elapsed = time.perf_counter() - start
    links = sum(len(u.report["links"]) for u in updates if u.report)
    assert len(updates) == nodes
    return elapsed, links


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--degree", type=int, default=4)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.nodes:
            elapsed, links = asyncio.run(one(n, args.degree, Path(tmp)))
            verdict = "ok" if elapsed <= TARGET_S else f"missed by {elapsed / TARGET_S:.1f}x"
            print(f"{n:>6} nodes {links:>7} links: poll {elapsed:6.2f} s "
                  f"({elapsed / links * 1e6:5.1f} µs/link)  target ≤ {TARGET_S:.0f} s  {verdict}")
            results.append(f"n{n}_s={elapsed:.2f}")
    print("RESULT " + " ".join(results))


if __name__ == "__main__":
    main()
