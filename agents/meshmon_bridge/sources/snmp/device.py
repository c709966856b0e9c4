"""One SNMP device as a bridge source: discovery, polling, missed polls → offline.

Discovery (first poll, and again after a reboot): one GETNEXT reads sysDescr and
sysObjectID and probes every profile's anchors; the profiles whose sysObjectID/sysDescr
fits and whose anchors (if any) have objects are the device's. Every poll is one walk
(`SnmpClient.walk`): every profile's scalars ride as non-repeaters of the GETBULKs that
walk every profile's columns, usually one request per device. Every STATIC_EVERY polls the
walk also covers the subtrees that rarely change (interface names and MACs, product
names); in between, scalars and columns the device did not have then are not asked for
(each varbind costs the device, and the bridge, a lookup and its encoding).
A poll that gets no answer counts as missed; after `offline_after` missed polls in a row
the device is published `online: false`, and `online: true` again when it answers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from meshmon_bridge.ratelog import RateLimitedLog
from meshmon_bridge.source import NodeUpdate, SourceError
from meshmon_bridge.sources.snmp.client import Oid, SnmpClient, SnmpError, SnmpTimeout
from meshmon_bridge.sources.snmp.config import SnmpTable
from meshmon_bridge.sources.snmp.counters import CounterWidener
from meshmon_bridge.sources.snmp.limits import drop_out_of_range
from meshmon_bridge.sources.snmp.profiles import PROFILES
from meshmon_bridge.sources.snmp.profiles.base import DeviceView, Identity, Profile, Snapshot
from meshmon_bridge.sources.snmp.profiles.mib2 import (
    HR_SYSTEM_UPTIME,
    SYS_DESCR,
    SYS_OBJECT_ID,
    SYS_UPTIME,
    redundant_walks,
)

log = logging.getLogger(__name__)

STATIC_EVERY = 20
"""polls between re-reads of the rarely changing subtrees (names, MACs)"""


@dataclass
class SharedEngine:
    """What every SNMP device of one bridge shares: the engine and the concurrency bound."""

    max_concurrent: int
    engine: SnmpEngine = field(default_factory=SnmpEngine)
    users: int = 0
    unconfigured: list[SnmpDevice] = field(default_factory=list)
    """devices whose target the engine does not have yet"""
    _slots: asyncio.Semaphore | None = None
    _configuring: asyncio.Lock | None = None

    async def configure_all(self) -> None:
        """Give the engine the target of every device that has none yet, all at once.

        pysnmp rebuilds its community and target lookups on the first message after any
        change to them, at a cost that grows with the number of targets: configured one by
        one as their first polls came, 1,000 devices made every response of the first
        round pay for that."""
        if self._configuring is None:
            self._configuring = asyncio.Lock()
        async with self._configuring:  # the others wait until theirs is done too
            waiting, self.unconfigured = self.unconfigured, []
            for device in waiting:
                await device.configure()

    @property
    def slots(self) -> asyncio.Semaphore:
        """Polls allowed at once (made on first use, inside the running loop)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        return self._slots

    def release(self) -> None:
        """One device is done with the engine; the last one closes its socket."""
        self.users -= 1
        if self.users == 0:
            self.engine.close_dispatcher()


class SnmpDevice:
    """A `Source` for one `[[snmp]]` table."""

    kind = "snmp"
    poll_deadline_s = None
    """the runtime's deadline would count the wait for a slot: the device bounds its own
    read instead (`read_deadline_s`, after it got its slot)"""

    def __init__(self, table: SnmpTable, shared: SharedEngine) -> None:
        self.table = table
        self.name = f"snmp {table.host}:{table.port} ({table.node})"
        self.interval_s = table.interval_s
        self.read_deadline_s = max(3 * table.interval_s, 60.0)
        """one read (after the slot was free) may take this long; then it counts as missed"""
        self._shared = shared
        shared.users += 1
        shared.unconfigured.append(self)
        self._client: SnmpClient | None = None
        self._open_error: str | None = None
        self._profiles: list[Profile] | None = None
        self._identity: Identity | None = None
        self._static: dict[Oid, Any] = {}
        self._polls_since_static = 0
        self._full_due = True
        self._skip: set[Oid] = set()
        """scalars and subtrees the device lacked at the last full read"""
        self._last_uptime: float | None = None
        self._counters = CounterWidener()
        self.missed = 0
        self.out_of_range = 0
        """values left out because the contract would refuse them"""
        self._rate_log = RateLimitedLog(log)
        self._closed = False

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profiles discovery chose for this device (empty before the first answer)."""
        return tuple(p.name for p in self._profiles or ())

    @property
    def requests(self) -> int:
        """SNMP requests sent so far (for benchmarks)."""
        return self._client.requests if self._client else 0

    async def poll(self) -> list[NodeUpdate]:
        """Read the device once; see the module docstring."""
        async with self._shared.slots:
            try:
                view = await asyncio.wait_for(self._read(), self.read_deadline_s)
            except SnmpError as exc:
                return self._missed(exc)
            except TimeoutError:
                return self._missed(SnmpTimeout(
                    f"read took longer than {self.read_deadline_s:.0f} s"))
        if self.missed >= self.table.offline_after:
            log.info("%s: answers again", self.name)
        self.missed = 0
        return [self._update(view)]

    def _missed(self, exc: SnmpError) -> list[NodeUpdate]:
        self.missed += 1
        if isinstance(exc, SnmpTimeout):
            self._profiles = None  # it may come back as another firmware: discover again
        if self.missed < self.table.offline_after:
            raise SourceError(f"{self.table.host}:{self.table.port}: {exc} "
                              f"(missed {self.missed}/{self.table.offline_after})")
        if self.missed == self.table.offline_after:
            log.warning("%s: %s; %d polls missed: offline", self.name, exc, self.missed)
        return [NodeUpdate(self.table.node, online=False)]

    async def close(self) -> None:
        """Give the shared engine back."""
        if not self._closed:
            self._closed = True
            if self in self._shared.unconfigured:
                self._shared.unconfigured.remove(self)
            self._shared.release()

    # -- reading ------------------------------------------------------------------------

    async def configure(self) -> None:
        """Make this device's client (its target in the shared engine)."""
        try:
            self._client = await SnmpClient.open(self._shared.engine, self.table)
            self._open_error = None
        except (OSError, PySnmpError) as exc:  # the host name does not resolve
            self._open_error = f"cannot reach {self.table.host}: {exc}"

    async def _open(self) -> SnmpClient:
        if self._client is None and self._open_error is None:
            await self._shared.configure_all()  # this device's target among all others
        elif self._client is None:
            await self.configure()  # its name did not resolve last time: try again
        if self._client is None:
            raise SnmpError(self._open_error or f"{self.table.host}: not configured")
        return self._client

    async def _read(self) -> DeviceView:
        client = await self._open()
        if self._profiles is None:
            await self._discover(client)
        self._polls_since_static += 1
        values = await self._walk(client, self._full_due
                                  or self._polls_since_static >= STATIC_EVERY)
        if self._rebooted(values):  # read the rarely changing parts again
            await self._discover(client)
            values = await self._walk(client, True)
        assert self._profiles is not None
        snap = Snapshot({**self._static, **values})
        view = DeviceView()
        for profile in self._profiles:
            profile.read(snap, view)
        return view

    async def _walk(self, client: SnmpClient, full: bool) -> dict[Oid, Any]:
        """Every profile's scalars and subtrees in one walk (the static ones too if `full`,
        which also decides what the next polls may skip)."""
        gets = self._wanted("gets", full) + (self._wanted("static_gets", full) if full else [])
        walks = self._wanted("walks", full)
        statics = self._wanted("static_walks", full) if full else []
        values = await client.walk(walks + statics, gets)
        if full:
            static_gets = set(self._wanted("static_gets", full))
            self._static = {k: v for k, v in values.items()
                            if k in static_gets or _under(k, statics)}
            answered = {root for root in walks + statics if client.memory.count(root)}
            # sysUpTime is always asked: a poll must reach the device even when it lacks
            # everything else (it would be `online` without being asked)
            self._skip = ({o for o in gets if o not in values and o != SYS_UPTIME}
                          | {r for r in walks + statics if r not in answered}
                          | redundant_walks(answered))
            self._polls_since_static = 0
            self._full_due = False
        return values

    def _wanted(self, attribute: str, full: bool) -> list[Oid]:
        """The OIDs of `attribute` (gets, static_gets, walks, static_walks) of every active
        profile, without those the device lacked at the last full read (unless this one is
        full)."""
        assert self._profiles is not None
        oids = [o for p in self._profiles for o in getattr(p, attribute)]
        return oids if full else [o for o in oids if o not in self._skip]

    async def _discover(self, client: SnmpClient) -> None:
        anchors = list(dict.fromkeys(a for p in PROFILES for a in p.anchors))
        system, present = await client.probe([SYS_DESCR, SYS_OBJECT_ID], anchors)
        object_id = system.get(SYS_OBJECT_ID)
        descr = system.get(SYS_DESCR)
        identity = Identity(object_id if isinstance(object_id, tuple) else (),
                            descr.decode("utf-8", "replace") if isinstance(descr, bytes) else "")
        candidates = [p for p in PROFILES if p.candidate(identity)]
        self._profiles = [p for p in candidates if not p.anchors or present & set(p.anchors)]
        self._identity = identity
        self._full_due = True
        log.debug("%s: profiles %s", self.name, [p.name for p in self._profiles])

    def _rebooted(self, values: dict[Oid, Any]) -> bool:
        """Whether the uptime went down since the last poll (then counters restart)."""
        raw = values.get(HR_SYSTEM_UPTIME, values.get(SYS_UPTIME))
        if not isinstance(raw, int):
            return False
        uptime, last = raw / 100, self._last_uptime
        self._last_uptime = uptime
        if last is None or uptime >= last:
            return False
        log.info("%s: rebooted (uptime %.0f s < %.0f s)", self.name, uptime, last)
        self._counters.reset()
        return True

    # -- publishing ---------------------------------------------------------------------

    def _update(self, view: DeviceView) -> NodeUpdate:
        table = self.table
        info: dict[str, Any] = {}
        descr = self._identity.descr if self._identity else ""
        if "firmware" not in view.info:
            kernel = linux_kernel(descr)
            if kernel:
                view.info["firmware"] = kernel  # for a plain Linux host
        for key in ("hostname", "model", "firmware"):
            if key in view.info:
                info[key] = view.info[key]
        if table.hostname:
            info["hostname"] = table.hostname
        info["macs"] = view.macs[:128]
        if table.location is not None:
            info["location"] = table.location.model_dump(exclude_none=True)
        info["gateway"] = table.gateway
        info["public"] = table.public
        if table.tags:
            info["tags"] = table.tags
        for iface in view.ifaces:
            for key in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors",
                        "tx_errors"):
                if key in iface:
                    bits = view.counter_bits.get((iface["name"], key), 64)
                    iface[key] = self._counters.widen((iface["name"], key), iface[key], bits)
        dropped = [f"{name}.{key}" for name, entries in (
            ("sys", [view.sys]), ("ifaces", view.ifaces), ("radios", view.radios.values()),
            ("links", view.links)) for entry in entries for key in drop_out_of_range(entry)]
        if dropped:
            self.out_of_range += len(dropped)
            self._rate_log.log(logging.WARNING, "range", "%s: values out of range left out: %s",
                               self.name, ", ".join(sorted(set(dropped))))
        report: dict[str, Any] = {
            "sys": view.sys,
            "ifaces": view.ifaces[:128],
            "radios": list(view.radios.values())[:32],
            "links": view.links[:512],
        }
        if view.clients is not None:
            report["clients"] = view.clients
        return NodeUpdate(table.node, info=info, online=True, report=report)


def linux_kernel(descr: str) -> str | None:
    """The kernel release in a Linux sysDescr (`uname -a` without or with the host name:
    `Linux 2.6.32.68 #1 …`, `Linux host 5.4.0 #1 SMP …`): the word before the build `#N`."""
    parts = descr.split()
    if not parts or parts[0] != "Linux":
        return None
    build = next((i for i, word in enumerate(parts) if word.startswith("#")), len(parts))
    release = parts[build - 1] if build >= 2 else None
    if release is None and len(parts) > 2:
        release = parts[2]
    return release if release and release[0].isdigit() else None


def _under(name: Oid, roots: list[Oid]) -> bool:
    return any(name[:len(r)] == r for r in roots)
