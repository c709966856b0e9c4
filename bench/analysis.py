"""The core at scale: apply rate, memory, and the topology's analyse() vs networkx.

    .venv/bin/python bench/analysis.py [--nodes 35000] [--edges 100000] [--repeat 5]

Builds a random geometric graph (a plausible mesh: neighbours are near each other) with
about `--edges` edges, feeds it to a `Core` as real `Info`/`Report` models through
`core.apply` (each radio link reported by one end, half of them by peer MAC only, so
there are as many directed links as graph edges), ticking after every 1,000 reports as
the collector's ticks would, then times:

- `core.apply` of a report round, first (every link new) and steady (every link an
  update), and apart from it the ticks' health follow-up of those reports;
- `Topology.analyse()` (one iterative Tarjan DFS: components, articulation points, bridges);
- the networkx equivalent: connected components + articulation points + bridges, the
  bridges both via `nx.bridges` and via biconnected components;
- `gateway_cuts` (who loses every gateway if one node or one link fails) with 1 % of the
  nodes as gateways, against its 500 ms limit.

Last line: RESULT analysis_ms=… nodes=… edges=… links=… gateway_cuts_ms=… (medians).
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import networkx as nx  # noqa: E402

from meshmon.model.analysis import gateway_cuts  # noqa: E402
from meshmon.model.core import Core  # noqa: E402
from meshmon.model.wire import Info, Report  # noqa: E402

T0 = 1_700_000_000.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def mac(i: int) -> str:
    return "02:" + ":".join(f"{(i >> s) & 0xFF:02x}" for s in (24, 16, 8, 0)) + ":01"


def mesh(nodes: int, edges: int, seed: int) -> nx.Graph:
    # expected edges of a unit-square RGG ≈ n²/2 · πr² (a little less at the border)
    radius = math.sqrt(2 * edges / (nodes * nodes * math.pi)) * 1.02
    graph = nx.random_geometric_graph(nodes, radius, seed=seed)
    return nx.relabel_nodes(graph, {i: f"node-{i:05d}" for i in graph})


def report(node: str, peers: list[tuple[str, str | None]], seq: int) -> Report:
    links: list[dict[str, Any]] = []
    for j, (peer, peer_mac) in enumerate(peers):
        item: dict[str, Any] = {
            "iface": "wlan0",
            "kind": "wifi",
            "signal_dbm": -50 - j,
            "noise_dbm": -95,
            "tx_rate_mbps": 130.0,
            "rx_rate_mbps": 117.0,
            "expected_tput_mbps": 60.0,
            "inactive_ms": 10,
        }
        if peer_mac is None:
            item["peer"] = peer
        else:
            item["peer_mac"] = peer_mac
        links.append(item)
    return Report.model_validate(
        {
            "v": 1,
            "node": node,
            "ts": T0 + seq,
            "seq": seq,
            "interval_s": 30,
            "sys": {
                "uptime_s": 1000,
                "load": [0.1, 0.2, 0.3],
                "mem_total_kb": 126000,
                "mem_avail_kb": 60000,
                "rootfs_used_pct": 40,
            },
            "ifaces": [
                {
                    "name": n,
                    "up": True,
                    "rx_bytes": 1 << 30,
                    "tx_bytes": 1 << 29,
                    "rx_packets": 10**6,
                    "tx_packets": 10**6,
                    "rx_errors": 0,
                    "tx_errors": 0,
                }
                for n in ("wlan0", "br-lan")
            ],
            "radios": [
                {
                    "iface": "wlan0",
                    "freq_mhz": 5180,
                    "channel": 36,
                    "width_mhz": 20,
                    "noise_dbm": -95,
                    "txpower_dbm": 20,
                    "busy_pct": 30,
                    "clients": 2,
                }
            ],
            "links": links,
        }
    )


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=35_000)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rss_start = rss_mb()
    started = time.perf_counter()
    g = mesh(args.nodes, args.edges, args.seed)
    peers: dict[str, list[tuple[str, str | None]]] = {n: [] for n in g}
    for k, (u, v) in enumerate(g.edges):
        src, dst = (u, v) if k % 2 else (v, u)
        peers[src].append((dst, mac(int(dst[5:])) if k % 4 < 2 else None))
    print(
        f"mesh: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges "
        f"({time.perf_counter() - started:.1f} s)"
    )

    started = time.perf_counter()
    reports = [report(n, p, 1) for n, p in peers.items()]
    print(f"built {len(reports)} reports in {time.perf_counter() - started:.1f} s")

    core = Core()
    topo = core.topology
    for i, n in enumerate(g):
        core.apply(Info(v=1, node=n, macs=[mac(i)], gateway=i % 500 == 0), T0)
    core.tick(T0)

    def feed(now: float, round_: list[Report]) -> tuple[float, float]:
        """One round through core.apply, a tick per 1,000 reports: (apply s, tick s)."""
        apply_s = tick_s = 0.0
        for k in range(0, len(round_), 1000):
            started = time.perf_counter()
            for r in round_[k:k + 1000]:
                core.apply(r, now)
            ticked = time.perf_counter()
            core.tick(now)
            apply_s += ticked - started
            tick_s += time.perf_counter() - ticked
        return apply_s, tick_s

    first, first_ticks = feed(T0 + 1, reports)
    again, again_ticks = feed(T0 + 31, reports)
    links = sum(len(r.links) for r in reports)
    n_reports = len(reports)
    print(
        f"core.apply: first round (inserts) {n_reports / first:,.0f} reports/s, "
        f"steady (updates) {n_reports / again:,.0f} reports/s, "
        f"{links / n_reports:.1f} links/report; the ticks' health follow-up "
        f"{first_ticks / n_reports * 1e6:.0f} / {again_ticks / n_reports * 1e6:.0f} µs per report"
    )
    started = time.perf_counter()
    core.tick(T0 + 40)
    print(
        f"core.tick() over {len(topo.nodes)} nodes / {len(topo.links)} links with nothing due: "
        f"{(time.perf_counter() - started) * 1000:.3f} ms"
    )
    del reports
    gc.collect()
    print(
        f"RSS: {rss_mb():.0f} MB now, {rss_mb() - rss_start:.0f} MB since start (topology "
        f"incl. one last_report per node, plus the generator graph), "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB peak"
    )

    graph = topo.graph
    assert graph.number_of_edges() == g.number_of_edges() and len(topo.links) == links
    result = topo.analyse()
    print(
        f"analyse: {len(result.components)} components (largest {len(result.components[0])}),"
        f" {len(result.articulation_points)} articulation points, {len(result.bridges)} "
        f"bridges, {len(result.reach_gateway)} reach a gateway"
    )

    ours = timed(topo.analyse, args.repeat)

    def nx_biconnected() -> None:
        list(nx.connected_components(graph))
        list(nx.articulation_points(graph))
        [c for c in nx.biconnected_component_edges(graph) if len(c) == 1]

    def nx_bridges() -> None:
        list(nx.connected_components(graph))
        list(nx.articulation_points(graph))
        list(nx.bridges(graph))

    via_bcc = timed(nx_biconnected, max(1, args.repeat // 2))
    via_bridges = timed(nx_bridges, 1)
    bridges = sorted(
        tuple(sorted(e)) for c in nx.biconnected_component_edges(graph) if len(c) == 1 for e in c
    )
    assert bridges == result.bridges, "networkx and Tarjan disagree on bridges"
    assert sorted(nx.articulation_points(graph)) == result.articulation_points

    gateways = [n for i, n in enumerate(sorted(graph)) if i % 100 == 0]  # 1 % of the nodes
    cuts = gateway_cuts(graph.adj, gateways)
    has_gateway = set(gateways)
    assert cuts.unreachable == sorted(
        n for c in result.components if has_gateway.isdisjoint(c) for n in c
    )
    print(
        f"gateway_cuts ({len(gateways)} gateways): {len(cuts.node_cuts)} nodes and "
        f"{len(cuts.link_cuts)} links cut someone off, at most "
        f"{max(map(len, cuts.node_cuts.values()), default=0)} nodes; "
        f"{sum(map(len, cuts.node_cuts.values()))} node ids in node_cuts, "
        f"{len(cuts.unreachable)} nodes reach no gateway"
    )
    cut_times = timed(lambda: gateway_cuts(graph.adj, gateways), args.repeat)

    # a realistic day: 5 % of the nodes offline, analysis on the online subgraph
    for i, node in enumerate(topo.nodes.values()):
        node.online = i % 20 != 7
    partial = timed(topo.analyse, args.repeat)
    up = {n for n in graph if n not in topo.nodes or topo.nodes[n].online}
    cut_partial = timed(lambda: gateway_cuts(graph.adj, gateways, up), args.repeat)

    med = statistics.median
    print(
        f"Topology.analyse (iterative Tarjan, all online): median {med(ours):.0f} ms, "
        f"min {min(ours):.0f} ms"
    )
    print(f"Topology.analyse (5 % offline, induced subgraph): median {med(partial):.0f} ms")
    print(
        f"networkx cc + articulation points + bridges via biconnected components: "
        f"median {med(via_bcc):.0f} ms"
    )
    print(f"networkx cc + articulation points + nx.bridges: {via_bridges[0]:.0f} ms")
    print(
        f"gateway_cuts (1 % gateways, all online): median {med(cut_times):.0f} ms, "
        f"min {min(cut_times):.0f} ms; gateway_cuts_ms={med(cut_times):.0f} limit_ms=500 "
        f"{'ok' if med(cut_times) <= 500 else 'MISSED'}"
    )
    print(f"gateway_cuts (5 % offline, induced subgraph): median {med(cut_partial):.0f} ms")
    print(
        f"RESULT analysis_ms={med(ours):.0f} nodes={graph.number_of_nodes()} "
        f"edges={graph.number_of_edges()} links={len(topo.links)} "
        f"networkx_ms={med(via_bcc):.0f} rss_mb={rss_mb():.0f} "
        f"gateway_cuts_ms={med(cut_times):.0f}"
    )


if __name__ == "__main__":
    main()
