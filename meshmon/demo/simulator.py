"""Simulated agents: one real agent `Publisher` (MQTT) per node of a `DemoNetwork`.

Each node announces its status (with last will) and info, then reports every interval
with a random phase. Link values follow the topology: wifi links get radio metrics
derived from the snapshot's TQ, batman-adv and VPN links carry the TQ itself; all values
drift in bounded random walks. Now and then a node loses power (its connection drops
without DISCONNECT, so the broker sends its last will) and the nodes that can no longer
reach any gateway through the mesh drop off with it, as they would in a real mesh; they
come back when it does. A few outages are hung agents instead: connected, silent.

All simulator state lives in the asyncio loop thread; paho's threads only hand over with
`call_soon_threadsafe` (commands), and blocking paho calls (kill, stop) run in threads.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from meshmon_agent.config import MqttSettings

from meshmon.demo.loop_publisher import CommandListener, LoopPublisher
from meshmon.demo.network import DemoLink, DemoNetwork, DemoNode

log = logging.getLogger(__name__)

AGENT = "meshmon-demo/0.1"
TQ_MAX = 255

# 802.11n, 2 spatial streams, long GI: (minimum SNR dB, PHY rate Mbps at 20 MHz)
_HT_RATES: tuple[tuple[float, float], ...] = (
    (30, 130.0), (27, 117.0), (24, 104.0), (20, 78.0), (16, 52.0), (13, 39.0), (10, 26.0),
    (7, 13.0), (4, 6.5),
)  # fmt: skip
_BANDS: dict[str, tuple[float, int, float, float]] = {
    # iface: (freq MHz, channel, width MHz, typical noise dBm)
    "mesh0": (2412.0, 1, 20.0, -95.0),
    "mesh1": (5220.0, 44, 40.0, -102.0),
}
_IFACE_NO = {"br-client": 0, "mesh0": 1, "mesh1": 2, "mesh-lan": 3, "mesh-wan": 4,
             "mesh-vpn": 5, "bat0": 6, "eth0": 7}


def synthetic_mac(index: int, iface: str) -> str:
    """A locally administered MAC (`02:6d:6d:…`) for interface `iface` of node `index`."""
    return f"02:6d:6d:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}:{_IFACE_NO[iface]:02x}"


def phy_rate_mbps(snr_db: float, width_mhz: float) -> float:
    """The rate minstrel would settle on at this SNR (HT, 2 streams)."""
    scale = width_mhz / 20.0 * (1.0 if width_mhz <= 20 else 1.04)  # HT40 has more subcarriers
    for min_snr, rate in _HT_RATES:
        if snr_db >= min_snr:
            return round(rate * scale, 1)
    return 1.0


class Walk:
    """A bounded, mean-reverting random walk."""

    __slots__ = ("hi", "lo", "mean", "revert", "step", "value")

    def __init__(self, value: float, lo: float, hi: float, step: float, revert: float = 0.1,
                 mean: float | None = None) -> None:
        self.value, self.lo, self.hi, self.step, self.revert = value, lo, hi, step, revert
        self.mean = value if mean is None else mean

    def next(self, rng: random.Random) -> float:
        """Advance one step and return the new value."""
        v = self.value + rng.gauss(0.0, self.step) + (self.mean - self.value) * self.revert
        self.value = min(self.hi, max(self.lo, v))
        return self.value


@dataclass
class _Pair:
    """State shared by both ends of one radio link: fading is (mostly) reciprocal."""

    fade_db: Walk


@dataclass
class _LinkEnd:
    """One link as one node sees it."""

    peer: str
    peer_index: int
    iface: str
    type: str  # wifi / vpn / other
    tq: float  # own side, 0-1
    pair_tq: float  # mean of both sides
    pair: _Pair
    by_mac: bool
    batman_by_mac: bool
    signal_offset_db: float
    tx_retries: int = 0
    tx_failed: int = 0
    signal_avg: float | None = None


@dataclass
class NodeSim:
    """One simulated router: what it announces and what its next report says."""

    node: DemoNode
    index: int
    rng: random.Random
    links: list[_LinkEnd] = field(default_factory=list)
    seq: int = 0
    boot_ts: float = 0.0
    ifaces: list[str] = field(default_factory=list)
    counters: dict[str, list[int]] = field(default_factory=dict)
    load: Walk = field(default_factory=lambda: Walk(0.3, 0.0, 4.0, 0.08))
    mem_avail_frac: Walk = field(default_factory=lambda: Walk(0.45, 0.15, 0.8, 0.01))
    clients: Walk = field(default_factory=lambda: Walk(0.0, 0.0, 1.0, 0.0))
    noise: dict[str, Walk] = field(default_factory=dict)
    busy: dict[str, Walk] = field(default_factory=dict)
    mem_total_kb: int = 59_000
    rootfs_pct: float = 50.0
    interval_s: float = 30.0
    fast_until: float = 0.0  # loop time until which installer mode is on
    fast_interval_s: float = 1.0

    @property
    def is_server(self) -> bool:
        return self.node.is_gateway and not self.node.model

    def setup(self, boot_ts: float) -> None:
        """Pick the static facts of this node from its model and links."""
        rng, node = self.rng, self.node
        self.boot_ts = boot_ts
        link_ifaces = {lk.iface for lk in self.links}
        if self.is_server:
            self.ifaces = ["eth0", "bat0", "mesh-vpn"]
            self.mem_total_kb = 2_040_000
            self.rootfs_pct = round(rng.uniform(20, 45), 1)
            self.load = Walk(rng.uniform(0.3, 1.0), 0.0, 4.0, 0.06)
        else:
            model = (node.model or "").upper()
            dual = "mesh1" in link_ifaces or any(
                k in model for k in ("WDR", "ARCHER", "AC", "N750", "C7", "EAP")
            )
            self.ifaces = ["br-client", "bat0", "mesh0", *(["mesh1"] if dual else [])]
            self.ifaces += sorted(i for i in link_ifaces if i not in self.ifaces)
            small = any(k in model for k in ("841", "840", "842", "740", "940", "741", "CPE"))
            self.mem_total_kb = 27_800 if small else (123_000 if dual else 59_000)
            self.rootfs_pct = round(rng.uniform(55, 92) if small else rng.uniform(8, 40), 1)
            self.load = Walk(rng.uniform(0.05, 0.6), 0.0, 4.0, 0.05)
            base = float(node.clients)
            self.clients = Walk(base, 0.0, max(4.0, 2.5 * base + 2), 0.6 + 0.15 * base,
                                revert=0.15)
            for radio in ("mesh0", "mesh1"):
                if radio in self.ifaces:
                    noise = _BANDS[radio][3]
                    self.noise[radio] = Walk(noise + rng.uniform(-2, 2), noise - 5, noise + 6, 0.4)
                    self.busy[radio] = Walk(rng.uniform(15, 55), 3, 95, 2.5)
        self.mem_avail_frac = Walk(rng.uniform(0.3, 0.6), 0.1, 0.85, 0.01)
        self.counters = {i: [rng.randrange(10**6, 10**9), rng.randrange(10**6, 10**9)]
                         for i in self.ifaces}

    def reboot(self, now_ts: float) -> None:
        """A power cycle: the agent starts again (seq 0, uptime 0)."""
        self.seq = 0
        self.boot_ts = now_ts - self.rng.uniform(40, 90)  # the agent starts after boot
        self.counters = {i: [0, 0] for i in self.ifaces}
        for lk in self.links:
            lk.tx_retries = lk.tx_failed = 0
            lk.signal_avg = None

    def macs(self) -> list[str]:
        """All interface MACs, as the info announces them."""
        return [synthetic_mac(self.index, i) for i in self.ifaces if i in _IFACE_NO]

    def info(self, now_ts: float) -> dict[str, Any]:
        """The retained info message."""
        node = self.node
        info: dict[str, Any] = {
            "v": 1, "node": node.id, "ts": round(now_ts, 3), "hostname": node.hostname,
            "agent": AGENT, "macs": self.macs(), "gateway": node.gateway,
            "public": True, "interval_s": self.interval_s,
            "tags": ["demo", "freifunk-bremen",
                     *(["vpn-server"] if node.is_gateway else []),
                     *(["uplink"] if node.uplink else [])],
        }  # fmt: skip
        if node.model:
            info["model"] = node.model
        if node.firmware:
            info["firmware"] = node.firmware
        if node.location is not None:
            info["location"] = {"lat": node.location[0], "lon": node.location[1]}
        return info

    def current_interval(self, loop_now: float) -> float:
        """The report interval now (installer mode shortens it)."""
        return self.fast_interval_s if loop_now < self.fast_until else self.interval_s

    def report(self, now_ts: float, interval_s: float, peer_up: set[str]) -> dict[str, Any]:
        """The next periodic report; links to peers not in `peer_up` are not seen."""
        rng = self.rng
        self.seq += 1
        clients = round(self.clients.next(rng))
        load1 = self.load.next(rng)
        sys_part = {
            "uptime_s": round(max(0.0, now_ts - self.boot_ts), 1),
            "load": [round(load1, 2), round(load1 * 0.8 + self.load.mean * 0.2, 2),
                     round(load1 * 0.5 + self.load.mean * 0.5, 2)],
            "mem_total_kb": self.mem_total_kb,
            "mem_avail_kb": int(self.mem_total_kb * self.mem_avail_frac.next(rng)),
            "rootfs_used_pct": self.rootfs_pct,
        }
        links = [entry for lk in self.links if lk.peer in peer_up
                 for entry in self._link_entries(lk, interval_s)]
        ifaces = []
        for name in self.ifaces:
            c = self.counters[name]
            kbps = (60.0 * clients + 8.0) if name in ("br-client", "bat0", "eth0") else 12.0
            c[0] += int(rng.uniform(0.5, 1.5) * kbps * 125 * interval_s)
            c[1] += int(rng.uniform(0.3, 1.0) * kbps * 125 * interval_s)
            ifaces.append({"name": name, "up": True, "rx_bytes": c[0], "tx_bytes": c[1],
                           "rx_packets": c[0] // 610, "tx_packets": c[1] // 580,
                           "rx_errors": 0, "tx_errors": c[1] // 9_000_000})
        radios = []
        share = {"mesh0": 0.65 if "mesh1" in self.noise else 1.0, "mesh1": 0.35}
        for name, (freq, channel, width, _noise) in _BANDS.items():
            if name in self.noise:
                radios.append({
                    "iface": name, "freq_mhz": freq, "channel": channel, "width_mhz": width,
                    "noise_dbm": round(self.noise[name].next(rng)),
                    "txpower_dbm": 20.0 if name == "mesh0" else 23.0,
                    "busy_pct": round(self.busy[name].next(rng), 1),
                    "clients": round(clients * share[name]),
                })
        report: dict[str, Any] = {
            "v": 1, "node": self.node.id, "ts": round(now_ts, 3), "seq": self.seq,
            "interval_s": interval_s, "sys": sys_part, "ifaces": ifaces, "radios": radios,
            "clients": clients, "links": links,
        }  # fmt: skip
        return report

    def _peer_ref(self, lk: _LinkEnd, by_mac: bool) -> dict[str, Any]:
        if by_mac:
            return {"peer_mac": synthetic_mac(lk.peer_index, lk.iface), "iface": lk.iface}
        return {"peer": lk.peer, "iface": lk.iface}

    def _link_entries(self, lk: _LinkEnd, interval_s: float) -> list[dict[str, Any]]:
        rng = self.rng
        fade = lk.pair.fade_db.value
        # batman's TQ follows the radio: a 10 dB fade costs about a quarter of the TQ
        tq = min(TQ_MAX, max(0, round(TQ_MAX * lk.tq + 6.0 * fade + rng.gauss(0, 3))))
        batman = {**self._peer_ref(lk, lk.batman_by_mac),
                  "kind": "vpn" if lk.type == "vpn" else "batman", "tq": tq,
                  "inactive_ms": rng.randrange(0, 4000 if lk.type != "vpn" else 1000)}
        if lk.type != "wifi":
            return [batman]
        noise_walk = self.noise.get(lk.iface)
        noise = noise_walk.value if noise_walk is not None else -95.0
        signal = -93.0 + 55.0 * lk.pair_tq + lk.signal_offset_db + fade + rng.gauss(0, 1.2)
        signal = min(-20.0, max(-100.0, signal))
        lk.signal_avg = signal if lk.signal_avg is None else 0.7 * lk.signal_avg + 0.3 * signal
        snr = signal - noise
        width = _BANDS.get(lk.iface, _BANDS["mesh0"])[2]
        tx_rate = phy_rate_mbps(snr + rng.gauss(0, 1), width)
        rx_rate = phy_rate_mbps(snr + rng.gauss(0, 1.5), width)
        loss = max(0.0, 1.0 - tq / TQ_MAX)
        packets = int(interval_s * rng.uniform(20, 120))
        lk.tx_retries += int(packets * min(2.0, 3 * loss) * rng.uniform(0.5, 1.5))
        lk.tx_failed += int(packets * loss * loss * rng.uniform(0.2, 1.0))
        wifi = {
            **self._peer_ref(lk, lk.by_mac), "kind": "wifi",
            "signal_dbm": round(signal), "signal_avg_dbm": round(lk.signal_avg),
            "chains_dbm": [round(signal - 2 + rng.gauss(0, 1.5)),
                           round(signal - 3 + rng.gauss(0, 1.5))],
            "noise_dbm": round(noise), "snr_db": round(snr),
            "tx_rate_mbps": tx_rate, "rx_rate_mbps": rx_rate,
            "expected_tput_mbps": round(tx_rate * 0.62 * (0.25 + 0.75 * tq / TQ_MAX), 1),
            "tx_retries": lk.tx_retries, "tx_failed": lk.tx_failed,
            "inactive_ms": rng.randrange(0, 1200),
        }  # fmt: skip
        return [wifi, batman]


def _link_ifaces(links: list[DemoLink]) -> list[str | None]:
    """The interface of each link (same at both ends); None for a duplicate we cannot key."""
    names = {"wifi": ("mesh0", "mesh1"), "other": ("mesh-lan", "mesh-wan"), "vpn": ("mesh-vpn",)}
    seen: Counter[tuple[str, str, str]] = Counter()
    out: list[str | None] = []
    for lk in links:
        a, b = sorted((lk.source, lk.target))
        k = seen[(a, b, lk.type)]
        seen[(a, b, lk.type)] += 1
        choices = names[lk.type]
        out.append(choices[k] if k < len(choices) else None)
    return out


@dataclass
class _Outage:
    until: float  # loop time
    mode: str  # "power" or "hang"


class Simulator:
    """Runs one simulated agent per node of `network` against an MQTT broker."""

    def __init__(
        self,
        network: DemoNetwork,
        mqtt_host: str,
        mqtt_port: int,
        interval_s: float = 30.0,
        prefix: str = "meshmon",
        seed: int = 2020,
        outages_per_node_h: float = 0.3,
        outage_duration_s: tuple[float, float] = (60.0, 300.0),
        hang_share: float = 0.15,
        start_rate_per_s: float = 100.0,
        mqtt_username: str = "",
        mqtt_password: str = "",
    ) -> None:
        self.network = network
        self.interval_s = interval_s
        self.prefix = prefix
        self.outages_per_node_h = outages_per_node_h
        self.outage_duration_s = outage_duration_s
        self.hang_share = hang_share
        self.start_rate_per_s = start_rate_per_s
        self.settings = MqttSettings(host=mqtt_host, port=mqtt_port, username=mqtt_username,
                                     password=mqtt_password, keepalive_s=30, queue_max=50,
                                     reconnect_min_s=1, reconnect_max_s=5)
        self.rng = random.Random(seed)
        self.publishers: dict[str, LoopPublisher] = {}
        self.outages: dict[str, _Outage] = {}
        self.cut_off: set[str] = set()
        self.started_at: float | None = None
        self.start_duration_s: float | None = None  # until every publisher was started
        self.reports_sent = 0
        self.stop_duration_s: float | None = None
        self._next_tick = 0.0
        self._nodes: dict[str, NodeSim] = {}
        self._heap: list[tuple[float, int, str]] = []  # (due loop time, generation, node)
        self._generation: dict[str, int] = {}
        self._to_start: list[str] = []
        self._next_outage: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commands: CommandListener | None = None
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="demo-connect")
        self._stopping = threading.Event()
        self._build()

    # -- construction --------------------------------------------------------------------

    def _build(self) -> None:
        now_ts = time.time()
        index = {n.id: i for i, n in enumerate(self.network.nodes, start=1)}
        for node in self.network.nodes:
            rng = random.Random(self.rng.getrandbits(64))
            self._nodes[node.id] = NodeSim(node, index[node.id], rng, interval_s=self.interval_s)
        for lk, iface in zip(self.network.links, _link_ifaces(self.network.links), strict=True):
            if iface is None:
                continue
            pair_tq = (lk.source_tq + lk.target_tq) / 2
            pair = _Pair(Walk(0.0, -12.0, 4.0, 0.8, revert=0.08, mean=0.0))
            for me, peer, tq in ((lk.source, lk.target, lk.source_tq),
                                 (lk.target, lk.source, lk.target_tq)):
                self._nodes[me].links.append(_LinkEnd(
                    peer=peer, peer_index=index[peer], iface=iface, type=lk.type, tq=tq,
                    pair_tq=pair_tq, pair=pair, by_mac=self.rng.random() < 0.5,
                    batman_by_mac=self.rng.random() < 0.5,
                    signal_offset_db=self.rng.uniform(-3, 3),
                ))
        self._all_ids = frozenset(self._nodes)
        self._powered: set[str] = set(self._all_ids)
        for ns in self._nodes.values():
            ns.setup(now_ts - ns.rng.uniform(3600, 40 * 86400))

    def node_sim(self, node_id: str) -> NodeSim:
        """The simulated state of one node."""
        return self._nodes[node_id]

    def macs(self) -> dict[str, str]:
        """Every announced MAC → its node id."""
        return {mac: nid for nid, ns in self._nodes.items() for mac in ns.macs()}

    @property
    def online(self) -> set[str]:
        """Nodes whose agent is connected (or connecting) right now."""
        return set(self.publishers)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Queue every node for start-up; `run()` starts them staggered, quickly.

        Must be called in the asyncio loop that will run `run()`; it never blocks, because
        the broker may live in the same loop (the embedded one does).
        """
        self._loop = asyncio.get_running_loop()
        self.started_at = self._loop.time()
        order = [n.id for n in self.network.nodes]
        self.rng.shuffle(order)
        self._to_start = order[::-1]  # popped from the end
        self._commands = CommandListener(self.settings, self.prefix, self._loop, self._pool,
                                         self._command)
        self._commands.start()
        self._next_outage = self._draw_next_outage(self.started_at)

    async def run(self, duration_s: float | None = None) -> None:
        """Start (if needed) and keep the network reporting until `duration_s` or cancel."""
        if self._loop is None:
            self.start()
        loop = asyncio.get_running_loop()
        end = None if duration_s is None else loop.time() + duration_s
        while not self._stopping.is_set():
            now = loop.time()
            if end is not None and now >= end:
                return
            self._start_some(now)
            self._fire_due(now)
            if now >= self._next_tick:
                self._next_tick = now + 1.0
                for pub in self.publishers.values():
                    pub.tick()
                if self._commands is not None:
                    self._commands.driver.tick()
            await self._outages_due(now)
            wake = now + 0.25
            if self._heap:
                wake = min(wake, self._heap[0][0])
            if end is not None:
                wake = min(wake, end)
            await asyncio.sleep(max(0.005, wake - loop.time()))

    def stop(self) -> None:
        """Stop every agent cleanly (`online: false`, DISCONNECT); returns at once.

        Call it in the loop's thread (or after the loop has ended): the packets are written
        to the sockets right here, no broker round trip is awaited.
        """
        self._stopping.set()
        publishers = list(self.publishers.values())
        self.publishers.clear()
        t0 = time.monotonic()
        for pub in publishers:
            _quiet_stop(pub)
        if self._commands is not None:
            self._commands.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.stop_duration_s = time.monotonic() - t0
        log.info("demo: %d agents stopped in %.2f s", len(publishers), self.stop_duration_s)

    # -- agents --------------------------------------------------------------------------

    def _start_some(self, now: float) -> None:
        if not self._to_start:
            return
        assert self.started_at is not None
        allowed = int((now - self.started_at) * self.start_rate_per_s) + 1
        started = len(self.network.nodes) - len(self._to_start)
        while self._to_start and started < allowed:
            self._start_agent(self._to_start.pop(), now, first=True)
            started += 1
        if not self._to_start:
            self.start_duration_s = now - self.started_at
            log.info("demo: %d agents started in %.2f s, %d threads", len(self.network.nodes),
                     self.start_duration_s, threading.active_count())

    def _start_agent(self, node_id: str, now: float, first: bool = False) -> None:
        """Connect the node's agent; its info and first report go out right after CONNACK."""
        ns = self._nodes[node_id]
        assert self._loop is not None
        pub = LoopPublisher(self.settings, node_id, self.prefix, self._loop, self._pool)
        pub.publish_info(ns.info(time.time()))
        self.publishers[node_id] = pub
        pub.start()
        self._report(node_id, now)
        # then every interval, with a random phase per node
        self._schedule(node_id, now + ns.rng.uniform(0.1, 1.0) * ns.current_interval(now))

    def _schedule(self, node_id: str, due: float) -> None:
        gen = self._generation.get(node_id, 0) + 1
        self._generation[node_id] = gen
        heapq.heappush(self._heap, (due, gen, node_id))

    def _fire_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            due, gen, node_id = heapq.heappop(self._heap)
            if self._generation.get(node_id) != gen:
                continue  # rescheduled or taken down since
            self._report(node_id, now)
            interval = self._nodes[node_id].current_interval(now)
            # keep the phase: next due is relative to when it was due, not when it ran
            nxt = due + interval if due + interval > now else now + interval
            self._schedule(node_id, nxt)

    def _report(self, node_id: str, now: float) -> None:
        pub = self.publishers.get(node_id)
        outage = self.outages.get(node_id)
        if pub is None or (outage is not None and outage.mode == "hang"):
            return
        ns = self._nodes[node_id]
        interval = ns.current_interval(now)
        # drift the shared fading of this node's links a little each report
        for lk in ns.links:
            lk.pair.fade_db.next(ns.rng)
        up = self._peers_up()
        pub.publish_report(ns.report(time.time(), interval, up))
        self.reports_sent += 1

    def _peers_up(self) -> set[str]:
        # powered-off nodes are not seen by their neighbours; hung agents and cut-off nodes are
        return self._powered

    def _command(self, node_id: str, command: dict[str, Any]) -> None:
        """Installer mode: `{"cmd": "fast", "interval_s": 1, "duration_s": 600}`."""
        if (command.get("cmd") != "fast" or self._loop is None
                or node_id not in self.publishers or self._stopping.is_set()):
            return
        ns = self._nodes[node_id]
        try:
            interval = min(60.0, max(0.5, float(command.get("interval_s", 1))))
            duration = min(3600.0, max(1.0, float(command.get("duration_s", 600))))
        except (TypeError, ValueError):
            return
        now = self._loop.time()
        ns.fast_interval_s, ns.fast_until = interval, now + duration
        log.info("demo: %s in fast mode (%.1f s) for %.0f s", node_id, interval, duration)
        self._schedule(node_id, now)

    # -- outages -------------------------------------------------------------------------

    def _draw_next_outage(self, now: float) -> float | None:
        eligible = sum(1 for n in self.network.nodes if not n.is_gateway)
        rate = self.outages_per_node_h / 3600.0 * eligible
        return None if rate <= 0 else now + self.rng.expovariate(rate)

    async def _outages_due(self, now: float) -> None:
        changed = False
        for node_id, outage in list(self.outages.items()):
            if outage.until <= now:
                del self.outages[node_id]
                changed = True
                if outage.mode == "power":
                    self._nodes[node_id].reboot(time.time())
                    log.info("demo: %s is back", node_id)
                else:
                    log.info("demo: %s reports again", node_id)
        if self._next_outage is not None and now >= self._next_outage:
            self._next_outage = self._draw_next_outage(now)
            candidates = [n.id for n in self.network.nodes
                          if not n.is_gateway and n.id in self.publishers
                          and n.id not in self.outages]
            if candidates:
                node_id = self.rng.choice(candidates)
                lo, hi = self.outage_duration_s
                duration = max(self.rng.uniform(lo, hi), 4 * self.interval_s)
                mode = "hang" if self.rng.random() < self.hang_share else "power"
                await self.take_down(node_id, duration, mode)
                return  # take_down re-evaluated reachability
        if changed:
            await self._apply_reachability()

    async def take_down(self, node_id: str, duration_s: float, mode: str = "power") -> None:
        """Make one node fail for `duration_s`: `power` (connection drops, last will) or
        `hang` (the agent stays connected but stops reporting)."""
        assert self._loop is not None
        self.outages[node_id] = _Outage(self._loop.time() + duration_s, mode)
        log.info("demo: %s down (%s) for %.0f s", node_id, mode, duration_s)
        await self._apply_reachability()

    def _reachable(self) -> set[str]:
        """Nodes with power that reach a gateway through links between powered nodes."""
        powered = self._peers_up()
        gateways = [n.id for n in self.network.nodes if n.gateway and n.id in powered]
        if not gateways:
            return powered
        seen = set(gateways)
        stack = list(gateways)
        while stack:
            here = stack.pop()
            for lk in self._nodes[here].links:
                if lk.peer in powered and lk.peer not in seen:
                    seen.add(lk.peer)
                    stack.append(lk.peer)
        return seen

    async def _apply_reachability(self) -> None:
        """Drop the agents that lost power or their path out; bring back the others."""
        assert self._loop is not None
        self._powered = set(self._all_ids) - {
            n for n, o in self.outages.items() if o.mode == "power"}
        reachable = self._reachable()
        if self._stopping.is_set():
            return
        powered = self._peers_up()
        cut_off = powered - reachable
        if cut_off != self.cut_off and cut_off:
            log.info("demo: %d node(s) cut off from every gateway", len(cut_off))
        self.cut_off = cut_off
        now = self._loop.time()
        to_kill = [(n, self.publishers.pop(n)) for n in list(self.publishers)
                   if n not in reachable]
        for node_id, _ in to_kill:
            self._generation[node_id] = self._generation.get(node_id, 0) + 1
        for _, pub in to_kill:
            pub.kill()
        for node_id in sorted(reachable - set(self.publishers)):
            if node_id not in self._to_start:
                self._start_agent(node_id, now)


def _quiet_stop(pub: LoopPublisher) -> None:
    try:
        pub.stop()
    except Exception:
        log.exception("stopping the agent of %s failed", pub.node)
