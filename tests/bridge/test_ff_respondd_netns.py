"""respondd multicast for real: `meshmon-bridge --once --print` in one network namespace
asks by IPv6 multicast over a veth pair; a respondd responder in the other namespace has
joined Gluon's groups and answers with the captured Gluon answer. The test creates the
namespaces and the veth pair and removes them, also when it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.bridge.ff_helpers import DATA
from tests.bridge.helpers import decode

ROOT = Path(__file__).parents[2]


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


@dataclass
class Link:
    ns_a: str
    ns_b: str
    dev_a: str
    dev_b: str

    def link_local(self, ns: str, dev: str) -> str:
        """The (DAD-free) link-local address of `dev` in `ns`, once it is there."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = json.loads(ip("-n", ns, "-j", "-6", "addr", "show", "dev", dev))
            for addr in out[0].get("addr_info", []) if out else []:
                if addr.get("scope") == "link" and not addr.get("tentative"):
                    return str(addr["local"])
            time.sleep(0.05)
        raise AssertionError(f"{dev} in {ns} got no link-local address")


@contextmanager
def veth_between_namespaces() -> Iterator[Link]:
    """Two namespaces `ffa…`/`ffb…` joined by veth `ffva…`/`ffvb…`; removed afterwards."""
    tag = str(os.getpid() % 100_000)
    link = Link(f"ffa{tag}", f"ffb{tag}", f"ffva{tag}", f"ffvb{tag}")
    try:
        for ns in (link.ns_a, link.ns_b):
            ip("netns", "add", ns)
        ip("link", "add", link.dev_a, "type", "veth", "peer", "name", link.dev_b)
        for ns, dev in ((link.ns_a, link.dev_a), (link.ns_b, link.dev_b)):
            ip("link", "set", dev, "netns", ns)
            for key in ("all", "default", dev):  # no duplicate address detection wait
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                f"net.ipv6.conf.{key}.accept_dad=0"], check=True)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", dev, "up")
        yield link
    finally:
        for ns in (link.ns_a, link.ns_b):  # removing a namespace removes its veth end
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def bridge_in(ns: str, config: Path) -> list[dict]:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "meshmon_bridge.main", "-c",
         str(config), "--once", "--print"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_multicast_over_a_veth_pair_then_link_local_unicast(tmp_path: Path) -> None:
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({
        "nodeinfo": json.loads((DATA / "respondd/nodeinfo.json").read_text()),
        "statistics": json.loads((DATA / "respondd/statistics.json").read_text())}))
    with veth_between_namespaces() as link:
        ll_b = link.link_local(link.ns_b, link.dev_b)
        ll_a = link.link_local(link.ns_a, link.dev_a)
        log = tmp_path / "responder.log"
        with open(log, "w") as out:
            responder = subprocess.Popen(
                ["ip", "netns", "exec", link.ns_b, sys.executable, "-m",
                 "tests.bridge.respondd_responder", "--port", "1001", "--iface", link.dev_b,
                 "--answer", str(answer), "--multicast-answers", "2"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while "ready" not in log.read_text():
                assert responder.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            config = tmp_path / "bridge.toml"
            config.write_text(f"""[bridge]
id = "ff-netns"
[[respondd]]
interfaces = ["{link.dev_a}"]
multicast_groups = ["ff02::2:1001", "ff05::2:1001"]
timeout_s = 1
unicast_retries = 0
id_key = "ff-test-key"
""")
            lines = bridge_in(link.ns_a, config)
            messages = [decode(line) for line in lines]
            topics = [line["topic"] for line in lines]
            assert "meshmon/v1/node/foo-bar/report" in topics
            report = next(m for m, t in zip(messages, topics, strict=True)
                          if t.endswith("/report"))
            assert report.clients == 35  # type: ignore[union-attr]
            requests = log.read_text()
            assert f"request to ff02::2:1001 from {ll_a}" in requests, requests
            assert "request to ff05::2:1001 from" in requests, requests

            # the responder answers no more multicast: its link-local address still works
            config.write_text(config.read_text().replace(
                "unicast_retries = 0", f'unicast_retries = 0\naddresses = ["{ll_b}%{link.dev_a}"]'))
            lines = bridge_in(link.ns_a, config)
            assert "meshmon/v1/node/foo-bar/report" in [line["topic"] for line in lines]
            assert f"request to unicast from {ll_a}" in log.read_text()
        finally:
            responder.terminate()
            responder.wait(5)
