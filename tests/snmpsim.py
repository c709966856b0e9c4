"""snmpsim (`snmpsim-command-responder`) on a free loopback UDP port, serving recordings.

`DIR/COMMUNITY.snmprec` answers SNMP community COMMUNITY (v2c); `v3_users` adds SNMPv3
users. The handle's `stop()` ends the process by PID. Used by tests/bridge and bench/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.servers import Server

RESPONDER = Path(sys.executable).with_name("snmpsim-command-responder")


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _answers(port: int, community: str) -> bool:
    from pysnmp.hlapi.v3arch import asyncio as hlapi

    engine = hlapi.SnmpEngine()
    try:
        target = await hlapi.UdpTransportTarget.create(("127.0.0.1", port), timeout=0.3,
                                                       retries=0)
        err, status, _, _ = await hlapi.get_cmd(
            engine, hlapi.CommunityData(community), target, hlapi.ContextData(),
            hlapi.ObjectType(hlapi.ObjectIdentity("1.3.6.1.2.1.1.1.0")), lookupMib=False)
        return not err and not status
    finally:
        engine.close_dispatcher()


def start_snmpsim(data_dir: Path, probe_community: str, port: int | None = None,
                  v3_args: list[str] | None = None, timeout: float = 60) -> Server:
    """snmpsim serving every recording in `data_dir`; waits until `probe_community` answers."""
    server = launch_snmpsim(data_dir, port, v3_args)
    wait_until_answering(server, probe_community, timeout)
    return server


def launch_snmpsim(data_dir: Path, port: int | None = None,
                   v3_args: list[str] | None = None) -> Server:
    """snmpsim serving every recording in `data_dir`, still indexing them (see
    `wait_until_answering`): several start side by side. `v3_args`: more options."""
    port = port or free_udp_port()
    workdir = Path(tempfile.mkdtemp(prefix="snmpsim-"))
    argv = [str(RESPONDER), f"--data-dir={data_dir}", f"--cache-dir={workdir / 'cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}", *(v3_args or [])]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    return Server("snmpsim", port, proc, workdir)


def wait_until_answering(server: Server, probe_community: str, timeout: float = 60) -> None:
    """Wait until `probe_community` answers; stop the server and raise if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            text = server.log()
            server.stop()
            raise RuntimeError(
                f"snmpsim exited with {server.proc.returncode}: {text[-2000:]}")
        if asyncio.run(_answers(server.port, probe_community)):
            return
        time.sleep(0.1)
    server.stop()
    raise TimeoutError(f"snmpsim on {server.port} did not answer within {timeout}s")


def recordings(source: Path, target: Path, names: dict[str, str]) -> Path:
    """Lay out `target` so community NEW answers with `source/OLD.snmprec` (copies: snmpsim
    names a symlinked recording after the file it points to)."""
    target.mkdir(parents=True, exist_ok=True)
    for new, old in names.items():
        shutil.copyfile(source / f"{old}.snmprec", target / f"{new}.snmprec")
    return target


def remove(path: Path) -> None:
    """Remove a data directory made by `recordings`."""
    shutil.rmtree(path, ignore_errors=True)
