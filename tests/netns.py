"""Network namespaces joined by veth pairs, with real daemons (babeld) running in them.

A `Lab` makes namespaces named `PREFIX-NAME` (PREFIX carries the test process's PID, so
parallel test runs never share names), veth pairs between them created inside the target
namespaces (so IPv6 duplicate address detection is off before they exist and link-local
addresses work at once), and starts processes in them. `close()` stops the processes it
started (by PID) and deletes the namespaces, which deletes their veths; use it as a
context manager so that happens when a test fails too. It never touches the machine's
own interfaces. Needs root (tests run as root here and in CI).

    with Lab("rt") as lab:
        lab.add("a"); lab.add("b")
        lab.connect("a", "b")
        proc = start_babeld(lab, "a", socket_path=tmp / "a.sock")
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

IFNAMSIZ = 15


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class Lab:
    """Namespaces, veth pairs and processes made by one test; removed by close()."""

    prefix: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prefix = f"{self.prefix}{os.getpid() % 100000}"

    def ns(self, name: str) -> str:
        """The namespace name of lab node `name`."""
        return f"{self.prefix}-{name}"

    def add(self, name: str) -> str:
        """A new namespace with loopback up and IPv6 DAD off; its name."""
        ns = self.ns(name)
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        for conf in ("all", "default"):  # /proc/sys/net is the namespace's own
            self.run(name, "sh", "-c", f"echo 0 > /proc/sys/net/ipv6/conf/{conf}/accept_dad")
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def veth(self, a: str, b: str) -> str:
        """The name of the veth end in `a` that leads to `b`."""
        name = f"{self.prefix}{a}{b}"
        if len(name) > IFNAMSIZ:
            raise ValueError(f"interface name {name!r} longer than {IFNAMSIZ}: use shorter names")
        return name

    def connect(self, a: str, b: str) -> tuple[str, str]:
        """A veth pair between lab nodes `a` and `b`, both ends up; the two names."""
        end_a, end_b = self.veth(a, b), self.veth(b, a)
        _ip("link", "add", end_a, "netns", self.ns(a), "type", "veth",
            "peer", "name", end_b, "netns", self.ns(b))  # fmt: skip
        self.set_link(a, end_a, up=True)
        self.set_link(b, end_b, up=True)
        return end_a, end_b

    def set_link(self, name: str, iface: str, *, up: bool) -> None:
        """Take an interface of lab node `name` up or down."""
        _ip("-n", self.ns(name), "link", "set", iface, "up" if up else "down")

    def add_address(self, name: str, address: str, iface: str = "lo") -> None:
        """Add an address (with prefix length) to an interface of lab node `name`."""
        _ip("-n", self.ns(name), "addr", "add", address, "dev", iface)

    def run(self, name: str, *argv: str) -> subprocess.CompletedProcess[bytes]:
        """Run a command in lab node `name` and wait for it (it must succeed)."""
        return subprocess.run(["ip", "netns", "exec", self.ns(name), *argv],
                              check=True, capture_output=True, timeout=30)  # fmt: skip

    def spawn(
        self, name: str, argv: list[str], *, hostname: str | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in lab node `name` (in its own UTS namespace
        with `hostname` if given); close() stops it."""
        command = ["ip", "netns", "exec", self.ns(name)]
        if hostname is not None:
            command += ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname]
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(command + argv, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if log is not None:
                out.close()  # type: ignore[union-attr]
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        """Stop every process this lab started, then delete its namespaces."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_babeld(
    lab: Lab,
    name: str,
    interfaces: list[str],
    socket_path: Path,
    *,
    hostname: str | None = None,
    announce: str = "10.0.0.0/8",
    hello_s: float = 0.2,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """babeld in lab node `name` on `interfaces`, its read-only local interface at
    `socket_path` (a unix socket: reachable from outside the namespace), announcing the
    node's own addresses within `announce` (and nothing else); waits for the socket."""
    work = socket_path.parent
    argv = [
        "babeld", "-I", str(work / f"{name}.pid"), "-S", str(work / f"{name}.state"),
        "-g", str(socket_path), "-h", str(hello_s), "-H", str(hello_s),
        "-C", f"redistribute local ip {announce}", "-C", "redistribute local deny",
        *extra, *interfaces,
    ]  # fmt: skip
    proc = lab.spawn(name, argv, hostname=hostname, log=work / f"{name}.log")
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if proc.poll() is not None:
            log = (work / f"{name}.log").read_text(errors="replace")
            raise RuntimeError(f"babeld in {lab.ns(name)} exited with {proc.returncode}: {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"babeld in {lab.ns(name)} made no socket at {socket_path}")
        time.sleep(0.02)
    return proc
