"""A walk planned from the last one reads exactly what a walk without memory reads, also
when the device's tables changed in between (snmpsim re-reads a recording rewritten on
disk): stations associated in the middle of the registration table or at its end, a
station gone, an interface row gone from one column, a scalar with objects just before it.
An unchanged small device costs one request per poll; the devices of a bridge get their
targets configured together, and a host name that does not resolve fails alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.snmp.client import Oid, SnmpClient, oid
from meshmon_bridge.sources.snmp.config import SnmpTable
from meshmon_bridge.sources.snmp.device import SharedEngine, SnmpDevice
from meshmon_bridge.sources.snmp.profiles.mib2 import Mib2
from meshmon_bridge.sources.snmp.profiles.mikrotik import Mikrotik
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from tests import snmpsim

LIBRENMS = Path(__file__).parents[1] / "data" / "librenms" / "snmprec"
RTAB_SIGNAL = "1.3.6.1.4.1.14988.1.1.1.2.1.3"  # mtxrWlRtabStrength.<mac>.<ifIndex>
IF_IN_ERRORS = "1.3.6.1.2.1.2.2.1.14"
CRAFTED = ["1.3.6.1.4.1.99999.1.1.7|2|17",  # lies between …1.1 and …1.2
           "1.3.6.1.4.1.99999.1.2|2|42"]
ROOTS = [*Mib2.walks, *Mib2.static_walks, *Mikrotik.walks, *Mikrotik.static_walks]
SCALARS = [*Mib2.gets, *Mikrotik.gets, oid("1.3.6.1.4.1.99999.1.2"),
           oid("1.3.6.1.4.1.99999.1.3")]


def lines_of(community: str) -> list[str]:
    return (LIBRENMS / "routeros.snmprec").read_text().splitlines() + CRAFTED


def write(data: Path, community: str, lines: list[str]) -> None:
    """Rewrite a recording in OID order, dated later so snmpsim re-reads it (it compares
    whole seconds)."""
    path = data / f"{community}.snmprec"
    before = path.stat().st_mtime if path.exists() else 0.0
    ordered = sorted((line for line in lines if line.strip()),
                     key=lambda line: oid(line.split("|", 1)[0]))
    path.write_text("\n".join(ordered) + "\n")
    later = max(before + 2, time.time() + 2)
    os.utime(path, (later, later))


def insert_station(lines: list[str]) -> list[str]:
    return [*lines, f"{RTAB_SIGNAL}.50.0.0.0.0.1.1|2|-55"]


def append_station(lines: list[str]) -> list[str]:
    return [*lines, f"{RTAB_SIGNAL}.250.0.0.0.0.1.9|2|-60"]


def remove_station(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith(f"{RTAB_SIGNAL}.116.35.68.")]


def remove_interface_errors(lines: list[str]) -> list[str]:
    gone = next(line for line in lines if line.startswith(IF_IN_ERRORS + "."))
    return [line for line in lines if line != gone]


def everything_at_once(lines: list[str]) -> list[str]:
    return remove_interface_errors(remove_station(append_station(insert_station(lines))))


CHANGES: dict[str, Callable[[list[str]], list[str]]] = {
    "station-inserted": insert_station, "station-appended": append_station,
    "station-removed": remove_station, "iface-errors-removed": remove_interface_errors,
    "all-at-once": everything_at_once}


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    data = tmp_path_factory.mktemp("snmpsim-walk")
    for community in [*CHANGES, "unchanged"]:
        write(data, community, lines_of(community))
    snmpsim.recordings(LIBRENMS, data, {"airos": "airos"})
    server = snmpsim.start_snmpsim(data, "unchanged")
    yield server.port, data
    server.stop()


async def client(engine: SnmpEngine, port: int, community: str) -> SnmpClient:
    table = SnmpTable(host="127.0.0.1", port=port, community=community, node="dev-x",
                      timeout_s=5)
    return await SnmpClient.open(engine, table)


async def read(walker: SnmpClient) -> dict[Oid, object]:
    return dict(await walker.walk(list(ROOTS), list(SCALARS)))


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_planned_walk_reads_what_a_fresh_one_does(
        simulator: tuple[int, Path], change: str) -> None:
    port, data = simulator
    engine = SnmpEngine()
    try:
        remembering = await client(engine, port, change)
        before = await read(remembering)
        assert await read(remembering) == before  # planned, nothing changed
        write(data, change, CHANGES[change](lines_of(change)))
        planned = await read(remembering)
        fresh = await read(await client(engine, port, change))
        assert planned == fresh
        assert planned != before
        assert await read(remembering) == fresh  # and planned from the changed tables
    finally:
        engine.close_dispatcher()
    signals = {k[len(oid(RTAB_SIGNAL)):]: v for k, v in planned.items()
               if k[:len(oid(RTAB_SIGNAL))] == oid(RTAB_SIGNAL)}
    if change in ("station-inserted", "all-at-once"):
        assert signals[(50, 0, 0, 0, 0, 1, 1)] == -55
    if change in ("station-appended", "all-at-once"):
        assert signals[(250, 0, 0, 0, 0, 1, 9)] == -60
    if change in ("station-removed", "all-at-once"):
        assert not any(k[:3] == (116, 35, 68) for k in signals)
    assert len(signals) == 11 + {"station-inserted": 1, "station-appended": 1,
                                 "station-removed": -1, "all-at-once": 1}.get(change, 0)


async def test_scalars_ride_along_and_one_with_objects_before_it_is_still_read(
        simulator: tuple[int, Path]) -> None:
    port, _ = simulator
    engine = SnmpEngine()
    try:
        got = await read(await client(engine, port, "unchanged"))
    finally:
        engine.close_dispatcher()
    assert got[oid("1.3.6.1.4.1.99999.1.2")] == 42  # the GETNEXT gave …1.1.7: read by GET
    assert oid("1.3.6.1.4.1.99999.1.3") not in got  # not there: left out
    assert oid("1.3.6.1.4.1.99999.1.1.7") not in got  # under no root: not kept
    assert isinstance(got[oid("1.3.6.1.2.1.1.3.0")], int)  # sysUpTime


async def test_an_unchanged_small_device_costs_one_request_per_poll(
        simulator: tuple[int, Path]) -> None:
    port, _ = simulator
    dev = SnmpDevice(SnmpTable(host="127.0.0.1", port=port, community="airos",
                               node="dev-airos", timeout_s=5), SharedEngine(1))
    try:
        first = await dev.poll()
        after_first = dev.requests
        assert after_first <= 3  # discovery (one GETNEXT) and the complete read
        for _ in range(3):
            assert await dev.poll() == first
        assert dev.requests - after_first == 3
    finally:
        await dev.close()


async def test_devices_are_configured_together_and_a_bad_name_misses_alone(
        simulator: tuple[int, Path]) -> None:
    port, _ = simulator
    shared = SharedEngine(4)
    good = SnmpDevice(SnmpTable(host="127.0.0.1", port=port, community="airos",
                                node="dev-good", timeout_s=5), shared)
    bad = SnmpDevice(SnmpTable(host="no-such-host.invalid", port=port, community="airos",
                               node="dev-bad", timeout_s=5, offline_after=2), shared)
    try:
        (update,) = await good.poll()
        assert update.online is True and update.report is not None
        assert shared.unconfigured == []  # the first poll configured both
        with pytest.raises(SourceError, match=r"cannot reach no-such-host\.invalid"):
            await bad.poll()
        (offline,) = await bad.poll()  # tried again, still no such name
        assert offline.online is False
    finally:
        await good.close()
        await bad.close()
