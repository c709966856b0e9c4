"""System parsers: /proc text formats (inline samples) and this machine's own /proc."""

from __future__ import annotations

import os
from pathlib import Path

from meshmon_agent.collectors import system

NET_DEV = "\n".join(
    [
        "Inter-|   Receive                                                |  Transmit",
        " face |bytes    packets errs drop fifo frame compressed multicast"
        "|bytes    packets errs drop fifo colls carrier compressed",
        "    lo:    9683     125    0    0    0     0          0         0"
        "     9683     125    0    0    0     0       0          0",
        "br-lan:12345678  54321    3    0    0     0          0        17"
        " 87654321   43210    1    0    0     0       0          0",
    ]
)


def test_uptime_load_meminfo() -> None:
    assert system.parse_uptime("350735.47 234388.90\n") == {"uptime_s": 350735.47}
    assert system.parse_loadavg("0.24 0.32 0.28 1/120 3346\n") == {"load": [0.24, 0.32, 0.28]}
    meminfo = "MemTotal:  124620 kB\nMemFree:   60000 kB\nMemAvailable:   71044 kB\n"
    assert system.parse_meminfo(meminfo) == {"mem_total_kb": 124620, "mem_avail_kb": 71044}
    old_kernel = "MemTotal: 29 kB\nMemFree: 10 kB\nBuffers: 2 kB\nCached: 3 kB\n"
    assert system.parse_meminfo(old_kernel)["mem_avail_kb"] == 15
    assert system.parse_uptime("") == {}
    assert system.parse_meminfo("") == {}


def test_net_dev() -> None:
    ifaces = system.parse_net_dev(NET_DEV, {"br-lan": True})
    assert ifaces[1] == {
        "name": "br-lan",
        "up": True,
        "rx_bytes": 12345678,
        "tx_bytes": 87654321,
        "rx_packets": 54321,
        "tx_packets": 43210,
        "rx_errors": 3,
        "tx_errors": 1,
    }
    assert "up" not in ifaces[0]


def test_this_machines_proc() -> None:
    assert system.parse_uptime(Path("/proc/uptime").read_text())["uptime_s"] > 0
    assert len(system.parse_loadavg(Path("/proc/loadavg").read_text())["load"]) == 3
    mem = system.parse_meminfo(Path("/proc/meminfo").read_text())
    assert mem["mem_total_kb"] >= mem["mem_avail_kb"] > 0
    assert any(i["name"] == "lo" for i in system.parse_net_dev(Path("/proc/net/dev").read_text()))
    assert 0 <= system.rootfs_used_pct(os.statvfs("/"))["rootfs_used_pct"] <= 100
