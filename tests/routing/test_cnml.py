"""guifi.net CNML through netdiff/libcnml: devices named by their titles, working links
between them; invalid and empty files fail cleanly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import netdiff
import pytest
from libcnml import libcnml
from meshmon_bridge.source import SourceError

from tests.routing.helpers import DATA, poll, publish, source

EXPECTED_LIBCNML = json.loads((DATA / "guifi_cnml" / "expected_libcnml.json").read_text())
EXPECTED_NETDIFF = json.loads((DATA / "netdiff" / "expected_netdiff.json").read_text())


def devices(path: Path) -> dict[str, libcnml.CNMLDevice]:
    """The file's devices by title, as libcnml reads it."""
    return {d.title: d for d in libcnml.CNMLParser(str(path)).get_devices()}


@pytest.mark.parametrize("file", ["guifi_cnml/54284.cnml", "guifi_cnml/2525.cnml"])
async def test_zone_devices_and_links(file: str) -> None:
    path = DATA / file
    expected = EXPECTED_LIBCNML[path.name]
    cnml = libcnml.CNMLParser(str(path))
    assert len(cnml.get_nodes()) == expected["nodes"]  # the file is what libcnml asserts
    assert len(cnml.get_devices()) == expected["devices"]
    out = await poll("cnml", file)
    titles = devices(path)
    assert set(out.reports) <= set(titles)  # every node is a device, named by its title
    # one published link per link in netdiff's graph (working links only)
    graph = netdiff.CnmlParser(str(path), directed=True).graph
    assert len(out.links()) == graph.number_of_edges()
    assert {ln.kind for _, ln in out.links()} <= {"wifi", "ethernet", "other"}
    assert all(ln.peer in titles for _, ln in out.links())
    # what the file says of the device: model, firmware, its node's location, MACs
    for node, info in out.info.items():
        device = titles[node]
        # an empty attribute is absent, not ""
        assert (info.model, info.firmware) == (device.name or None, device.firmware or None)
        assert info.location is not None
        assert (info.location.lat, info.location.lon) == (
            device.parentNode.latitude, device.parentNode.longitude)
        assert all(m == m.lower() and m != "00:00:00:00:00:00" for m in info.macs)


async def test_link_types_give_link_kinds() -> None:
    path = DATA / "guifi_cnml" / "54284.cnml"
    out = await poll("cnml", "guifi_cnml/54284.cnml")
    kinds = {frozenset((n, ln.peer)): ln.kind for n, ln in out.links()}
    working = [ln for ln in libcnml.CNMLParser(str(path)).get_inner_links()
               if ln.status == libcnml.Status.WORKING and ln.deviceA is not ln.deviceB]
    by_type = {"wds": "wifi", "ap/client": "wifi", "cable": "ethernet"}
    assert {ln.type for ln in working} == set(by_type)
    for link in working:
        pair = frozenset((link.deviceA.title, link.deviceB.title))
        assert kinds[pair] == by_type[link.type], link.id


async def test_netdiff_zone_26494_diff(tmp_path: Path) -> None:
    expected = EXPECTED_NETDIFF
    live = tmp_path / "zone.cnml"
    shutil.copy(DATA / "netdiff" / "26494_detail_1.cnml", live)
    src = source("cnml", file=live)
    first = publish(await src.poll())
    assert len(first.reports) == expected["26494_detail_1.cnml"]["nodes"]
    assert len(first.links()) == expected["26494_detail_1.cnml"]["links"]
    shutil.copy(DATA / "netdiff" / "26494_detail_2.cnml", live)
    second = publish(await src.poll())
    assert len(second.pairs() - first.pairs()) == expected["26494_detail_2.cnml"]["added_links"]


@pytest.mark.parametrize("file", ["guifi_cnml/54284_invalid.cnml", "guifi_cnml/empty.cnml"])
async def test_invalid_and_empty_fail_cleanly(file: str) -> None:
    assert EXPECTED_LIBCNML[Path(file).name] == {"loaded": False}
    with pytest.raises(SourceError, match="cannot read it as cnml: not a CNML document"):
        await source("cnml", file).poll()


async def test_cnml_from_a_command() -> None:
    # libcnml reads files only: a command's output goes through a temporary file
    path = DATA / "guifi_cnml" / "2525.cnml"
    out = publish(await source("cnml", command=f"cat {path}").poll())
    assert out.reports.keys() == (await poll("cnml", "guifi_cnml/2525.cnml")).reports.keys()
