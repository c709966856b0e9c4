"""CPU time and resident memory of a process and of the processes it started (the
collector's SQLite worker and multiprocessing's fork server), from /proc."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """The process's children, their children, … (those alive now)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU time of one process so far (s; 0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_s(pid: int) -> float:
    """CPU time so far of a process and of its descendants alive now (s)."""
    return sum(cpu_s(p) for p in (pid, *descendants(pid)))


def rss_mb(pid: int, field_name: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of one process, MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_rss_mb(pid: int, field_name: str = "VmHWM") -> float:
    """`rss_mb` of the process and of every process it started, summed (of peaks: an
    upper bound of the peak of the whole)."""
    return sum(rss_mb(p, field_name) for p in [pid, *descendants(pid)])


def pss_mb(pid: int) -> float:
    """Proportional set size of one process now, MB: its private pages plus its share of
    the pages it shares (with the fork server its worker was forked from)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_pss_mb(pid: int) -> float:
    """`pss_mb` of the process and of every process it started, summed: the memory they
    hold together now."""
    return sum(pss_mb(p) for p in [pid, *descendants(pid)])
