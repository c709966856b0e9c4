"""SNMP benchmark: one bridge polling N devices served by snmpsim on loopback.

    python bench/snmp.py [--devices 1000] [--sims 2] [--rounds 2] [--concurrency 64]

The devices are the real LibreNMS recordings (airMAX, airFiber, LTU, MikroTik AP/station/
LTE, Mimosa, UniFi, OpenWrt) under N community names, spread over `--sims` snmpsim
processes. Round 0 discovers every device; the later rounds are what a running bridge does
every interval. Prints, for each steady round, the wall time of the full round next to the
10 s target, the bridge's CPU per device, SNMP requests per device, and the CPU the
simulators used in the same round (they share the machine's two cores with the bridge).
Last line: RESULT round_s=… cpu_ms_per_device=… requests_per_device=… sim_cpu_s=…
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


async def rounds(tables: list[SnmpTable], count: int, sim_pids: list[int]
                 ) -> list[dict[str, float]]:
    sources = snmp_kind.create_snmp_sources(tables, BridgeContext("bench"))
    sink = EncodingSink()
    bridge = Bridge("bench", "meshmon", sources, sink)
    results = []
    try:
        for number in range(count + 1):
            requests = sum(s.requests for s in sources if isinstance(s, SnmpDevice))
            sims = sum(cpu_seconds(p) for p in sim_pids)
            wall, cpu = time.monotonic(), time.process_time()
            ok = await bridge.run_once()
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            requests = sum(s.requests for s in sources if isinstance(s, SnmpDevice)) - requests
            results.append({"round": number, "ok": ok, "wall_s": wall, "cpu_s": cpu,
                            "requests": requests,
                            "sim_cpu_s": sum(cpu_seconds(p) for p in sim_pids) - sims})
    finally:
        await bridge.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--sims", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    snmp_kind.MAX_CONCURRENT = args.concurrency
    work = Path(tempfile.mkdtemp(prefix="bench-snmp-"))
    shares: list[dict[str, str]] = [{} for _ in range(args.sims)]
    for i in range(args.devices):
        shares[i % args.sims][f"dev-{i:04d}"] = MIX[i % len(MIX)]
    servers = []
    try:
        started = time.monotonic()
        for n, share in enumerate(shares):
            data = snmpsim.recordings(RECORDINGS, work / f"sim{n}", share)
            servers.append(snmpsim.start_snmpsim(data, next(iter(share)), timeout=600))
        print(f"{args.sims} snmpsim process(es) serving {args.devices} devices, ready in "
              f"{time.monotonic() - started:.1f} s")
        tables = [SnmpTable(host="127.0.0.1", port=servers[n].port, community=c, node=c,
                            timeout_s=10, retries=1)
                  for n, share in enumerate(shares) for c in share]
        results = asyncio.run(rounds(tables, args.rounds, [s.proc.pid for s in servers]))
    finally:
        for server in servers:
            server.stop()
        snmpsim.remove(work)
    for r in results:
        kind = "discovery" if r["round"] == 0 else "full round"
        print(f"round {r['round']} ({kind}): {r['wall_s']:.1f} s wall (target "
              f"{TARGET_ROUND_S:.0f} s), bridge CPU {r['cpu_s']:.1f} s = "
              f"{1000 * r['cpu_s'] / args.devices:.1f} ms/device, "
              f"{r['requests'] / args.devices:.1f} requests/device, simulators' CPU "
              f"{r['sim_cpu_s']:.1f} s, all answered: {r['ok']}")
    steady = results[1:] or results
    best = min(steady, key=lambda r: r["wall_s"])
    verdict = ("ok" if best["wall_s"] <= TARGET_ROUND_S
               else f"missed by {best['wall_s'] / TARGET_ROUND_S:.1f}x")
    print(f"full round of {args.devices} devices: {best['wall_s']:.1f} s, target "
          f"{TARGET_ROUND_S:.0f} s: {verdict}")
    print(f"RESULT round_s={best['wall_s']:.2f} "
          f"cpu_ms_per_device={1000 * best['cpu_s'] / args.devices:.2f} "
          f"requests_per_device={best['requests'] / args.devices:.2f} "
          f"sim_cpu_s={best['sim_cpu_s']:.1f}")


if __name__ == "__main__":
    main()
