"""SNMP benchmark: one bridge polling N devices served by snmpsim on loopback.

    python bench/snmp.py [--devices 1000] [--sims 0] [--rounds 3] [--concurrency 64]

The devices are the real LibreNMS recordings (airMAX, airFiber, LTU, MikroTik AP/station/
LTE, Mimosa, UniFi, OpenWrt) under N community names, spread over `--sims` snmpsim
processes (auto: at most PER_SIM recordings each). Round 0 discovers every device; the
later rounds are what a running bridge does every interval. For each steady round it
prints the wall time of the full round next to the 10 s target, the bridge's CPU per
device, SNMP requests per device, the CPU the simulators used in the same round (they
share the machine's cores with the bridge) and UDP datagrams the kernel dropped. Then what
bounds the round: the bridge's own CPU for 1,000 devices (its capacity when devices answer
like real radios, each on its own CPU) and the machine's, bridge and simulators together.
Last line: RESULT round_s=… cpu_ms_per_device=… requests_per_device=… sim_cpu_s=… …
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from meshmon_bridge.messages import OutMessage  # noqa: E402
from meshmon_bridge.runtime import Bridge  # noqa: E402
from meshmon_bridge.source import BridgeContext  # noqa: E402
from meshmon_bridge.sources import snmp as snmp_kind  # noqa: E402
from meshmon_bridge.sources.snmp.config import SnmpTable  # noqa: E402
from meshmon_bridge.sources.snmp.device import SnmpDevice  # noqa: E402

from tests import snmpsim  # noqa: E402

RECORDINGS = ROOT / "tests" / "data" / "librenms" / "snmprec"
MIX = ["airos", "airos-af", "airos-af-ltu", "mimosa", "routeros_ltap-mini",
       "routeros_station", "unifi", "openwrt", "routeros"]
TARGET_ROUND_S = 10.0
TARGET_DEVICES = 1000
PER_SIM = 31
"""recordings per snmpsim process: snmpsim keeps 32 recordings open and, for any other,
reopens it and re-reads its whole index on each request (dbm.dumb here)"""
SIM_OPTIONS = ["--log-level=error"]
"""snmpsim logs every request and response at level info (a tenth of its CPU)"""


class EncodingSink:
    """Encodes every message as the MQTT publisher would, and counts them."""

    def __init__(self) -> None:
        self.messages = 0

    def send(self, message: OutMessage) -> None:
        json.dumps(message.payload, separators=(",", ":")).encode()
        self.messages += 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_drops(pids: list[int]) -> int:
    """Datagrams the kernel dropped (receive buffer full) on the UDP sockets of `pids`."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    drops = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            drops += int(fields[-1])
    return drops


def load() -> str:
    """The machine's 1-minute load average (other work shares these cores)."""
    return Path("/proc/loadavg").read_text().split()[0]


def polled(sources: list[SnmpDevice]) -> int:
    return sum(s.requests for s in sources)


async def rounds(tables: list[SnmpTable], count: int, sim_pids: list[int]
                 ) -> list[dict[str, float]]:
    sources = snmp_kind.create_snmp_sources(tables, BridgeContext("bench"))
    devices = [s for s in sources if isinstance(s, SnmpDevice)]
    bridge = Bridge("bench", "meshmon", sources, EncodingSink())
    results = []
    everyone = [os.getpid(), *sim_pids]
    try:
        for number in range(count + 1):
            requests, drops = polled(devices), udp_drops(everyone)
            sims = sum(cpu_seconds(p) for p in sim_pids)
            before = load()
            wall, cpu = time.monotonic(), time.process_time()
            ok = await bridge.run_once()
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            results.append({"round": number, "ok": ok, "wall_s": wall, "cpu_s": cpu,
                            "requests": polled(devices) - requests,
                            "sim_cpu_s": sum(cpu_seconds(p) for p in sim_pids) - sims,
                            "drops": udp_drops(everyone) - drops, "load": f"{before}→{load()}"})
    finally:
        await bridge.close()
    return results


def serve(devices: int, sims: int, work: Path) -> list[tuple[snmpsim.Server, list[str]]]:
    """snmpsim processes serving the devices' recordings, started side by side."""
    shares: list[dict[str, str]] = [{} for _ in range(sims)]
    for i in range(devices):
        shares[i % sims][f"dev-{i:04d}"] = MIX[i % len(MIX)]
    servers = []
    try:
        for n, share in enumerate(shares):
            data = snmpsim.recordings(RECORDINGS, work / f"sim{n}", share)
            servers.append((snmpsim.launch_snmpsim(data, v3_args=SIM_OPTIONS), list(share)))
        for server, communities in servers:
            snmpsim.wait_until_answering(server, communities[0], timeout=900)
    except BaseException:
        for server, _ in servers:
            server.stop()
        raise
    return servers


def report(results: list[dict], devices: int, sims: int, concurrency: int) -> None:
    for r in results:
        kind = "discovery" if r["round"] == 0 else "full round"
        print(f"round {r['round']} ({kind}): {r['wall_s']:.1f} s wall (target "
              f"{TARGET_ROUND_S:.0f} s), bridge CPU {r['cpu_s']:.1f} s = "
              f"{1000 * r['cpu_s'] / devices:.1f} ms/device, "
              f"{r['requests'] / devices:.2f} requests/device, simulators' CPU "
              f"{r['sim_cpu_s']:.1f} s, UDP drops {r['drops']}, load {r['load']}, "
              f"all answered: {r['ok']}")
    steady = results[1:] or results
    walls = sorted(r["wall_s"] for r in steady)
    best = min(steady, key=lambda r: r["wall_s"])
    cpu_ms = 1000 * statistics.median(r["cpu_s"] for r in steady) / devices
    sim_ms = 1000 * statistics.median(r["sim_cpu_s"] for r in steady) / devices
    verdict = ("ok" if best["wall_s"] <= TARGET_ROUND_S
               else f"missed by {best['wall_s'] / TARGET_ROUND_S:.1f}x")
    print(f"full round of {devices} devices ({sims} snmpsim, {concurrency} polls at once): "
          f"best {walls[0]:.1f} s, median {statistics.median(walls):.1f} s, worst "
          f"{walls[-1]:.1f} s; target {TARGET_ROUND_S:.0f} s: {verdict}")
    bridge_bound = cpu_ms * TARGET_DEVICES / 1000
    machine_bound = (cpu_ms + sim_ms) * TARGET_DEVICES / 1000 / (os.cpu_count() or 1)
    print(f"what bounds it: the bridge's CPU for {TARGET_DEVICES} devices is "
          f"{bridge_bound:.1f} s of one core (its own capacity: devices that answer at once, "
          f"on CPUs of their own, target {TARGET_ROUND_S:.0f} s: "
          f"{'ok' if bridge_bound <= TARGET_ROUND_S else 'missed'}); bridge and simulators "
          f"together need {(cpu_ms + sim_ms):.1f} ms CPU/device, at best "
          f"{machine_bound:.1f} s on this machine's {os.cpu_count()} cores")
    print(f"RESULT round_s={best['wall_s']:.2f} cpu_ms_per_device={cpu_ms:.2f} "
          f"requests_per_device={best['requests'] / devices:.2f} "
          f"sim_cpu_s={best['sim_cpu_s']:.1f} round_median_s={statistics.median(walls):.2f} "
          f"round_worst_s={walls[-1]:.2f} sim_cpu_ms_per_device={sim_ms:.2f} "
          f"bridge_bound_s={bridge_bound:.2f} machine_bound_s={machine_bound:.2f} "
          f"sims={sims} concurrency={concurrency} "
          f"drops={sum(r['drops'] for r in steady)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=TARGET_DEVICES)
    parser.add_argument("--sims", type=int, default=0, help="0: one per PER_SIM devices")
    parser.add_argument("--rounds", type=int, default=3, help="steady rounds after discovery")
    parser.add_argument("--concurrency", type=int, default=snmp_kind.MAX_CONCURRENT,
                        help="devices polled at once (default: the bridge's own)")
    args = parser.parse_args()
    sims = args.sims or math.ceil(args.devices / PER_SIM)
    snmp_kind.MAX_CONCURRENT = args.concurrency
    work = Path(tempfile.mkdtemp(prefix="bench-snmp-"))
    servers = []
    try:
        started = time.monotonic()
        servers = serve(args.devices, sims, work)
        print(f"{sims} snmpsim process(es) serving {args.devices} devices, ready in "
              f"{time.monotonic() - started:.1f} s")
        tables = [SnmpTable(host="127.0.0.1", port=server.port, community=c, node=c,
                            timeout_s=10, retries=1)
                  for server, communities in servers for c in communities]
        results = asyncio.run(rounds(tables, args.rounds, [s.proc.pid for s, _ in servers]))
    finally:
        for server, _ in servers:
            server.stop()
        snmpsim.remove(work)
    report(results, args.devices, sims, args.concurrency)


if __name__ == "__main__":
    main()
