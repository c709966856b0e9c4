"""The public map and the whole-network API at 2,000 located nodes (not a test).

    .venv/bin/python bench/web.py [--rounds 50] [--loads 3] [--profile]

The network is six real Freifunk communities (2020 meshviewer snapshots: Altdorf,
Bielefeld, Bremen, Cologne-Bonn, Leipzig, Ulm) side by side: 2,000 located nodes plus the
VPN servers and unlocated routers of the same networks, with the links and batman TQ the
snapshots recorded (`bench/data/`, built once by `--build-data DIR`). A process plays every
node with the demo's simulated agents (`meshmon.demo.simulator.NodeSim`: Wi-Fi links with
signal/SNR/rates from the TQ, batman and VPN links with TQ) for a real collector
(`meshmon.service.Service` with SQLite, in this process): status, info and the first two
report rounds through a real Mosquitto; later rounds are handed to the collector's ingest
entry (`Service.on_batch`, what its MQTT client calls) without the broker hop, so that 50
rounds fit in the run's time. One node in ten is private (coarsened location) and 2 % lose
power (retained `online: false`, an outage each).

Measured, each next to its target:

* **render**: `/` in headless Chromium (tile_url = "", nothing from outside), in a fresh
  browser context after a fresh report round, until the page's readiness contract holds
  (`document.body.dataset.ready == "1"`, `window.meshmonMap.renderedAt`); render_ms is
  `renderedAt` (navigation start → first full render), also the wall time from `goto`,
  the API fetches and the long tasks of the load;
* **pan/zoom**: 10 `setZoom`/`panBy` steps (no animation) on the page's Leaflet map, each
  until two animation frames later, and the long tasks meanwhile;
* **API**: `/api/v1/nodes`, `/api/v1/topology` and `/api/v1/map` once each right after
  each of `--rounds` full report rounds (every node and link changed; the response cache
  is off), p50/p99 and sizes (raw and on the wire).

Last line: RESULT render_ms=… api_ms=… api_kb=… (api_ms: the worse p50 of nodes and
topology; api_kb: the two together, raw).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import gzip
import io
import json
import multiprocessing as mp
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from meshmon.demo.network import DemoLink, DemoNetwork, DemoNode  # noqa: E402
from meshmon.demo.simulator import Simulator  # noqa: E402
from meshmon.model.changelog import Changes, Read  # noqa: E402
from meshmon.runtime import tune_runtime  # noqa: E402
from meshmon.service import Service  # noqa: E402
from meshmon.web.context import CTX, WebContext  # noqa: E402
from tests import servers  # noqa: E402
from tests.browser import DESKTOP, chromium, console_errors, wait_for_js  # noqa: E402
from tests.integration.harness import collector_config, started  # noqa: E402

DATA = ROOT / "bench" / "data" / "freifunk-6-communities.json.gz"
LOCATED = 2000
TARGET_RENDER_MS = 2000.0
TARGET_API_MS = 50.0
REQUIRED = ("/api/v1/nodes", "/api/v1/topology")
MAP_API = "/api/v1/map"
INGEST_BATCH = 200
INTERVAL_S = 30.0
PRIVATE_EVERY = 10
DOWN_SHARE = 0.02
PREFIX = "meshmon"

# (snapshot file, id prefix, community); the ids of the demo builder are `ff-<hostname>`,
# here `<prefix>-<hostname>` so that the six networks cannot collide
COMMUNITIES = (
    ("freifunk-altdorf-meshviewer.json", "ad", "Freifunk Altdorf"),
    ("freifunk-bielefeld-meshviewer.json", "bi", "Freifunk Bielefeld"),
    ("freifunk-bremen-meshviewer.json", "hb", "Freifunk Bremen"),
    ("freifunk-cologne-bonn-area-meshviewer.json", "kb", "Freifunk Cologne-Bonn"),
    ("freifunk-ulm-meshviewer.json", "ul", "Freifunk Ulm"),
    ("freifunk-leipzig-meshviewer.json", "le", "Freifunk Leipzig"),  # last: trimmed to fit
)
SOURCE = "mwarning/meshnet-lab @ 148b3bd9, data/freifunk/original_freifunk_data/"


# ---------------------------------------------------------------------------- the network
def build_data(src: Path, out: Path = DATA, located: int = LOCATED) -> None:
    """Trim the six snapshots (meshmon.demo.build_data) into one file of `located` nodes."""
    from meshmon.demo.build_data import build
    from tests.web.privacy import MAC_RE, leaks

    nodes: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    parts = []
    for name, code, community in COMMUNITIES:
        snapshot = json.loads((src / name).read_text(encoding="utf-8"))
        for raw in snapshot["nodes"]:  # hostnames that are MACs with separators (Bielefeld)
            raw["hostname"] = MAC_RE.sub("", raw.get("hostname") or "")
        doc = build(snapshot)
        rename = {n["id"]: f"{code}-{n['id'].removeprefix('ff-')}" for n in doc["nodes"]}
        for n in doc["nodes"]:
            n["id"] = rename[n["id"]]
            n["community"] = community
        for lk in doc["links"]:
            lk["source"], lk["target"] = rename[lk["source"]], rename[lk["target"]]
        have = sum(n["location"] is not None for n in nodes)
        here = sum(n["location"] is not None for n in doc["nodes"])
        if have + here > located:  # a connected part with exactly the located nodes missing
            net = _network(doc)
            size = next(k for k in range(1, len(net.nodes) + 1)
                        if sum(n.location is not None for n in net.subset(k).nodes)
                        == located - have)
            keep = {n.id for n in net.subset(size).nodes}
            doc["nodes"] = [n for n in doc["nodes"] if n["id"] in keep]
            doc["links"] = [lk for lk in doc["links"]
                            if lk["source"] in keep and lk["target"] in keep]
        nodes += doc["nodes"]
        links += doc["links"]
        parts.append(f"{community} {doc['snapshot_time'] or 'undated'} "
                     f"({len(doc['nodes'])} nodes)")
    data = {"source": SOURCE, "community": "; ".join(parts), "snapshot_time": None,
            "nodes": nodes, "links": links}
    problems = leaks(data)
    assert not problems, problems[:5]
    assert sum(n["location"] is not None for n in nodes) == located
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    print(f"{out}: {len(nodes)} nodes ({located} located), {len(links)} links; {data['community']}")


def _network(data: dict[str, Any]) -> DemoNetwork:
    nodes = [
        DemoNode(id=d["id"], hostname=d["hostname"], model=d.get("model"),
                 firmware=d.get("firmware"),
                 location=(d["location"]["lat"], d["location"]["lon"]) if d["location"] else None,
                 is_gateway=bool(d["is_gateway"]), uplink=bool(d["uplink"]),
                 clients=int(d.get("clients") or 0))
        for d in data["nodes"]
    ]  # fmt: skip
    links = [DemoLink(lk["source"], lk["target"], lk["type"], float(lk["source_tq"]),
                      float(lk["target_tq"])) for lk in data["links"]]
    return DemoNetwork(nodes, links, data.get("source", ""), data.get("community", ""))


def load_network(path: Path = DATA) -> DemoNetwork:
    """The bench network (see `build_data`)."""
    return _network(json.loads(gzip.decompress(path.read_bytes())))


def powered_down(net: DemoNetwork, share: float, seed: int = 7) -> list[str]:
    """About `share` of the non-gateway nodes, chosen so that no other node loses its way
    to a gateway (those would go offline too, a few report intervals later)."""
    adj: dict[str, set[str]] = {n.id: set() for n in net.nodes}
    for lk in net.links:
        adj[lk.source].add(lk.target)
        adj[lk.target].add(lk.source)
    gateways = [n.id for n in net.nodes if n.gateway]

    def reach(off: set[str]) -> int:
        seen = {g for g in gateways if g not in off}
        stack = list(seen)
        while stack:
            for peer in adj[stack.pop()]:
                if peer not in seen and peer not in off:
                    seen.add(peer)
                    stack.append(peer)
        return len(seen)

    everyone = reach(set())
    rng = random.Random(seed)
    candidates = [n.id for n in net.nodes if not n.gateway]
    rng.shuffle(candidates)
    down: set[str] = set()
    for node in candidates:
        if len(down) >= share * len(net.nodes):
            break
        if reach(down | {node}) == everyone - len(down) - 1:
            down.add(node)
    return sorted(down)


# ---------------------------------------------------------------------------- the agents
def _publisher(conn: Connection, port: int, path: str) -> None:
    """Plays every node (its own process: publishing does not take the collector's CPU).

    Commands on `conn`: ("setup",) retained status + info of all; ("down", [ids]) power
    cut (retained `online: false`); ("round",) one report from every powered node, each
    answered once the broker acknowledged every message; ("payloads",) the next round's
    reports as (topic, payload) for the bench to hand to the collector itself."""
    net = load_network(Path(path))
    sim = Simulator(net, "127.0.0.1", port, interval_s=INTERVAL_S, outages_per_node_h=0)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-web-agents")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    up = {n.id for n in net.nodes}

    def publish(items: list[tuple[str, str, bool]]) -> None:
        last = None
        for topic, payload, retain in items:
            last = client.publish(f"{PREFIX}/v1/node/{topic}", payload, 1, retain)
        if last is not None:
            last.wait_for_publish(60)

    def next_round() -> tuple[list[tuple[str, str, bool]], int]:
        now = time.time()
        items = []
        seq = 0
        for node in net.nodes:
            if node.id not in up:
                continue
            ns = sim.node_sim(node.id)
            for lk in ns.links:  # the shared fading drifts a little each report
                lk.pair.fade_db.next(ns.rng)
            report = ns.report(now, INTERVAL_S, up)
            seq = max(seq, report["seq"])
            items.append((f"{node.id}/report", json.dumps(report), False))
        return items, seq

    while True:
        cmd = conn.recv()
        now = time.time()
        if cmd[0] == "setup":
            items = []
            for i, node in enumerate(net.nodes):
                info = sim.node_sim(node.id).info(now)
                info["public"] = i % PRIVATE_EVERY != 0
                status = {"v": 1, "node": node.id, "online": True, "ts": now}
                items.append((f"{node.id}/status", json.dumps(status), True))
                items.append((f"{node.id}/info", json.dumps(info), True))
            publish(items)
            conn.send(len(items))
        elif cmd[0] == "down":
            up -= set(cmd[1])
            publish([(f"{n}/status", json.dumps({"v": 1, "node": n, "online": False, "ts": now}),
                      True) for n in cmd[1]])
            conn.send(len(cmd[1]))
        elif cmd[0] == "round":
            items, seq = next_round()
            publish(items)
            conn.send(seq)
        elif cmd[0] == "payloads":
            items, seq = next_round()
            topics = [(f"{PREFIX}/v1/node/{t}", p.encode()) for t, p, _ in items]
            conn.send((topics, seq))
        else:
            break
    client.disconnect()
    client.loop_stop()


class Agents:
    """The publisher process, driven from the event loop."""

    def __init__(self, port: int, path: Path = DATA) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_publisher, args=(child, port, str(path)), daemon=True)
        self.proc.start()

    async def ask(self, *cmd: Any) -> Any:
        self.conn.send(cmd)
        return await asyncio.to_thread(self.conn.recv)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("quit",))
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


class Bench:
    """A collector, the agents, and one full report round on demand."""

    def __init__(self, service: Service, agents: Agents, net: DemoNetwork) -> None:
        self.service = service
        self.agents = agents
        self.net = net
        self.powered = {n.id for n in net.nodes}
        runner = service._runner
        assert runner is not None
        self.ctx: WebContext = runner.app[CTX]
        self.build_ms: dict[str, list[float]] = {}
        self.catch_up_ms: list[float] = []
        """each `Documents.catch_up` (every collector tick and request) that did work"""
        self._wrap_cache()
        self._wrap_catch_up()

    def _wrap_catch_up(self) -> None:
        """Record how long the documents take to follow the core's change log."""
        docs = self.ctx.documents
        catch_up = docs.catch_up
        cursor = docs.cursor

        def timed() -> None:
            pending = Changes.of(Read(cursor.log.since(cursor.position)))
            busy = bool(pending.links or pending.nodes or pending.reset)
            t0 = time.perf_counter()
            catch_up()
            if busy:
                self.catch_up_ms.append((time.perf_counter() - t0) * 1000)

        docs.catch_up = timed  # type: ignore[method-assign]

    def _wrap_cache(self) -> None:
        """Record how long each whole-network body takes to build (wraps, never changes)."""
        cached = self.ctx.cached

        def timed(name: str, build: Callable[[], bytes]) -> bytes:
            def measured() -> bytes:
                t0 = time.perf_counter()
                body = build()
                self.build_ms.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
                return body

            return cached(name, measured)

        self.ctx.cached = timed  # type: ignore[method-assign]
        self.ctx.cache_ttl_s = 0  # every request builds (its renderer reuses what is unchanged)

    async def wait_applied(self, nodes: set[str], seq: int, timeout: float = 60) -> None:
        topo = self.service.topology
        deadline = time.monotonic() + timeout
        while True:
            missing = [n for n in nodes if (node := topo.nodes.get(n)) is None
                       or node.last_report is None or node.last_report.seq < seq]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(missing)} reports of round {seq} not applied")
            await asyncio.sleep(0.02)
        assert self.service.store is not None
        await self.service.store.flush()  # the SQLite writer is done before anything is timed

    async def round(self) -> float:
        """One report from every powered node through Mosquitto, applied and stored; its
        duration in s."""
        t0 = time.perf_counter()
        seq = await self.agents.ask("round")
        await self.wait_applied(self.powered, seq)
        return time.perf_counter() - t0

    async def inject(self, payloads: list[tuple[str, bytes]], seq: int) -> float:
        """One round handed to the collector's ingest entry (`Service.on_batch`: decode,
        validate, topology, health, sinks) in batches of 200 as its MQTT client does, without
        the broker hop; applied and stored. Its duration in s."""
        t0 = time.perf_counter()
        for i in range(0, len(payloads), INGEST_BATCH):
            now = time.time()
            self.service.on_batch([(t, p, now, 0, False) for t, p in payloads[i:i + INGEST_BATCH]])
            await asyncio.sleep(0)  # the loop's other work (ticks, HTTP) goes on meanwhile
        await self.wait_applied(self.powered, seq)
        return time.perf_counter() - t0


# ---------------------------------------------------------------------------- the page
# Hooks Leaflet as it loads (window.L is assigned once by leaflet.js), so the bench can
# pan and zoom whatever map the page makes; and records long tasks from the start.
INIT_JS = """
window.__benchMaps = [];
window.__benchLong = [];
try {
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__benchLong.push([e.startTime, e.duration]);
  }).observe({type: "longtask", buffered: true});
} catch (e) {}
(() => {
  let value;
  Object.defineProperty(window, "L", {
    configurable: true,
    get() { return value; },
    set(v) {
      value = v;
      try { v.Map.addInitHook(function () { window.__benchMaps.push(this); }); } catch (e) {}
    },
  });
})();
"""
READY_JS = """() => document.body && document.body.dataset.ready === "1"
  && window.meshmonMap && typeof window.meshmonMap.renderedAt === "number" """
STATE_JS = """() => {
  const m = window.meshmonMap;
  const count = v => Array.isArray(v) ? v.length : (typeof v === "number" ? v
    : (v && typeof v.size === "number" ? v.size : null));
  const nav = performance.getEntriesByType("navigation")[0];
  return {
    markers: count(m.markers), links: count(m.links), renderedAt: m.renderedAt,
    updates: count(m.updates) ?? m.updates,
    html: nav ? [nav.requestStart, nav.responseEnd, nav.domContentLoadedEventEnd] : null,
    resources: performance.getEntriesByType("resource").map(r => [
      r.name, r.initiatorType, r.startTime, r.duration, r.transferSize, r.decodedBodySize]),
    long: window.__benchLong.filter(([s]) => s <= m.renderedAt),
    maps: window.__benchMaps.length,
  };
}"""
PANZOOM_JS = """async (steps) => {
  const map = window.__benchMaps[0];
  const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const before = window.__benchLong.length;
  const times = [];
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    if (i % 2 === 0) map.setZoom(map.getZoom() + (i % 4 === 0 ? 1 : -1), {animate: false});
    else map.panBy([i % 4 === 1 ? 300 : -300, 150], {animate: false});
    await frames();
    times.push(performance.now() - t0);
  }
  const end = performance.now();
  return {times, total: end - start,
          long: window.__benchLong.slice(before).filter(([s]) => s >= start)};
}"""


async def render(bench: Bench, loads: int) -> dict[str, Any]:
    """Load `/` `loads` times (fresh context, fresh round each), then pan/zoom once."""
    url = bench.service.http_url + "/"
    located = sum(n.location is not None for n in bench.net.nodes)
    out: dict[str, Any] = {"loads": []}
    async with chromium() as browser:
        for i in range(loads):
            await bench.inject(*await bench.agents.ask("payloads"))
            context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
            page = await context.new_page()
            errors = console_errors(page)
            await page.add_init_script(INIT_JS)
            t0 = time.perf_counter()
            await page.goto(url)
            await wait_for_js(page, READY_JS, timeout=60_000, poll_ms=10)
            wall = (time.perf_counter() - t0) * 1000
            state = await page.evaluate(STATE_JS)
            state["wall_ms"] = wall
            state["errors"] = errors
            out["loads"].append(state)
            long_ms = sum(d for _, d in state["long"])
            print(f"  load {i + 1}: first full render {state['renderedAt']:.0f} ms after "
                  f"navigation start (wall from goto to ready {wall:.0f} ms); markers "
                  f"{state['markers']} (located nodes {located}), links {state['links']}; "
                  f"long tasks {len(state['long'])}, {long_ms:.0f} ms")
            if state["html"]:
                print(f"          HTML {state['html'][0]:.0f}–{state['html'][1]:.0f} ms, "
                      f"DOMContentLoaded {state['html'][2]:.0f} ms")
            for name, kind, start, dur, wire, raw in state["resources"]:
                if kind in ("fetch", "xmlhttprequest") or "/api/" in name:
                    print(f"          {kind} {name.split('/', 3)[-1][:40]:40s} "
                          f"{start:6.0f}–{start + dur:.0f} ms, {wire / 1000:.0f} kB on the "
                          f"wire, {raw / 1000:.0f} kB")
            if errors:
                print(f"          page errors: {errors[:3]}")
            if i == loads - 1:
                if state["maps"]:
                    # twice: the first steps after a load include the JIT warming up
                    for when in ("right after the load", "again (warm)"):
                        pz = await page.evaluate(PANZOOM_JS, 10)
                        out.setdefault("panzoom", []).append(pz)
                        long_ms = sum(d for _, d in pz["long"])
                        print(f"  pan/zoom {when}: 10 steps (setZoom ±1 / panBy 300 px, no "
                              f"animation) in {pz['total']:.0f} ms, per step (until two frames "
                              f"later) median {statistics.median(pz['times']):.0f} ms, max "
                              f"{max(pz['times']):.0f} ms; long tasks {len(pz['long'])}, "
                              f"{long_ms:.0f} ms")
                else:
                    print("  pan/zoom: the page made no Leaflet map (L.Map): not measured")
            await context.close()
    return out


# ---------------------------------------------------------------------------- the API
class FullCollections:
    """Durations of the garbage collector's full (generation 2) passes while active: each
    stops everything, and explains the longest steps of the figures around it."""

    def __init__(self) -> None:
        self.ms: list[float] = []
        self._started = 0.0

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.ms.append((time.perf_counter() - self._started) * 1000)


async def api(bench: Bench, rounds: int) -> dict[str, dict[str, Any]]:
    """Each endpoint once right after each of `rounds` full report rounds."""
    base = bench.service.http_url
    paths = [*REQUIRED, MAP_API]
    times: dict[str, list[float]] = {p: [] for p in paths}
    bodies: dict[str, tuple[bytes, bytes, str]] = {}
    status: dict[str, int] = {}
    round_s: list[float] = []
    headers = {"Accept-Encoding": "gzip, deflate, br"}  # what a browser sends
    upcoming = await bench.agents.ask("payloads")
    first: dict[str, float] = {}
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        # the first request of a document builds it from the whole topology (later ones
        # find it kept up to date): timed apart, and not part of the rounds' figures
        docs = bench.ctx.documents
        for renderer in (docs.nodes, docs.netjson, docs.map):
            renderer.clear()
        for path in paths:
            t0 = time.perf_counter()
            async with session.get(base + path, headers=headers) as resp:
                await resp.read()
            first[path] = (time.perf_counter() - t0) * 1000
        bench.build_ms.clear()
        bench.catch_up_ms.clear()
        with FullCollections() as collections:  # unhooked even if a round fails
            for r in range(rounds):
                payloads, seq = upcoming
                # the agents build the next round while this one is applied, and are idle
                # again before anything is timed
                following = (asyncio.ensure_future(bench.agents.ask("payloads"))
                             if r < rounds - 1 else None)
                round_s.append(await bench.inject(payloads, seq))
                if following is not None:
                    upcoming = await following
                for path in paths:
                    t0 = time.perf_counter()
                    async with session.get(base + path, headers=headers) as resp:
                        wire = await resp.read()
                    times[path].append((time.perf_counter() - t0) * 1000)
                    status[path] = resp.status
                    encoding = resp.headers.get("Content-Encoding", "")
                    bodies[path] = (gzip.decompress(wire) if encoding == "gzip" else wire, wire,
                                    encoding)
        after_round = {name: list(ms) for name, ms in bench.build_ms.items()}
        catch_up_ms = list(bench.catch_up_ms)
        unchanged = {}
        for path in paths:
            same = []
            for _ in range(5):
                t0 = time.perf_counter()
                async with session.get(base + path, headers=headers) as resp:
                    await resp.read()
                same.append((time.perf_counter() - t0) * 1000)
            unchanged[path] = statistics.median(same)
    print(f"  {rounds} report rounds of {len(bench.powered)} reports, "
          f"each applied and stored in {statistics.median(round_s):.2f} s (median)")
    if collections.ms:
        print(f"  full garbage collections meanwhile: {len(collections.ms)}, "
              f"{statistics.median(collections.ms):.0f} ms each (median), longest "
              f"{max(collections.ms):.0f} ms")
    print("  first request of each (builds the document from scratch): "
          + ", ".join(f"{path.rsplit('/', 1)[-1]} {ms:.0f} ms" for path, ms in first.items()))
    if catch_up_ms:
        per_round = sum(catch_up_ms) / rounds
        print(f"  documents following changes (after each ingest batch, each tick, each "
              f"request): {per_round:.0f} ms per round of {len(bench.powered)} reports "
              f"({per_round / len(bench.powered) * 1000:.0f} µs per report), "
              f"{len(catch_up_ms) / rounds:.0f} calls per round, median "
              f"{statistics.median(catch_up_ms):.1f} ms, longest {max(catch_up_ms):.1f} ms")
    print("  path                  p50 after a round   p99    unchanged  raw kB  wire kB  "
          "build p50 (server)")
    result: dict[str, dict[str, Any]] = {}
    names = {"/api/v1/nodes": "nodes", "/api/v1/topology": "topology", MAP_API: "map"}
    for path in paths:
        if status[path] != 200:
            print(f"  {path:22s} HTTP {status[path]} (not there)")
            continue
        ts = sorted(times[path])
        p50, p99 = statistics.median(ts), ts[min(len(ts) - 1, round(0.99 * (len(ts) - 1)))]
        body, wire_body, enc = bodies[path]
        raw, wire_len = len(body), len(wire_body)
        build = after_round.get(names.get(path, path), [])
        build_p50 = f"{statistics.median(build[-rounds:]):6.1f} ms" if build else "     —"
        gz = len(gzip.compress(body, 6)) if not enc else wire_len
        limit = f"(limit {TARGET_API_MS:.0f} ms{' ' if path in REQUIRED else ', map'})"
        print(f"  {path:22s} {p50:7.1f} ms {limit:16s} {p99:6.1f} ms  {unchanged[path]:6.1f} ms"
              f"  {raw / 1000:6.0f}  {wire_len / 1000:7.0f}  {build_p50}"
              + (f"   (not compressed; gzip would be {gz / 1000:.0f} kB)" if not enc else
                 f"   ({enc})"))
        result[path] = {"p50": p50, "p99": p99, "raw": raw, "wire": wire_len, "gzip": gz}
    return result


def profile_topology(bench: Bench) -> None:
    """Where one after-round /api/v1/topology build goes (cProfile, top 12 by own time)."""
    ctx = bench.ctx
    grid = ctx.config.privacy.coarsen_grid_deg
    prof = cProfile.Profile()
    prof.enable()
    ctx.documents.graph_json(grid)
    ctx.documents.nodes_json(grid, ctx.state_of)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
    print(text.getvalue())


# ---------------------------------------------------------------------------- main
async def run(args: argparse.Namespace) -> None:
    net = load_network()
    located = sum(n.location is not None for n in net.nodes)
    load_before = os.getloadavg()
    mosquitto = servers.start_mosquitto()
    agents = Agents(mosquitto.port)
    service: Service | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
            config = collector_config(Path(tmp), mosquitto.port, map={"tile_url": ""})
            service = await started(config)
            bench = Bench(service, agents, net)
            t0 = time.perf_counter()
            await agents.ask("setup")
            topo = service.topology
            while sum(1 for n in topo.nodes.values() if n.info is not None) < len(net.nodes):
                await asyncio.sleep(0.05)
            await bench.round()
            down = powered_down(net, DOWN_SHARE)
            await agents.ask("down", down)
            bench.powered -= set(down)
            await bench.round()
            print(f"{len(net.nodes)} nodes ({located} located, {len(net.nodes) // PRIVATE_EVERY}"
                  f" private, {len(down)} powered down), {len(topo.links)} directed links, "
                  f"{topo.graph.number_of_edges()} node pairs; collector fed in "
                  f"{time.perf_counter() - t0:.1f} s")
            print(f"[render] {config.http.host}, Chromium {DESKTOP['width']}x{DESKTOP['height']}")
            shown = await render(bench, args.loads)
            print("[api]")
            apis = await api(bench, args.rounds)
            if args.profile:
                await bench.round()
                profile_topology(bench)
    finally:
        if service is not None:
            await service.stop()
        agents.close()
        mosquitto.stop()

    print("machine load (1/5/15 min) before {:.1f} {:.1f} {:.1f}, after {:.1f} {:.1f} {:.1f} "
          "(2 cores; above ~2 the figures are inflated)".format(*load_before, *os.getloadavg()))
    loads = shown["loads"]
    render_ms = statistics.median(s["renderedAt"] for s in loads) if loads else float("nan")
    if loads:
        worst = max(s["renderedAt"] for s in loads)
        ok = [s["markers"] == located for s in loads]
        verdict = "ok" if render_ms <= TARGET_RENDER_MS else "MISSED"
        print(f"render: median {render_ms:.0f} ms of {len(loads)} loads (worst {worst:.0f} ms),"
              f" limit {TARGET_RENDER_MS:.0f} ms: {verdict}; markers == located nodes "
              f"({located}): {'yes' if all(ok) else 'NO'}")
    required = [apis[p] for p in REQUIRED if p in apis]
    api_ms = max(r["p50"] for r in required)
    api_kb = sum(r["raw"] for r in required) / 1000
    print(f"api: worse p50 of nodes/topology after a round {api_ms:.1f} ms, limit "
          f"{TARGET_API_MS:.0f} ms: {'ok' if api_ms <= TARGET_API_MS else 'MISSED'}; "
          f"both together {api_kb:.0f} kB raw, "
          f"{sum(r['gzip'] for r in required) / 1000:.0f} kB gzip")
    if MAP_API in apis:
        m = apis[MAP_API]
        print(f"map endpoint: p50 {m['p50']:.1f} ms, {m['raw'] / 1000:.0f} kB raw, "
              f"{m['gzip'] / 1000:.0f} kB gzip")
    print(f"RESULT render_ms={render_ms:.0f} api_ms={api_ms:.1f} api_kb={api_kb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="report rounds for the API")
    parser.add_argument("--loads", type=int, default=3, help="page loads in Chromium")
    parser.add_argument("--profile", action="store_true", help="profile an after-round build")
    parser.add_argument("--build-data", type=Path, metavar="DIR",
                        help="rebuild bench/data from the meshviewer snapshots in DIR")
    args = parser.parse_args()
    if args.build_data:
        build_data(args.build_data)
        return
    tune_runtime()  # as `meshmon serve` runs the collector
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
