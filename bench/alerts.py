"""Alert latency end to end (last will and timeout paths) and root cause at scale.

    .venv/bin/python bench/alerts.py [--leaves 64] [--trials 60] [--nodes 35000]
                                     [--edges 100000] [--repeat 5]

1. Last-will path: Mosquitto, the collector (external broker, one webhook notifier, default
   `[alerts]`) and a scripted star mesh (one gateway, `--leaves` leaves and a few leaf–leaf
   links) reporting every second, all in this process on loopback. Each trial cuts the
   power of a different leaf, 0.3–0.5 s apart; latency = the webhook receiver's clock at
   the firing outage naming that leaf − the moment just before the cut. Target: p99 ≤ 1 s
   plus `alerts.hold_down_s` (default 0; the default group wait of 0.5 s is inside it).
2. Timeout path: a fresh broker and collector with `topology.offline_after_s = 3`; each
   trial hangs a different leaf and takes it off the air (nobody hears it); latency = the
   alert's arrival − the publish of that leaf's last report. Target: offline_after_s + 1 s.
3. Root cause: the geometric 35,000-node graph of bench/analysis.py fed to a `Core`
   (1 % gateways) as `Info`/`Report` messages, and `core.tick(now)` timed right after
   (a) the node that cuts off the most nodes fails together with everything behind it
   (their last wills), and (b) 1 % of all nodes fail at random. Timed: the tick that
   finds the causes and the one that confirms them a group wait later. Target ≤ 500 ms
   (the worst of the medians). Flapping is switched off for this part: each repeat fails
   the same nodes again, which would otherwise make them flap.

A trial's p99 over fewer than 100 trials is their maximum (nearest rank). The collector
runs in this process; a probe follows its change log and wraps (never changes) its alert
engine's submit, to split each latency into broker + ingest, health core (group wait,
ticks) and delivery (persist + webhook POST).

Last line: RESULT lwt_p99_ms=… timeout_p99_ms=… rootcause_ms=…
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.analysis import mac, mesh, report  # noqa: E402
from meshmon.alerts.model import Alert, iso  # noqa: E402
from meshmon.model.analysis import gateway_cuts  # noqa: E402
from meshmon.model.changelog import Cursor, Presence  # noqa: E402
from meshmon.model.core import Core, CoreSettings  # noqa: E402
from meshmon.model.health import HealthSettings  # noqa: E402
from meshmon.model.wire import Info, Status  # noqa: E402
from meshmon.service import Service  # noqa: E402
from tests.integration.harness import collector_config, started  # noqa: E402
from tests.integration.scripted_mesh import ScriptedMesh, WebhookReceiver  # noqa: E402
from tests.servers import start_mosquitto  # noqa: E402

OFFLINE_AFTER_S = 3.0
ROOTCAUSE_LIMIT_MS = 500.0
T0 = 1_700_000_000.0


def say(text: str) -> None:
    print(text, flush=True)


def p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile (the maximum below 100 values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def verdict(value: float, limit: float) -> str:
    return "ok" if value <= limit else f"MISSED by {value - limit:.0f} ms"


class TimedMesh(ScriptedMesh):
    """ScriptedMesh that remembers when each node last published a report and can cut a
    node's power without blocking the event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_report_at: dict[str, float] = {}

    def report(self, node: str) -> None:
        self.last_report_at[node] = time.time()
        super().report(node)

    def cut(self, node: str) -> float:
        """Power cut now (ScriptedMesh.drop); the moment just before it."""
        cut_at = time.time()
        self.drop(node)
        return cut_at


@dataclass
class Probe:
    """When the collector learned a node was offline and when it submitted its alert."""

    offline_at: dict[str, float] = field(default_factory=dict)
    submitted_at: dict[str, float] = field(default_factory=dict)
    cursor: Cursor | None = None

    def catch_up(self) -> None:
        """A follower of the change log: when each node was seen going offline."""
        assert self.cursor is not None
        for entry in self.cursor.read().entries:
            if isinstance(entry, Presence) and not entry.online:
                for node in entry.nodes:
                    self.offline_at.setdefault(node, time.time())

    def attach(self, service: Service) -> None:
        self.cursor = service.core.log.follow()
        service.followers.insert(0, self)  # caught up right after each batch and tick
        engine = service.alerting.engine
        submit = engine.submit

        def on_submit(notifier: str, alert: Alert, recipient: str | None) -> None:
            if alert.kind == "outage" and alert.status == "firing" and len(alert.cause_nodes) == 1:
                self.submitted_at.setdefault(alert.cause_nodes[0], time.time())
            submit(notifier, alert, recipient)

        engine.submit = on_submit


def star(leaves: list[str]) -> list[tuple[str, str]]:
    """gw — every leaf, plus six leaf–leaf links between leaves cut far apart in time."""
    half = len(leaves) // 2
    return [("gw", leaf) for leaf in leaves] + [(leaves[i], leaves[i + half]) for i in range(6)]


async def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@dataclass
class PathResult:
    latencies_ms: list[float]
    missing: list[str]
    duplicates: list[str]
    wrong: list[dict[str, Any]]
    others: dict[str, int]
    to_collector_ms: list[float]
    in_core_ms: list[float]
    delivery_ms: list[float]
    hold_down_s: float
    early: list[str]
    """trials whose alert came sooner than the group wait allows"""


async def run_path(args: argparse.Namespace, timeout_path: bool) -> PathResult:
    """One collector + mesh; cut (or hang) `args.trials` different leaves."""
    name = "timeout" if timeout_path else "last-will"
    broker = start_mosquitto()
    hook = WebhookReceiver()
    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    service: Service | None = None
    the_mesh: TimedMesh | None = None
    try:
        await hook.start()
        sections: dict[str, Any] = {
            "notifiers": [{"name": "hook", "type": "webhook", "url": hook.url, "timeout_s": 2}],
            "alerts": {"retry_max_s": 1},
            "http": {"admin_token": "bench"},
        }
        if timeout_path:
            sections["topology"] = {"offline_after_s": OFFLINE_AFTER_S}
        config = collector_config(tmp, broker.port, **sections)
        service = await started(config)
        probe = Probe()
        probe.attach(service)
        leaves = [f"leaf-{i:02d}" for i in range(args.leaves)]
        edges = star(leaves)
        the_mesh = TimedMesh(broker.port, edges, {"gw"}, interval_s=1.0)
        say(f"[{name}] Mosquitto :{broker.port}, collector, 1 gateway + {len(leaves)} leaves "
            f"({len(edges)} links) reporting every 1 s")
        await the_mesh.start()
        topo = service.topology

        def settled() -> bool:
            online = sum(1 for n in topo.nodes.values() if n.online)
            return online == len(leaves) + 1 and topo.graph.number_of_edges() >= len(edges)

        if not await wait_until(settled, 20):
            raise RuntimeError("mesh did not come online within 20 s")
        await asyncio.sleep(2)  # a few quiet rounds
        before = len(hook.received)
        if before:
            say(f"[{name}] note: {before} alerts before the first trial "
                f"({sorted({a['kind'] for a in hook.received})})")
        rng = random.Random(7 if timeout_path else 3)
        trials = leaves[: args.trials]
        start_at: dict[str, float] = {}
        say(f"[{name}] {len(trials)} trials, one different leaf each, 0.3-0.5 s apart ...")
        for leaf in trials:
            if timeout_path:
                the_mesh.hang(leaf)
                the_mesh.radio_up.discard(leaf)  # nobody hears it: not silent but offline
                start_at[leaf] = the_mesh.last_report_at[leaf]
            else:
                start_at[leaf] = the_mesh.cut(leaf)
            await asyncio.sleep(rng.uniform(0.3, 0.5))

        def firing_for(leaf: str) -> list[tuple[float, dict[str, Any]]]:
            want = {"nodes": [leaf], "links": []}
            return [(t, a) for a, t in zip(hook.received, hook.times, strict=True)
                    if a.get("kind") == "outage" and a.get("status") == "firing"
                    and a.get("cause") == want]

        budget = (OFFLINE_AFTER_S if timeout_path else 0) + config.alerts.hold_down_s + 5
        arrived = await wait_until(lambda: all(firing_for(leaf) for leaf in trials), budget)
        await asyncio.sleep(2)  # late duplicates would arrive here
        say(f"[{name}] {len(hook.received) - before} alerts received"
            + ("" if arrived else f" (not all within {budget:.0f} s)"))
        latencies, missing, duplicates = [], [], []
        early: list[str] = []
        group_wait_ms = config.alerts.group_wait_s * 1000
        to_collector, in_core, delivery = [], [], []
        for leaf in trials:
            times = firing_for(leaf)
            if not times:
                missing.append(leaf)
                continue
            if len(times) > 1:
                duplicates.append(leaf)
            latency = (times[0][0] - start_at[leaf]) * 1000
            latencies.append(latency)
            if latency < group_wait_ms + (OFFLINE_AFTER_S * 1000 if timeout_path else 0):
                early.append(f"{leaf} after {latency:.0f} ms (started_at "
                             f"{times[0][1].get('started_at')}, cut at {iso(start_at[leaf])})")
            learned = probe.offline_at.get(leaf)
            submitted = probe.submitted_at.get(leaf)
            if learned is not None and submitted is not None:
                to_collector.append((learned - start_at[leaf]) * 1000)
                in_core.append((submitted - learned) * 1000)
                delivery.append((times[0][0] - submitted) * 1000)
        expected = {str({"nodes": [leaf], "links": []}) for leaf in trials}
        wrong = [a for a in hook.received[before:]
                 if a.get("kind") == "outage" and a.get("status") == "firing"
                 and str(a.get("cause")) not in expected]
        others: dict[str, int] = {}
        for a in hook.received[before:]:
            if a.get("kind") != "outage" or a.get("status") != "firing":
                key = f"{a.get('kind')}/{a.get('status')}"
                others[key] = others.get(key, 0) + 1
        return PathResult(latencies, missing, duplicates, wrong, others,
                          to_collector, in_core, delivery, config.alerts.hold_down_s,
                          early)
    finally:
        if the_mesh is not None:
            await the_mesh.stop()
        if service is not None:
            await service.stop()
        await hook.stop()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def print_path(name: str, key: str, res: PathResult, limit_ms: float,
               first_leg: str) -> float:
    lat = res.latencies_ms
    if not lat:
        say(f"[{name}] no latency measured: every trial lacked its alert")
        return math.inf
    worst = p99(lat)
    say(f"[{name}] {len(lat)} trials: p50 {statistics.median(lat):.0f} ms, min {min(lat):.0f} ms,"
        f" max {max(lat):.0f} ms; {key}={worst:.0f} limit_ms={limit_ms:.0f} "
        f"{verdict(worst, limit_ms)}")
    if res.to_collector_ms:
        med = statistics.median
        say(f"[{name}] where it goes (medians): {first_leg} {med(res.to_collector_ms):.0f} ms, "
            f"collector saw it → alert submitted {med(res.in_core_ms):.0f} ms "
            f"(max {max(res.in_core_ms):.0f}), submitted → webhook received "
            f"{med(res.delivery_ms):.0f} ms (max {max(res.delivery_ms):.0f})")
    say(f"[{name}] checks: {len(res.missing)} trials without their alert"
        f"{f' {res.missing}' if res.missing else ''}, {len(res.duplicates)} with duplicates"
        f"{f' {res.duplicates}' if res.duplicates else ''}, {len(res.wrong)} outage alerts "
        f"with another cause, other alerts: {res.others or 'none'}")
    for line in res.early:
        say(f"[{name}]   sooner than the group wait: {line}")
    for a in res.wrong[:5]:
        say(f"[{name}]   other cause: {a.get('cause')} affected={a.get('affected')}")
    return worst


def rootcause(args: argparse.Namespace) -> float:
    """Median tick time after the two failures, on the analysis bench's graph."""
    started_at = time.perf_counter()
    g = mesh(args.nodes, args.edges, args.seed)
    peers: dict[str, list[tuple[str, str | None]]] = {n: [] for n in g}
    for k, (u, v) in enumerate(g.edges):  # as bench/analysis.py: one end reports each link
        src, dst = (u, v) if k % 2 else (v, u)
        peers[src].append((dst, mac(int(dst[5:])) if k % 4 < 2 else None))
    names = sorted(g)
    gateways = names[::100]  # 1 %, the same as bench/analysis.py's gateway_cuts
    is_gateway = set(gateways)
    settings = HealthSettings(flap_changes=10**9)  # the repeats must not make nodes flap
    core = Core(CoreSettings(health=settings))
    for n in names:
        core.apply(Info(v=1, node=n, macs=[mac(int(n[5:]))], gateway=n in is_gateway), T0)
    for i, (n, p) in enumerate(peers.items()):
        core.apply(report(n, p, 1), T0 + 1)
        if i % 1000 == 999:  # the collector ticks while a round comes in
            core.tick(T0 + 1)
    topo = core.topology
    core.tick(T0 + 1)
    say(f"[rootcause] topology of {len(topo.nodes)} nodes, {topo.graph.number_of_edges()} edges, "
        f"{len(gateways)} gateways ({time.perf_counter() - started_at:.1f} s to build)")
    del peers
    gc.collect()

    cuts = gateway_cuts(topo.graph.adj, gateways)
    hub, behind = max(cuts.node_cuts.items(), key=lambda item: (len(item[1]), item[0]))
    random_fail = random.Random(args.seed).sample(names, len(names) // 100)
    scenarios = [
        (f"{hub} and the {len(behind)} nodes behind it", [hub, *behind]),
        (f"1 % of the nodes at random ({len(random_fail)})", random_fail),
    ]
    now = T0 + 2
    medians = []
    for label, failing in scenarios:
        first, confirm = [], []
        outages: list[Any] = []
        for _ in range(args.repeat):
            for n in failing:  # their last wills
                core.apply(Status(v=1, node=n, online=False), now)
            gc.collect()
            t = time.perf_counter()
            core.tick(now)
            first.append((time.perf_counter() - t) * 1000)
            # the confirming tick comes a group wait later, or later still when root cause
            # is slow (it runs at most every 5× its last duration)
            later = now + max(settings.group_wait_s, 5 * core.health.last_duration_ms / 1000)
            t = time.perf_counter()
            changes = core.tick(later).incidents
            confirm.append((time.perf_counter() - t) * 1000)
            outages = [c.incident for c in changes
                       if c.what == "opened" and c.incident.kind == "outage"]
            now = later + 0.1
            for n in failing:  # back, and the outages resolve before the next repeat
                core.apply(Status(v=1, node=n, online=True), now)
            now += max(0.1, 5 * core.health.last_duration_ms / 1000)
            core.tick(now)
            now += 0.1
        med = max(statistics.median(first), statistics.median(confirm))
        medians.append(med)
        causes = sum(len(i.cause_nodes) for i in outages)
        affected = sum(len(i.affected) for i in outages)
        say(f"[rootcause] {label}: {len(outages)} outages, {causes} cause nodes, "
            f"{affected} affected")
        say(f"[rootcause]   tick() medians: finding the causes {statistics.median(first):.0f}"
            f" ms (min {min(first):.0f}), confirming them after the group wait "
            f"{statistics.median(confirm):.0f} ms (min {min(confirm):.0f}); worse "
            f"{med:.0f} ms limit_ms={ROOTCAUSE_LIMIT_MS:.0f} {verdict(med, ROOTCAUSE_LIMIT_MS)}")
        if label.startswith(hub):
            found = [(i.cause_nodes, i.affected) for i in outages]
            ok = found == [([hub], sorted(behind))]
            say(f"[rootcause]   one outage naming {hub}, its {len(behind)} nodes affected: "
                f"{'yes' if ok else 'NO: ' + str([(c, len(a)) for c, a in found])}")
    return max(medians)


async def amain(args: argparse.Namespace) -> tuple[float, float]:
    lwt = await run_path(args, timeout_path=False)
    lwt_limit = 1000 + lwt.hold_down_s * 1000
    lwt_p99 = print_path("last-will", "lwt_p99_ms", lwt, lwt_limit, "cut → collector saw the will")
    tmo = await run_path(args, timeout_path=True)
    limit = (OFFLINE_AFTER_S + 1) * 1000
    tmo_p99 = print_path("timeout", "timeout_p99_ms", tmo, limit,
                         "last report → collector timed it out")
    return lwt_p99, tmo_p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leaves", type=int, default=64)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--nodes", type=int, default=35_000)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.trials > args.leaves:
        parser.error("--trials must not exceed --leaves (each trial needs a leaf of its own)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started_at = time.monotonic()
    lwt_p99, tmo_p99 = asyncio.run(amain(args))
    rc_ms = rootcause(args)
    say(f"total {time.monotonic() - started_at:.0f} s")
    say(f"RESULT lwt_p99_ms={lwt_p99:.0f} timeout_p99_ms={tmo_p99:.0f} rootcause_ms={rc_ms:.0f}")


if __name__ == "__main__":
    main()
