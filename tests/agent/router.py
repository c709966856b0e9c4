"""A fake router for the agents: captured tool outputs on PATH, a fake root, both agents.

`Router` builds a directory that looks like a small OpenWrt box to the sh agent: a `bin/`
with only busybox applets, the real mosquitto clients and fake `iw`/`batctl`/`wg` that print
captured outputs (a missing capture behaves like a failing tool), and a `root/` with
`proc/` (copied from this machine: real files), `proc/net/arp` and `sys/class/net/*`.
The sh agent runs under `busybox sh` with PATH set to that `bin/` only, so no bashism and
no GNU tool passes; the Python agent runs the same fake tools through its real runner.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshmon_agent.agent import Agent
from meshmon_agent.collect import Collector
from meshmon_agent.config import from_dict
from meshmon_agent.runner import SubprocessRunner, canned_name

ROOT = Path(__file__).resolve().parents[2]
SH_AGENT = ROOT / "agents" / "sh" / "meshmon-agent"
DATA = ROOT / "tests" / "data"
BUSYBOX = "/bin/busybox"
FAKE_TOOL = """#!/bin/busybox sh
# prints the capture named after the command line, like the Python agent's canned runner
f="$FAKE_DIR/$(basename "$0")"
for a; do f="${f}_$a"; done
[ -r "$f.txt" ] || exit 1
cat "$f.txt"
"""
LIVE_PROC = ("uptime", "loadavg", "meminfo", "net/dev")


@dataclass
class Router:
    """One fake router under `base`; `captures` maps a command line to a capture file."""

    base: Path
    captures: dict[tuple[str, ...], Path | str] = field(default_factory=dict)
    ifaces: dict[str, tuple[str, str]] = field(default_factory=dict)
    """interface name → (MAC, operstate) under sys/class/net"""
    arp: str = ""
    """rows of /proc/net/arp (`IP 0x1 0x2 MAC * DEV`)"""

    def __post_init__(self) -> None:
        self.bin = self.base / "bin"
        self.root = self.base / "root"
        self.fake = self.base / "captures"
        self.run_dir = self.base / "run"
        for d in (self.bin, self.fake, self.root / "proc" / "net", self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
        for applet in applets.stdout.split():
            (self.bin / applet).symlink_to(BUSYBOX)
        for client in ("mosquitto_pub", "mosquitto_sub"):
            (self.bin / client).symlink_to(shutil.which(client) or f"/usr/bin/{client}")
        tool = self.base / "fake-tool"
        tool.write_text(FAKE_TOOL)
        tool.chmod(0o755)
        for name in ("iw", "batctl", "wg"):
            (self.bin / name).symlink_to(tool)
        for name in LIVE_PROC:
            shutil.copy(f"/proc/{name}", self.root / "proc" / name)
        self.write()

    def write(self) -> None:
        """(Re)write captures, interfaces and the ARP table into the fake router."""
        for old in self.fake.iterdir():
            old.unlink()
        for argv, source in self.captures.items():
            text = source.read_text() if isinstance(source, Path) else source
            (self.fake / canned_name(argv)).write_text(text)
        header = "IP address       HW type     Flags       HW address            Mask     Device\n"
        (self.root / "proc" / "net" / "arp").write_text(header + self.arp)
        net = self.root / "sys" / "class" / "net"
        shutil.rmtree(net, ignore_errors=True)
        for name, (mac, state) in self.ifaces.items():
            (net / name).mkdir(parents=True)
            (net / name / "address").write_text(mac + "\n")
            (net / name / "operstate").write_text(state + "\n")

    def env(self) -> dict[str, str]:
        """Environment of a process on this router."""
        return {
            "PATH": str(self.bin),
            "FAKE_DIR": str(self.fake),
            "MESHMON_AGENT_ROOT": str(self.root),
            "MESHMON_AGENT_RUN_DIR": str(self.run_dir),
            "HOME": str(self.base),
        }

    def config(self, text: str, name: str = "agent.toml") -> Path:
        path = self.base / name
        path.write_text(text)
        return path

    def sh(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run the sh agent under busybox to completion."""
        return subprocess.run(
            [BUSYBOX, "sh", str(SH_AGENT), *args], env=self.env(), capture_output=True,
            text=True, timeout=timeout, check=False,
        )

    def sh_report(self, config: str) -> dict[str, Any]:
        """One report from `meshmon-agent --once --print` of the sh agent."""
        done = self.sh("-c", str(self.config(config)), "--once", "--print")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def py_report(self, config: str, monkeypatch: Any) -> dict[str, Any]:
        """One report of the Python agent (in-process, running the same fake tools)."""
        import tomllib

        for key, value in self.env().items():
            monkeypatch.setenv(key, value)
        cfg = from_dict(tomllib.loads(config))
        collector = Collector(cfg.collect, SubprocessRunner(cfg.collect.command_timeout_s),
                              root=self.root)
        return Agent(cfg, collector, _NoSink()).build_report(cfg.interval_s)

    def spawn(self, config: Path, log: Path) -> subprocess.Popen[bytes]:
        """The sh agent as a long-running process (stderr and stdout to `log`)."""
        out = open(log, "wb")  # noqa: SIM115 - lives with the process
        return subprocess.Popen([BUSYBOX, "sh", str(SH_AGENT), "-c", str(config)],
                                env=self.env(), stdout=out, stderr=subprocess.STDOUT)


class _NoSink:
    def publish_info(self, info: dict[str, Any]) -> None:
        """Unused: reports are built directly."""

    def publish_report(self, report: dict[str, Any]) -> None:
        """Unused: reports are built directly."""


def chromiumos_libremesh(base: Path) -> Router:
    """The chromiumos mesh station dump + info, LibreMesh's batctl nj/oj and netdiff's wg dump."""
    return Router(
        base,
        captures={
            ("iw", "dev"): "phy#0\n\tInterface mesh-5000mhz\n\t\ttype mesh point\n",
            ("iw", "dev", "mesh-5000mhz", "station", "dump"):
                DATA / "iw" / "station-dump-3-mesh-peers-vht80.txt",
            ("iw", "dev", "mesh-5000mhz", "info"): DATA / "iw" / "info-mesh-point-ch149-80mhz.txt",
            ("batctl", "nj"): DATA / "batman" / "nj-librerouter-2-radios.json",
            ("batctl", "oj"): DATA / "batman" / "oj-librerouter-2-radios.json",
            ("wg", "show", "all", "dump"): DATA / "routing" / "netdiff" / "wg-dump.txt",
        },
        ifaces={"mesh-5000mhz": ("02:58:47:00:11:22", "up"), "eth0": ("02:58:47:00:11:23", "up"),
                "lo": ("00:00:00:00:00:00", "unknown")},
    )


