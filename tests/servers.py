"""Real servers for tests: Mosquitto, InfluxDB 1.x and VictoriaMetrics on free loopback ports.

Each starter returns a handle whose `stop()` ends the process it started (by PID) and
removes its directory. Used by tests/conftest.py and by bench/.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP `port` (IPv4 or IPv6), from /proc/net."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            listening = len(fields) > 9 and fields[3] == "0A"
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def owns_port(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on TCP `port`.

    A free port can be taken by someone else between `free_port()` and the server's bind
    (another test, another suite on the machine): the server then exits, but a probe of the
    port would be answered by the other one. Only our own listener counts as ready."""
    inodes = listening_inodes(port)
    if not inodes:
        return False
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in fd_dir.iterdir():
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return True
    except OSError:
        return False
    return False


def wait_for_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something (with `proc`: that process itself) listens on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        if proc is not None:
            if owns_port(proc.pid, port):
                return
        else:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def wait_for_http(
    url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until `url` answers (below 500); with `proc`, only once that process listens on
    the URL's port (so another server that took the port does not count)."""
    deadline = time.monotonic() + timeout
    port = urllib.parse.urlsplit(url).port
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
            if port is not None and not owns_port(proc.pid, port):
                time.sleep(0.05)
                continue
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class Server:
    """A server process started by a test, stopped by PID."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path
    extra: dict[str, str] = field(default_factory=dict)
    held: list[socket.socket] = field(default_factory=list)
    """its ports, bound (not listening) while it is paused: see `pause`"""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        pause(self)
        for sock in self.held:
            sock.close()
        self.held = []
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


PORT_ATTEMPTS = 3
"""a server whose free port was taken before it could bind is started again on another"""


def _retry_on_taken_port(start: Callable[[], Server], fixed_port: bool) -> Server:
    for attempt in range(1 if fixed_port else PORT_ATTEMPTS):
        try:
            return start()
        except RuntimeError:  # it exited before listening: most likely the port was taken
            if fixed_port or attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _spawn(name: str, argv: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    logf = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=workdir)


def start_mosquitto(
    port: int | None = None, extra_conf: str = "", persistence: bool = False
) -> Server:
    """Mosquitto on 127.0.0.1 with anonymous access; `persistence` keeps sessions and
    queued messages across a restart (as production brokers do)."""
    return _retry_on_taken_port(
        lambda: _start_mosquitto(port or free_port(), extra_conf, persistence), port is not None)


def _start_mosquitto(port: int, extra_conf: str, persistence: bool) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
    conf = workdir / "mosquitto.conf"
    persist = (
        f"persistence true\npersistence_location {workdir}/\n" if persistence
        else "persistence false\n"
    )
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n{persist}"
        f"user root\nmax_queued_messages 1000000\n{extra_conf}\n"
    )
    proc = _spawn("mosquitto", ["mosquitto", "-c", str(conf)], workdir)
    server = Server("mosquitto", port, proc, workdir)
    try:
        wait_for_port(port, proc=proc)
    except Exception:
        server.stop()
        raise
    return server


def restart(server: Server) -> Server:
    """Stop a Mosquitto and start it again on the same port with the same config."""
    conf = server.workdir / "mosquitto.conf"
    pause(server)
    # the config is left alone: rewriting it here raced with the new process reading it
    # (a truncated file makes Mosquitto fall back to its default port)
    proc = _spawn(server.name, ["mosquitto", "-c", str(conf)], server.workdir)
    server.proc = proc
    wait_for_port(server.port, proc=proc)
    return server


def pause(server: Server, timeout: float = 30.0, hold_ports: bool = False) -> None:
    """Stop a server's process (SIGTERM; SIGKILL after `timeout`) but keep its directory,
    data and port (for `resume` or `restart`). `hold_ports`: bind its ports without
    listening until `resume`, so that a connection is refused as by a server that is down
    and no other test's server takes them meanwhile (on this busy machine one did)."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=5)
    if hold_ports:
        server.held = [_hold(port) for port in _ports_of(server)]


def _ports_of(server: Server) -> list[int]:
    """The TCP ports a server listens on: InfluxDB has its RPC port besides HTTP."""
    ports = [server.port]
    conf = server.workdir / "influxdb.conf"
    if server.name == "influxdb" and conf.exists():
        ports += [int(p) for p in re.findall(r'^bind-address = "127\.0\.0\.1:(\d+)"',
                                              conf.read_text(), re.MULTILINE)]
    return ports


def _hold(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def resume(server: Server) -> Server:
    """Start a paused InfluxDB again with its data, on the same port."""
    assert server.name == "influxdb", "resume knows influxd; Mosquitto has restart()"
    for sock in server.held:
        sock.close()
    server.held = []
    server.proc = _spawn(server.name, ["influxd", "-config", str(server.workdir / "influxdb.conf")],
                         server.workdir)
    wait_for_http(f"{server.url}/ping", proc=server.proc)
    return server


def start_influxdb1(port: int | None = None, auth: bool = False, data_conf: str = "") -> Server:
    """InfluxDB 1.6.7 (`influxd`), answering /write and InfluxQL /query (on `port` if given);
    `auth` turns on authentication (create the first admin user with a /query);
    `data_conf`: more lines of its `[data]` section (its defaults otherwise)."""
    return _retry_on_taken_port(lambda: _start_influxdb1(port or free_port(), auth, data_conf),
                                port is not None)


def _start_influxdb1(port: int, auth: bool, data_conf: str) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="influxdb-"))
    conf = workdir / "influxdb.conf"
    conf.write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
{data_conf}
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  auth-enabled = {"true" if auth else "false"}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = true
"""
    )
    proc = _spawn("influxd", ["influxd", "-config", str(conf)], workdir)
    server = Server("influxdb", port, proc, workdir)
    try:
        wait_for_http(f"{server.url}/ping", proc=proc)
    except Exception:
        server.stop()
        raise
    return server


def start_victoria_metrics() -> Server:
    """VictoriaMetrics, which accepts influxdb-client's v2 writes."""
    return _retry_on_taken_port(lambda: _start_victoria_metrics(free_port()), False)


def _start_victoria_metrics(port: int) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="victoria-"))
    argv = [
        "victoria-metrics",
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={workdir}/data",
        "-search.latencyOffset=0s",
    ]
    proc = _spawn("victoria-metrics", argv, workdir)
    server = Server("victoria-metrics", port, proc, workdir)
    try:
        wait_for_http(f"{server.url}/health", proc=proc)
    except Exception:
        server.stop()
        raise
    return server


def influx_query(server: Server, db: str, q: str) -> dict:  # type: ignore[type-arg]
    """Run InfluxQL against an InfluxDB 1.x server; return the decoded JSON."""
    import json

    url = f"{server.url}/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": "s"})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def start_nginx(http_block: str) -> Server:
    """nginx (Debian's) with `http_block` inside `http {}`, as root with everything it writes
    in its own directory; `extra["conf"]` is the nginx.conf it runs. The block names its own
    listen ports: `port` is 0."""
    workdir = Path(tempfile.mkdtemp(prefix="nginx-"))
    temp = "\n".join(f"  {kind}_temp_path {workdir}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"user root;\nworker_processes 1;\npid {workdir}/nginx.pid;\n"
        f"error_log {workdir}/server.log info;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  access_log off;\n{temp}\n{http_block}\n}}\n"
    )
    argv = ["nginx", "-e", str(workdir / "server.log"), "-p", str(workdir), "-c", str(conf)]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"nginx -t refused the config:\n{check.stderr}")
    proc = _spawn("nginx", [*argv, "-g", "daemon off;"], workdir)
    return Server("nginx", 0, proc, workdir, {"conf": str(conf)})
