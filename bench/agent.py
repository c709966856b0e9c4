"""The two router agents side by side on the same captures: flash, memory, CPU per report.

    python bench/agent.py [--reports 20] [--interval 0.5]

Flash: the files each agent installs (the sh script; the Python package's .py files and
their .pyc, plus paho-mqtt), raw and xz-compressed (OpenWrt images are squashfs + xz).
Then each agent runs for `--reports` reports against a real Mosquitto on loopback, fed by
the same captures through fake `iw`/`batctl`/`wg` (busybox scripts that `cat` a file) and
the same fake /proc root (tests/agent/router.py): CPU time per report of the whole
process tree (the agent, the tools it runs, the mosquitto clients) and its memory, PSS
(shared pages divided among the processes sharing them) and RSS, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "agents")]

from tests import servers  # noqa: E402
from tests.agent.mqtt_helpers import Recorder  # noqa: E402
from tests.agent.router import BUSYBOX, SH_AGENT, chromiumos_libremesh  # noqa: E402

SH_FLASH_LIMIT = 30_000
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _size(paths: list[Path]) -> tuple[int, int]:
    """Bytes of the files, and of their concatenation compressed with xz -9."""
    data = b"".join(p.read_bytes() for p in paths)
    return len(data), len(lzma.compress(data, preset=9))


def flash() -> dict[str, tuple[int, int]]:
    """Installed files of each agent: (bytes, xz bytes)."""
    import compileall

    import paho

    py = sorted((ROOT / "agents" / "meshmon_agent").rglob("*.py"))
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "meshmon_agent"
        shutil.copytree(ROOT / "agents" / "meshmon_agent", build,
                        ignore=shutil.ignore_patterns("__pycache__"))
        compileall.compile_dir(build, quiet=1, legacy=True, optimize=2)
        pyc = sorted(build.rglob("*.pyc"))
        out = {"sh agent (meshmon-agent)": _size([SH_AGENT]),
               "Python agent .py": _size(py), "Python agent .pyc only": _size(pyc)}
    paho_files = sorted(p for p in Path(paho.__path__[0]).rglob("*.py"))
    out["paho-mqtt .py"] = _size(paho_files)
    return out


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _cpu_s(pid: int, with_children: bool) -> float:
    """utime + stime (+ of reaped children) of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def _memory_kb(pids: list[int]) -> tuple[int, int]:
    """(PSS, RSS) of the processes, in kB."""
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss, rss


IFACE = "mesh-5000mhz"
TOOL_CALLS = (("iw", "dev"), ("iw", "dev", IFACE, "station", "dump"), ("iw", "dev", IFACE, "info"),
              ("iw", "dev", IFACE, "survey", "dump"), ("batctl", "nj"), ("batctl", "oj"),
              ("wg", "show", "all", "dump"))
"""what both agents run for one report of these captures"""


def tools_ms(work: Path, rounds: int = 20) -> float:
    """CPU of one round of the fake tools alone (busybox sh + cat each), in ms."""
    import resource

    router = chromiumos_libremesh(work / "tools")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(rounds):
        for argv in TOOL_CALLS:
            subprocess.run([str(router.bin / argv[0]), *argv[1:]], env=router.env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return 1000 * used / rounds


def run(kind: str, reports: int, interval: float, work: Path) -> dict[str, float]:
    """One agent for `reports` reports: CPU per report, memory (median and peak)."""
    router = chromiumos_libremesh(work / kind)
    broker = servers.start_mosquitto()
    node = f"bench-{kind}"
    config = router.config(
        f'node = "{node}"\ninterval_s = {interval}\n[mqtt]\nport = {broker.port}\n')
    rec = Recorder(broker.port, f"meshmon/v1/node/{node}/report")
    env = router.env()
    if kind == "sh":
        argv = [BUSYBOX, "sh", str(SH_AGENT), "-c", str(config)]
    else:
        argv = [sys.executable, "-m", "meshmon_agent.main", "-c", str(config)]
        env["PYTHONPATH"] = str(ROOT / "agents")
    log = open(work / f"{kind}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    samples: list[tuple[int, int]] = []
    try:
        rec.wait_for(lambda m: True, timeout=30, what="first report")
        start_cpu = sum(_cpu_s(p, p == proc.pid) for p in _tree(proc.pid))
        start = len(rec.messages)
        while len(rec.messages) < start + reports:
            samples.append(_memory_kb(_tree(proc.pid)))
            time.sleep(0.05)
        cpu = sum(_cpu_s(p, p == proc.pid) for p in _tree(proc.pid)) - start_cpu
        sent = len(rec.messages) - start
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        rec.close()
        broker.stop()
    pss = sorted(s[0] for s in samples)
    rss = sorted(s[1] for s in samples)
    return {"cpu_ms": 1000 * cpu / sent, "pss_kb": pss[len(pss) // 2], "pss_peak_kb": pss[-1],
            "rss_kb": rss[len(rss) // 2], "rss_peak_kb": rss[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()

    print("flash (installed files)              bytes   xz -9")
    sizes = flash()
    for name, (raw, xz) in sizes.items():
        print(f"  {name:<32} {raw:>7,} {xz:>7,}")
    sh_bytes = sizes["sh agent (meshmon-agent)"][0]
    verdict = "ok" if sh_bytes < SH_FLASH_LIMIT else f"missed by {sh_bytes - SH_FLASH_LIMIT} B"
    print(f"  sh agent {sh_bytes:,} B, limit < {SH_FLASH_LIMIT:,} B: {verdict}")

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        for kind in ("sh", "python"):
            results[kind] = run(kind, args.reports, args.interval, Path(tmp))
        tools = tools_ms(Path(tmp))
    print(f"\nper report ({args.reports} reports, every {args.interval} s, same captures)")
    print("  agent    CPU ms/report (without the fake tools)   PSS kB (peak)    RSS kB (peak)")
    for kind, r in results.items():
        print(f"  {kind:<8} {r['cpu_ms']:>13.1f} ({r['cpu_ms'] - tools:>5.1f})"
              f"                    {r['pss_kb']:>6,} ({r['pss_peak_kb']:,})"
              f"   {r['rss_kb']:>6,} ({r['rss_peak_kb']:,})")
    print(f"  the {len(TOOL_CALLS)} fake tool calls of one report alone: {tools:.1f} ms")
    sh, py = results["sh"], results["python"]
    print(f"\nRESULT sh_bytes={sh_bytes} sh_cpu_ms={sh['cpu_ms']:.1f} py_cpu_ms={py['cpu_ms']:.1f} "
          f"tools_ms={tools:.1f} sh_pss_kb={sh['pss_kb']} py_pss_kb={py['pss_kb']} "
          f"sh_rss_kb={sh['rss_kb']} py_rss_kb={py['rss_kb']}")


if __name__ == "__main__":
    main()
