"""Both agents read a real babeld (Debian's) running in network namespaces.

Node a has veths to b and c, and babeld runs in each. Both agents run inside a's namespace
as on a router (their own /proc and /sys: the namespace's interfaces) and ask a's babeld
on its local TCP port: the sh agent under busybox with `nc`, the Python agent with a
socket. Both name each neighbour by the MAC of its veth end (from the EUI-64 link-local
address babeld reports), with the same costs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from meshmon_agent.collectors import babel

from meshmon.model import wire
from tests.agent.router import BUSYBOX, ROOT, SH_AGENT, Router
from tests.netns import Lab, start_babeld

PORT = 33123
IP = shutil.which("ip") or "/usr/sbin/ip"


def _mac(lab: Lab, node: str, iface: str) -> str:
    return lab.run(node, "cat", f"/sys/class/net/{iface}/address").stdout.decode().strip()


def _in_a(lab: Lab, argv: list[str], env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    done = subprocess.run([IP, "netns", "exec", lab.ns("a"), *argv], env=env,
                          capture_output=True, text=True, timeout=30, check=True)
    report = json.loads(done.stdout)
    wire.decode("meshmon", "meshmon/v1/node/babel-a/report", json.dumps(report).encode())
    return report  # type: ignore[no-any-return]


def test_both_agents_read_a_real_babeld(tmp_path: Path) -> None:
    with Lab("sa") as lab:
        for node in ("a", "b", "c"):
            lab.add(node)
            lab.add_address(node, f"10.79.0.{ord(node) - 96}/32")
        ab, ba = lab.connect("a", "b")
        ac, ca = lab.connect("a", "c")
        lab.spawn("a", ["babeld", "-I", str(tmp_path / "a.pid"), "-S", "", "-g", str(PORT),
                        "-h", "0.2", "-H", "0.2", "-C", "redistribute local ip 10.79.0.0/16",
                        "-C", "redistribute local deny", ab, ac], log=tmp_path / "a.log")
        for node, iface in (("b", ba), ("c", ca)):
            start_babeld(lab, node, [iface], tmp_path / f"{node}.sock", announce="10.79.0.0/16")
        ask = f"printf 'dump\\nquit\\n' | {BUSYBOX} nc ::1 {PORT}"
        deadline = time.monotonic() + 15
        while True:
            done = subprocess.run([IP, "netns", "exec", lab.ns("a"), BUSYBOX, "sh", "-c", ask],
                                  capture_output=True, text=True, timeout=10, check=False)
            if len(babel.parse_dump(done.stdout)) == 2:
                break
            assert time.monotonic() < deadline, f"babeld in a has no two neighbours: {done}"
            time.sleep(0.1)
        time.sleep(1)  # reachability settles within a few hellos; costs stay put after

        router = Router(tmp_path / "router")
        config = str(router.config(
            f'node = "babel-a"\n[collect]\nbabel_socket = "[::1]:{PORT}"\n'))
        env = {k: v for k, v in router.env().items() if k != "MESHMON_AGENT_ROOT"}
        sh = _in_a(lab, [BUSYBOX, "sh", str(SH_AGENT), "-c", config, "--once", "--print"], env)
        py = _in_a(lab, [sys.executable, "-m", "meshmon_agent.main", "-c", config, "--once",
                         "--print"], {**env, "PYTHONPATH": str(ROOT / "agents"),
                                      "PATH": env["PATH"] + os.pathsep + "/nonexistent"})
        assert sh["links"] == py["links"]
        assert [i["name"] for i in sh["ifaces"]] == [i["name"] for i in py["ifaces"]]
        assert sorted((link["iface"], link["peer_mac"]) for link in sh["links"]) == sorted(
            [(ab, _mac(lab, "b", ba)), (ac, _mac(lab, "c", ca))])
        for link in sh["links"]:
            assert link["kind"] == "babel" and link["rxcost"] >= 96 and link["cost"] >= 96
