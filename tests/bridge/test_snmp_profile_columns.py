"""Profiles read nothing they do not ask for, and ask for no scalar they do not read.

A profile walks single table columns, not whole tables (each varbind costs the device and
the bridge a lookup, an encoding and a decoding). For every LibreNMS recording, what the
chosen profiles make of everything in it must equal what they make of only the OIDs they
ask for: a column a profile reads but does not list would silently lose a value.
And every scalar a profile asks for is one it reads, in some recording. The recordings
are parsed by snmpsim's own record parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from meshmon_bridge.sources.snmp.client import Oid, Value, plain_value
from meshmon_bridge.sources.snmp.profiles import PROFILES
from meshmon_bridge.sources.snmp.profiles.base import DeviceView, Identity, Profile, Snapshot
from meshmon_bridge.sources.snmp.profiles.mib2 import SYS_DESCR, SYS_OBJECT_ID
from snmpsim.record.snmprec import SnmprecRecord

RECORDINGS = sorted((Path(__file__).parents[1] / "data" / "librenms" / "snmprec").glob(
    "*.snmprec"))


def everything(path: Path) -> dict[Oid, Value]:
    """Every object of a recording, as the bridge's client would hand it to the profiles."""
    record = SnmprecRecord()
    out: dict[Oid, Value] = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            name, raw = record.evaluate(line)
            value = plain_value(raw)
            if value is not None:
                out[tuple(name)] = value
    return out


def under(name: Oid, roots: tuple[Oid, ...]) -> bool:
    return any(name[:len(root)] == root for root in roots)


def chosen(values: dict[Oid, Value]) -> list[Profile]:
    """The profiles a device with these objects gets (as discovery picks them)."""
    object_id, descr = values.get(SYS_OBJECT_ID), values.get(SYS_DESCR)
    identity = Identity(object_id if isinstance(object_id, tuple) else (),
                        descr.decode() if isinstance(descr, bytes) else "")
    return [p for p in PROFILES if p.candidate(identity) and (
        not p.anchors or any(under(name, p.anchors) for name in values))]


def view_of(profiles: list[Profile], values: dict[Oid, Value]) -> DeviceView:
    view = DeviceView()
    for profile in profiles:
        profile.read(Snapshot(values), view)
    return view


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_profiles_read_only_what_they_ask_for(path: Path) -> None:
    values = everything(path)
    profiles = chosen(values)
    gets = {o for p in profiles for o in (*p.gets, *p.static_gets)}
    roots = tuple(r for p in profiles for r in (*p.walks, *p.static_walks))
    asked = {k: v for k, v in values.items() if k in gets or under(k, roots)}
    assert view_of(profiles, asked) == view_of(profiles, values)


def test_profiles_leave_out_columns_they_do_not_read() -> None:
    """Whole tables are not walked: the rows of the tables these recordings' profiles read
    have columns no profile reads, and those are not asked for."""
    for name in ("airos-af", "airos-af-ltu", "routeros", "mimosa"):
        values = everything(next(p for p in RECORDINGS if p.stem == name))
        profiles = chosen(values)
        roots = tuple(r for p in profiles for r in (*p.walks, *p.static_walks))
        entries = tuple({root[:-1] for root in roots})  # a column's parent: its …Entry
        unread = {k for k in values if under(k, entries) and not under(k, roots)}
        assert unread, name


class Watched(Snapshot):
    """A snapshot that notes which single objects a profile looked up."""

    looked_up: set[Oid]

    def get(self, at: Oid) -> Value | None:
        self.looked_up.add(at)
        return super().get(at)


def test_every_scalar_a_profile_asks_for_is_read() -> None:
    looked_up: dict[str, set[Oid]] = {p.name: set() for p in PROFILES}
    for path in RECORDINGS:
        values = everything(path)
        for profile in chosen(values):
            snap = Watched(values)
            snap.looked_up = looked_up[profile.name]
            profile.read(snap, DeviceView())
    for profile in PROFILES:
        asked = {*profile.gets, *profile.static_gets}
        assert asked <= looked_up[profile.name], profile.name
