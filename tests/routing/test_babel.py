"""Babel from real babeld daemons in three network namespaces joined in a line by veth
pairs (a — b — c), read through their local monitoring sockets."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.routing import RoutingSource
from meshmon_bridge.sources.routing.babel import table_of_dump, view_of

from meshmon.model import wire
from tests import servers
from tests.bridge.helpers import PREFIX, decode, start_bridge, subscribed_recorder, write_config
from tests.netns import Lab, start_babeld
from tests.routing.helpers import Published, publish, source

ADDRESSES = {"a": "10.77.0.1", "b": "10.77.0.2", "c": "10.77.0.3"}
NAMES = {address: f"hill-{node}" for node, address in ADDRESSES.items()}
CONVERGE_S = 20.0


@dataclass
class Mesh:
    lab: Lab
    sockets: dict[str, Path]
    veths: dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("babel")
    with Lab("rt") as lab:
        for node, address in ADDRESSES.items():
            lab.add(node)
            lab.add_address(node, f"{address}/32")
        ab, ba = lab.connect("a", "b")
        bc, cb = lab.connect("b", "c")
        veths = {("a", "b"): ab, ("b", "a"): ba, ("b", "c"): bc, ("c", "b"): cb}
        sockets = {node: work / f"{node}.sock" for node in ADDRESSES}
        for node in ADDRESSES:
            ifaces = [v for (src, _), v in veths.items() if src == node]
            start_babeld(lab, node, ifaces, sockets[node], hostname=f"rt-{node}",
                         announce="10.77.0.0/16")  # fmt: skip
        yield Mesh(lab, sockets, veths)


def babel(mesh: Mesh, node: str, **options: Any) -> RoutingSource:
    return source("babel", url=f"unix:{mesh.sockets[node]}", names=NAMES, **options)


async def until(
    poll: Callable[[], Awaitable[Published]], done: Callable[[Published], bool]
) -> Published:
    """Poll until `done` holds (babeld converges in about a second), or fail with the last."""
    deadline = time.monotonic() + CONVERGE_S
    while True:
        out = await poll()
        if done(out) or time.monotonic() > deadline:
            return out
        await asyncio.sleep(0.1)


def peers(out: Published, node: str) -> set[str]:
    report = out.reports.get(node)
    return {ln.peer or "" for ln in report.links} if report else set()


async def test_one_daemon_shows_the_mesh(mesh: Mesh) -> None:
    src = babel(mesh, "b")
    try:
        out = await until(lambda: _published(src),
                          lambda o: peers(o, "hill-b") == {"hill-a", "hill-c"}
                          and all(ln.lq == 1.0 for ln in o.reports["hill-b"].links)
                          and {"hill-a", "hill-c"} <= set(o.reports))  # fmt: skip
    finally:
        await src.close()
    assert set(out.reports) == {"hill-a", "hill-b", "hill-c"}
    assert all(out.online.values())
    links = {ln.peer: ln for ln in out.reports["hill-b"].links}
    assert links["hill-a"].iface == mesh.veths[("b", "a")]
    assert links["hill-c"].iface == mesh.veths[("b", "c")]
    for link in links.values():
        assert link.kind == "babel"
        assert (link.cost, link.rxcost, link.txcost) == (96, 96, 96)  # babeld's wired cost
    # b's own daemon knows its host name; the others only its routes tell (no links)
    assert out.info["hill-b"].hostname == "rt-b"
    assert out.reports["hill-a"].links == [] and out.reports["hill-c"].links == []


async def _published(src: RoutingSource) -> Published:
    return publish(await src.poll())


async def test_every_daemon_read_and_a_link_taken_down(mesh: Mesh) -> None:
    # one source per daemon, each speaking for its own node only
    sources = {n: babel(mesh, n, remote_nodes=False) for n in ADDRESSES}
    viewer = babel(mesh, "a")  # a's view of the whole mesh (remote nodes too)

    async def poll_all() -> Published:
        merged = Published()
        for src in sources.values():
            part = await _published(src)
            merged.reports.update(part.reports)
            merged.online.update(part.online)
            merged.info.update(part.info)
        return merged

    try:
        full = {frozenset(("hill-a", "hill-b")), frozenset(("hill-b", "hill-c"))}
        out = await until(poll_all, lambda o: o.pairs() == full and len(o.links()) == 4)
        assert set(out.reports) == {"hill-a", "hill-b", "hill-c"}
        assert peers(out, "hill-a") == {"hill-b"} and peers(out, "hill-c") == {"hill-b"}
        assert peers(out, "hill-b") == {"hill-a", "hill-c"}
        assert {out.info[n].hostname for n in out.info} == {"rt-a", "rt-b", "rt-c"}
        seen = await until(lambda: _published(viewer), lambda o: "hill-c" in o.reports)
        assert seen.online.get("hill-c") is True

        mesh.lab.set_link("b", mesh.veths[("b", "c")], up=False)
        out = await until(poll_all, lambda o: o.pairs() == {frozenset(("hill-a", "hill-b"))})
        # the link is gone from both ends' reports while both nodes run: a down link
        assert out.pairs() == {frozenset(("hill-a", "hill-b"))}
        assert peers(out, "hill-b") == {"hill-a"} and peers(out, "hill-c") == set()
        assert out.online == {"hill-a": True, "hill-b": True, "hill-c": True}
        # from a, c is now unreachable: offline
        seen = await until(lambda: _published(viewer), lambda o: o.online.get("hill-c") is False)
        assert seen.online["hill-c"] is False and "hill-c" not in seen.reports
    finally:
        mesh.lab.set_link("b", mesh.veths[("b", "c")], up=True)
        for src in [*sources.values(), viewer]:
            await src.close()


async def test_babeld_gone_and_back(mesh: Mesh) -> None:
    src = babel(mesh, "c", remote_nodes=False)
    try:
        first = await until(lambda: _published(src), lambda o: peers(o, "hill-c") == {"hill-b"})
        assert peers(first, "hill-c") == {"hill-b"}
        daemon = next(p for p in mesh.lab.processes if p.poll() is None
                      and str(mesh.sockets["c"]) in " ".join(map(str, p.args)))  # type: ignore[arg-type]
        daemon.terminate()
        daemon.wait(timeout=5)
        mesh.sockets["c"].unlink(missing_ok=True)
        # the monitor notices the closed connection on its next turn of the loop
        deadline = time.monotonic() + CONVERGE_S
        while True:
            try:
                await src.poll()
            except SourceError as exc:
                assert "c.sock" in str(exc)
                break
            assert time.monotonic() < deadline, "babeld's end was not noticed"
            await asyncio.sleep(0.05)
        ifaces = [mesh.veths[("c", "b")]]
        start_babeld(mesh.lab, "c", ifaces, mesh.sockets["c"], hostname="rt-c",
                     announce="10.77.0.0/16")  # fmt: skip
        # the next polls connect again and follow the new daemon
        back = await until(lambda: _published(src), lambda o: peers(o, "hill-c") == {"hill-b"})
        assert peers(back, "hill-c") == {"hill-b"} and back.online["hill-c"] is True
    finally:
        await src.close()


def test_bridge_process_over_mosquitto(
    mesh: Mesh, mosquitto: servers.Server, tmp_path: Path
) -> None:
    """`meshmon-bridge -c FILE` reading the three daemons publishes the mesh on a real
    broker, and a link taken down leaves the reports of both its ends."""
    names = ", ".join(f'"{a}" = "{n}"' for a, n in NAMES.items())
    body = "".join(
        f'[[routing]]\nkind = "babel"\nurl = "unix:{mesh.sockets[node]}"\ninterval_s = 0.3\n'
        f"remote_nodes = false\nid_key = \"k\"\nnames = {{ {names} }}\n\n"
        for node in ADDRESSES
    )
    config = write_config(tmp_path / "bridge.toml", "rt-babel", mosquitto.port, body=body)
    rec = subscribed_recorder(mosquitto.port, f"{PREFIX}/v1/node/#",
                              f"{PREFIX}/v1/node/probe/status")  # fmt: skip
    bridge = start_bridge(config, tmp_path / "bridge.log")

    def latest_links(since: float) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for m in rec.where("/report"):
            if m.at >= since:
                report = decode(m)
                assert isinstance(report, wire.Report)
                out[report.node] = {ln.peer or "" for ln in report.links}
        return out

    def wait_links(expected: dict[str, set[str]], since: float) -> None:
        deadline = time.monotonic() + CONVERGE_S
        while latest_links(since) != expected:
            assert bridge.poll() is None, (tmp_path / "bridge.log").read_text()
            assert time.monotonic() < deadline, (latest_links(since), expected)
            time.sleep(0.1)

    try:
        wait_links({"hill-a": {"hill-b"}, "hill-b": {"hill-a", "hill-c"},
                    "hill-c": {"hill-b"}}, 0)  # fmt: skip
        infos = [i for i in map(decode, rec.where("/info")) if isinstance(i, wire.Info)]
        assert {i.hostname for i in infos} == {"rt-a", "rt-b", "rt-c"}
        assert all(i.source is not None and i.source.via == "rt-babel" for i in infos)
        mesh.lab.set_link("b", mesh.veths[("b", "c")], up=False)
        wait_links({"hill-a": {"hill-b"}, "hill-b": {"hill-a"}, "hill-c": set()}, time.time())
        statuses = [decode(m) for m in rec.where("/status")]
        assert all(s.online for s in statuses)  # type: ignore[union-attr]
    finally:
        mesh.lab.set_link("b", mesh.veths[("b", "c")], up=True)
        bridge.send_signal(signal.SIGTERM)
        try:
            assert bridge.wait(10) == 0
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait(5)
            rec.close()


def test_saved_dump() -> None:
    # what `echo dump | nc -U …` printed on b of this same line topology
    dump = """BABEL 1.0
version babeld-1.12.1
host rt-b
my-id 64:34:30:72:94:57:c0:f2
ok
add interface rt1ba up true ipv6 fe80::ac6f:22ff:feda:f34f
add interface rt1bc up false
add neighbour 564f14963270 address fe80::a8b1:76ff:fe23:cb53 if rt1ba reach ffff ureach 0000 rxcost 96 txcost 96 cost 96
add neighbour 564f14962810 address fe80::3476:c3ff:fe3c:43c1 if rt1bc reach 3fff ureach 0000 rxcost 65535 txcost 96 cost 65535
add xroute 10.77.0.2/32-0.0.0.0/0 prefix 10.77.0.2/32 from 0.0.0.0/0 metric 0
add route 564f14963440 prefix 10.77.0.1/32 from 0.0.0.0/0 installed yes id bc:00:73:c3:68:3b:33:2c metric 96 refmetric 0 via fe80::a8b1:76ff:fe23:cb53 if rt1ba
add route 564f14963520 prefix 10.77.0.3/32 from 0.0.0.0/0 installed no id 7c:8d:82:c1:84:85:64:71 metric 288 refmetric 192 via fe80::a8b1:76ff:fe23:cb53 if rt1ba
ok
"""  # noqa: E501
    view = view_of(table_of_dump(dump))
    assert view.local == "64:34:30:72:94:57:c0:f2"
    # the neighbour at infinite cost (its interface is down) is no link; the route to
    # 10.77.0.3 is not installed (a stale alternative): that node is not reachable
    assert [(ln.dst, ln.iface, ln.metrics) for ln in view.links] == [
        ("bc:00:73:c3:68:3b:33:2c", "rt1ba",
         {"cost": 96.0, "rxcost": 96.0, "txcost": 96.0, "lq": 1.0}),
    ]  # fmt: skip
    assert set(view.nodes) == {"64:34:30:72:94:57:c0:f2", "bc:00:73:c3:68:3b:33:2c"}
