"""The retained `info` message: who this node is, where, and which MACs are its own."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from meshmon_agent import __version__
from meshmon_agent.config import AgentConfig


def _first_line(path: Path) -> str | None:
    try:
        text = path.read_text(errors="replace").strip("\x00 \n")
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None


def _release_value(path: Path, key: str) -> str | None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip().strip("'\"") or None
    return None


def host_facts(root: str | Path = "/") -> dict[str, str]:
    """Model and firmware as OpenWrt (or any Linux) describes them; absent when unknown."""
    root = Path(root)
    facts: dict[str, str] = {}
    model = (
        _first_line(root / "tmp/sysinfo/model")
        or _first_line(root / "proc/device-tree/model")
        or _first_line(root / "sys/class/dmi/id/product_name")
    )
    if model:
        facts["model"] = model[:128]
    firmware = _release_value(root / "etc/openwrt_release", "DISTRIB_DESCRIPTION")
    firmware = firmware or _release_value(root / "etc/os-release", "PRETTY_NAME")
    if firmware:
        facts["firmware"] = firmware[:128]
    return facts


def build_info(cfg: AgentConfig, macs: list[str], facts: dict[str, str]) -> dict[str, Any]:
    """The info payload (without `ts`, so that equal infos compare equal)."""
    info: dict[str, Any] = {
        "v": 1,
        "node": cfg.node,
        "hostname": socket.gethostname()[:128],
        "agent": f"meshmon-agent/{__version__}",
        "macs": macs,
        "gateway": cfg.info.gateway,
        "public": cfg.info.public,
        "tags": cfg.info.tags[:32],
        "interval_s": cfg.interval_s,
    }
    model = cfg.info.model or facts.get("model")
    firmware = cfg.info.firmware or facts.get("firmware")
    if model:
        info["model"] = model
    if firmware:
        info["firmware"] = firmware
    if cfg.info.lat is not None and cfg.info.lon is not None:
        location: dict[str, float] = {"lat": cfg.info.lat, "lon": cfg.info.lon}
        if cfg.info.alt_m is not None:
            location["alt_m"] = cfg.info.alt_m
        info["location"] = location
    if cfg.info.owner_contact:
        info["owner"] = {"contact": cfg.info.owner_contact}
        if cfg.info.owner_notify:
            info["owner"]["notify"] = True
    return info
