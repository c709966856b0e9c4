"""Start the real agent (`python -m meshmon_agent.main`) fed with captured command outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.agent.test_report_wire import make_canned_dir

CAPTURED_PEERS = {
    # the stations in tests/data/iw/station-dump-3-mesh-peers-vht80.txt and their signal
    "aa:bb:cc:00:11:22": -21,
    "dd:ee:ff:33:44:55": -4,
    "ff:aa:bb:aa:44:55": -29,
}


def start_agent(tmp_path: Path, port: int, node: str, interval_s: float,
                extra_info: str = "", username: str = "", password: str = "",
                tls_ca_file: str | Path = "") -> subprocess.Popen[bytes]:
    """An agent process reporting every `interval_s` to 127.0.0.1:`port` as `node`.

    `username`/`password` log in to the broker; `tls_ca_file` turns on TLS, trusting that CA
    (the broker's certificate must name 127.0.0.1).
    """
    canned = make_canned_dir(tmp_path / f"canned-{node}")
    cfg = tmp_path / f"agent-{node}.toml"
    mqtt = f"port = {port}\nreconnect_min_s = 1\nreconnect_max_s = 2\n"
    if username:
        mqtt += f"username = {json.dumps(username)}\npassword = {json.dumps(password)}\n"
    if tls_ca_file:
        mqtt += f"tls = true\ntls_ca_file = {json.dumps(str(tls_ca_file))}\n"
    cfg.write_text(
        f'node = "{node}"\ninterval_s = {interval_s}\n'
        f"[mqtt]\n{mqtt}"
        f'[collect]\nwifi_interfaces = ["mesh-5000mhz"]\ncanned_dir = "{canned}"\n'
        f'[info]\nlat = 41.38\nlon = 2.17\ntags = ["e2e"]\n{extra_info}'
    )
    log = open(tmp_path / f"agent-{node}.log", "wb")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        [sys.executable, "-m", "meshmon_agent.main", "-c", str(cfg)],
        stdout=log, stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
