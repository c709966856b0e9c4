"""Builds the `sys`, `ifaces`, `radios`, `clients` and `links` of a report from the collectors."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshmon_agent.collectors import (
    babel,
    batman,
    fetch,
    iw_radio,
    iw_station,
    neighbours,
    olsr,
    ranges,
    system,
    wireguard,
)
from meshmon_agent.config import CollectSettings
from meshmon_agent.runner import Runner

log = logging.getLogger(__name__)

MAX_LINKS = 512


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


class Collector:
    """Reads /proc, sysfs and the tools (through an injectable runner) into report fields."""

    def __init__(self, settings: CollectSettings, runner: Runner, root: str | Path = "/") -> None:
        self.settings = settings
        self.run = runner
        self.root = Path(root)
        self._skipped: set[str] = set()

    def _skip_once(self, what: str, why: str) -> None:
        if what not in self._skipped:
            self._skipped.add(what)
            log.info("%s skipped: %s", what, why)

    def sys(self) -> dict[str, Any]:
        """The `sys` object: uptime, load, memory, rootfs usage."""
        out: dict[str, Any] = {}
        proc = self.root / "proc"
        for name, parse in (
            ("uptime", system.parse_uptime),
            ("loadavg", system.parse_loadavg),
            ("meminfo", system.parse_meminfo),
        ):
            text = _read(proc / name)
            if text is not None:
                out.update(parse(text))
        with contextlib.suppress(OSError):
            out.update(system.rootfs_used_pct(os.statvfs(self.root)))
        return ranges.in_range(out, ranges.SYS)

    def ifaces(self) -> list[dict[str, Any]]:
        """Interface counters from /proc/net/dev with up/down from sysfs operstate."""
        text = _read(self.root / "proc/net/dev")
        if text is None:
            return []
        up: dict[str, bool] = {}
        net = self.root / "sys/class/net"
        for entry in system.parse_net_dev(text):
            state = _read(net / entry["name"] / "operstate")
            if state is not None and state.strip() != "unknown":
                up[entry["name"]] = state.strip() == "up"
        return system.parse_net_dev(text, up)[:128]

    def wifi_interfaces(self) -> list[str]:
        """Configured Wi-Fi interfaces, else those `iw dev` lists."""
        if self.settings.wifi_interfaces:
            return list(self.settings.wifi_interfaces)
        text = self.run(["iw", "dev"])
        if text is None:
            self._skip_once("wifi", "`iw dev` gave nothing (no iw or no wireless)")
            return []
        return [d["iface"] for d in iw_radio.parse_dev(text)]

    def wifi(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(radios, links) of every Wi-Fi interface."""
        radios: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        if not self.settings.wifi:
            return radios, links
        for iface in self.wifi_interfaces():
            info_text = self.run(["iw", "dev", iface, "info"])
            dump = self.run(["iw", "dev", iface, "station", "dump"])
            stations = iw_station.station_links(dump) if dump else []
            links.extend(stations)
            if info_text is None:
                continue
            survey = None
            if self.settings.survey:
                survey = self.run(["iw", "dev", iface, "survey", "dump"])
            radio = iw_radio.radio(info_text, survey)
            radio.setdefault("iface", iface)
            if iw_radio.parse_info(info_text).get("mode") == "AP":
                radio["clients"] = len(stations)
            radios.append(radio)
        return radios, links

    def batman(self) -> list[dict[str, Any]]:
        """batman-adv neighbour links: JSON (`nj`/`oj`) when batctl has it, else text `n`/`o`."""
        if not self.settings.batman:
            return []
        mesh = ["meshif", self.settings.batman_mesh_if] if self.settings.batman_mesh_if else []
        nj = self.run(["batctl", *mesh, "nj"])
        if nj is not None and nj.lstrip().startswith("["):
            return batman.parse_json(nj, self.run(["batctl", *mesh, "oj"]))
        text, originators = self.run(["batctl", *mesh, "n"]), self.run(["batctl", *mesh, "o"])
        if text is None and originators is None:
            self._skip_once("batman", "batctl gave nothing (no batctl or no batman-adv)")
            return []
        return batman.parse_text(text or "", originators)

    def wireguard(self) -> list[dict[str, Any]]:
        """WireGuard peers with a handshake, as `vpn` links (`wg show all dump`)."""
        if not self.settings.wireguard:
            return []
        text = self.run(["wg", "show", "all", "dump"])
        if text is None:
            self._skip_once("wireguard", "`wg show all dump` gave nothing (no wg or no rights)")
            return []
        return wireguard.parse_dump(text, self.settings.peer_names)

    def _arp(self) -> dict[str, tuple[str, str]]:
        return neighbours.parse_arp(_read(self.root / "proc/net/arp") or "")

    def _named(self, kind: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Routing neighbours as links; those with neither a name nor a MAC are left out."""
        links: list[dict[str, Any]] = []
        arp = self._arp() if found else {}
        for entry in found:
            who = neighbours.identify(
                entry["address"], entry.get("iface"), self.settings.peer_names, arp
            )
            if who is None:
                self._skip_once(f"{kind} {entry['address']}", "no MAC known: name it in "
                                "collect.peer_names")
                continue
            metrics = {k: v for k, v in entry.items() if k not in ("address", "iface")}
            links.append({**who, "kind": kind, **metrics})
        return links

    def _daemon(
        self,
        kind: str,
        where: str,
        read: Callable[[str, float], str],
        parse: Callable[[str], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """Links from a routing daemon's local interface at `where` (empty: not configured)."""
        if not where:
            return []
        try:
            text = read(where, self.settings.command_timeout_s)
        except OSError as exc:
            self._skip_once(kind, f"{where}: {exc}")
            return []
        return self._named(kind, parse(text))

    def olsr(self) -> list[dict[str, Any]]:
        """This node's OLSR links from olsrd's jsoninfo, txtinfo or netjsoninfo URL."""
        return self._daemon("olsr", self.settings.olsr_url, fetch.http_get, olsr.parse)

    def babel(self) -> list[dict[str, Any]]:
        """Babel neighbours from babeld's local interface (`dump`)."""
        return self._daemon("babel", self.settings.babel_socket, fetch.babel_dump,
                            babel.parse_dump)

    def report_fields(self) -> dict[str, Any]:
        """Everything of a report except the envelope (v, node, ts, seq, interval_s)."""
        radios, links = self.wifi()
        links.extend(self.batman())
        links.extend(self.olsr())
        links.extend(self.babel())
        links.extend(self.wireguard())
        radios = [ranges.in_range(r, ranges.RADIO) for r in radios]
        links = [ranges.in_range(link, ranges.LINK) for link in links]
        fields: dict[str, Any] = {"sys": self.sys(), "ifaces": self.ifaces(), "radios": radios[:32]}
        clients = [r["clients"] for r in radios if "clients" in r]
        if clients:
            fields["clients"] = sum(clients)
        if len(links) > MAX_LINKS:
            log.warning("%d links, only the first %d are reported", len(links), MAX_LINKS)
        fields["links"] = links[:MAX_LINKS]
        return fields

    def macs(self) -> list[str]:
        """MAC addresses of all interfaces (for `info.macs`), without duplicates or zeros."""
        found: list[str] = []
        net = self.root / "sys/class/net"
        try:
            names = sorted(p.name for p in net.iterdir())
        except OSError:
            return found
        for name in names:
            mac = (_read(net / name / "address") or "").strip().lower()
            if neighbours.is_mac(mac) and mac != "00:00:00:00:00:00" and mac not in found:
                found.append(mac)
        return found[:128]
