"""What profiles read (`Snapshot`) and what they fill in (`DeviceView`), plus value helpers.

A profile is one MIB family: which OIDs to GET and which subtrees to walk, how to tell from
sysObjectID/sysDescr whether a device may have it, and how its objects map onto the v1
contract (radios, links, info). Profiles never talk to the network themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from meshmon_bridge.sources.snmp.client import Oid, Value, oid

ENTERPRISES = oid("1.3.6.1.4.1")
NET_SNMP_LINUX = oid("1.3.6.1.4.1.8072.3.2.10")


@dataclass(frozen=True)
class Identity:
    """sysObjectID and sysDescr: what a profile may guess a device's family from."""

    object_id: Oid
    descr: str

    def under(self, *prefixes: Oid) -> bool:
        """sysObjectID lies under one of `prefixes`."""
        return any(self.object_id[:len(p)] == p for p in prefixes)


def columns(entry: Oid, *numbers: int) -> tuple[Oid, ...]:
    """The OIDs of some columns of a table (`entry` is its …Entry OID): a profile walks only
    the columns it reads, never the whole table."""
    return tuple((*entry, n) for n in numbers)


Row = dict[int, Value]
"""one table row: column number → value"""


@dataclass
class Snapshot:
    """Everything one poll read: GET results and walked subtrees, by OID."""

    values: dict[Oid, Value] = field(default_factory=dict)

    def get(self, at: Oid) -> Value | None:
        """One object's value, or None."""
        return self.values.get(at)

    def int(self, at: Oid) -> int | None:
        """An integer object, or None (absent or of another type)."""
        value = self.get(at)
        return value if isinstance(value, int) else None

    def text(self, at: Oid) -> str | None:
        """A DisplayString object as text, or None."""
        return text(self.get(at))

    def table(self, entry: Oid) -> dict[Oid, Row]:
        """Rows of a conceptual table: {index: {column: value}} under `entry` (…Entry OID),
        in index order (whatever order the walk found them in)."""
        rows: dict[Oid, Row] = {}
        depth = len(entry)
        for name, value in self.values.items():
            if name[:depth] == entry and len(name) > depth + 1:
                rows.setdefault(name[depth + 1:], {})[name[depth]] = value
        return dict(sorted(rows.items()))


@dataclass
class DeviceView:
    """What a poll found out about a device, in contract terms (filled by profiles)."""

    info: dict[str, Any] = field(default_factory=dict)
    sys: dict[str, Any] = field(default_factory=dict)
    radios: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    ifaces: list[dict[str, Any]] = field(default_factory=list)
    counter_bits: dict[tuple[str, str], int] = field(default_factory=dict)
    """(iface, counter) → 32 or 64: how wide the device's counter is (wrap handling)"""
    macs: list[str] = field(default_factory=list)
    clients: int | None = None
    ifnames: dict[int, str] = field(default_factory=dict)
    """ifIndex → interface name (IF-MIB), for tables indexed by ifIndex"""

    def iface(self, if_index: int, fallback: str | None = None) -> str:
        """The name of interface `if_index` (IF-MIB), else `fallback` or `if<N>`."""
        return self.ifnames.get(if_index) or fallback or f"if{if_index}"

    def radio(self, iface: str) -> dict[str, Any]:
        """The radio entry of `iface`, created on first use."""
        return self.radios.setdefault(iface, {"iface": iface})

    def link(self, peer_mac: str | None, iface: str, kind: str = "wifi"
             ) -> dict[str, Any] | None:
        """A new link to `peer_mac` on `iface`; None without a usable peer MAC."""
        if peer_mac is None:
            return None
        entry: dict[str, Any] = {"peer_mac": peer_mac, "iface": iface, "kind": kind}
        self.links.append(entry)
        return entry

    def add_mac(self, address: str | None) -> None:
        """Announce one more of the device's own MACs (peers resolve through them)."""
        if address and address not in self.macs:
            self.macs.append(address)

    def add_clients(self, count: int | None) -> None:
        """Add associated clients to the node's total."""
        if count is not None:
            self.clients = (self.clients or 0) + count

    def set_info(self, key: str, value: Any) -> None:
        """Set an info field unless the value is empty or an earlier profile set it."""
        if value not in (None, "") and key not in self.info:
            self.info[key] = value


class Profile(Protocol):
    """One MIB family (its OID lists are plain class attributes)."""

    @property
    def name(self) -> str:
        """For logs."""
        ...

    @property
    def anchors(self) -> tuple[Oid, ...]:
        """Probed once (GETNEXT): the family is there if any anchor has objects; () = no
        probe, the sysObjectID/sysDescr check decides alone."""
        ...

    @property
    def gets(self) -> tuple[Oid, ...]:
        """Scalars read every poll."""
        ...

    @property
    def walks(self) -> tuple[Oid, ...]:
        """Subtrees walked every poll."""
        ...

    @property
    def static_gets(self) -> tuple[Oid, ...]:
        """Scalars that change only with the firmware (model, version, MACs): read at
        discovery (which a reboot repeats) and every STATIC_EVERY polls."""
        ...

    @property
    def static_walks(self) -> tuple[Oid, ...]:
        """Subtrees that rarely change (names, MACs): walked at discovery and now and then."""
        ...

    def candidate(self, identity: Identity) -> bool:
        """Whether the device may have this family (decides whether to probe or read it)."""
        ...

    def read(self, snap: Snapshot, view: DeviceView) -> None:
        """Fill `view` from what the poll read."""
        ...


def put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` unless `value` is None: a metric the device lacks stays absent."""
    if value is not None:
        target[key] = value


def scaled(value: object, divisor: float = 1, ndigits: int = 3) -> float | int | None:
    """An integer object divided by `divisor` (ints stay ints when exact); None if absent."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if divisor == 1:
        return value
    result = round(value / divisor, ndigits)
    return int(result) if result == int(result) else result


def text(value: object) -> str | None:
    """An OCTET STRING as printable text (stripped, at most 128 characters); None if empty."""
    if not isinstance(value, bytes):
        return None
    decoded = value.decode("utf-8", errors="replace").strip().strip('"').strip()
    cleaned = "".join(ch for ch in decoded if ch.isprintable())
    return cleaned[:128] or None


_HEX_MAC = re.compile(r"^[0-9a-fA-F]{12}$")
_SEP_MAC = re.compile(r"^[0-9a-fA-F]{1,2}([:-][0-9a-fA-F]{1,2}){5}$")


def mac(value: object) -> str | None:
    """A MAC address from 6 raw octets or a printed form (`aa:bb:…`, `aabb…`); None if not
    a real unicast-capable address (all zero, broadcast, or malformed)."""
    if isinstance(value, tuple):
        ok = len(value) == 6 and all(isinstance(v, int) and 0 <= v < 256 for v in value)
        octets = bytes(value) if ok else b""
    elif isinstance(value, bytes) and len(value) == 6:
        octets = value
    elif isinstance(value, bytes):
        printed = value.decode("ascii", errors="replace").strip()
        if _HEX_MAC.match(printed):
            octets = bytes.fromhex(printed)
        elif _SEP_MAC.match(printed):
            octets = bytes(int(part, 16) for part in re.split("[:-]", printed))
        else:
            return None
    else:
        return None
    if len(octets) != 6 or octets in (b"\x00" * 6, b"\xff" * 6):
        return None
    return ":".join(f"{b:02x}" for b in octets)


def first(values: Iterable[Value | None]) -> Value | None:
    """The first value that is there."""
    return next((v for v in values if v is not None), None)


def channel_to_mhz(channel: int | None) -> int | None:
    """The centre frequency of an 802.11 channel number (2.4, 5 and 6 GHz bands)."""
    if channel is None or channel <= 0:
        return None
    if channel == 14:
        return 2484
    if channel < 14:
        return 2407 + 5 * channel
    if channel < 200:
        return 5000 + 5 * channel
    return None


def single_index(rows: dict[Oid, Row]) -> list[tuple[int, Row]]:
    """Rows indexed by one integer (an ifIndex or radio number), in order."""
    return [(i[0], r) for i, r in sorted(rows.items()) if len(i) == 1]


def positive(value: object) -> int | None:
    """An integer above 0 (devices report 0 for "not known"), else None."""
    return value if isinstance(value, int) and value > 0 else None


def every(values: list[Any]) -> list[Any] | None:
    """The list if every element is there (per-chain readings go together), else None."""
    return values if values and all(v is not None for v in values) else None
