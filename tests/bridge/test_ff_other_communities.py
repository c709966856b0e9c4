"""Map data of other communities and generators than the six 2020 meshviewer snapshots,
compared with the source node by node and link by link, then fed to a collector whose
public answers must hold no MAC or IP address:

- the freifunk/meshviewer frontend's own fixture (`wifi24`/`wifi5` links, ids that are
  not MACs, a link to a node the file does not list, a node with almost nothing);
- Freifunk Dresden's hopglass nodes.json (a non-Gluon generator: numeric node ids, IP
  addresses as gateways, no MACs);
- OpenWiFiMap documents as the OpenWrt client writes them (olsrd jsoninfo link entries of
  0.6 and 0.9, Wi-Fi levels), as Berlin's map page serves the old view (`{"JSON": …}`),
  and the API's newer view, whose rows carry no links, through a real HTTP server.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.freifunk import hopglass, meshviewer, openwifimap
from meshmon_bridge.sources.freifunk.mapfiles import (
    MeshviewerSource,
    MeshviewerTable,
    OpenWifiMapSource,
    OpenWifiMapTable,
)
from meshmon_bridge.sources.freifunk.node_ids import PublicIds
from meshmon_bridge.sources.freifunk.snapshot import SnapshotOptions, node_updates, parse_time

from meshmon.alerts.runtime import Alerting
from meshmon.config import Config
from meshmon.metrics import Metrics
from meshmon.model import wire
from meshmon.web.app import create_app
from meshmon.web.context import WebContext
from tests.bridge.ff_helpers import (
    DATA,
    ID_KEY,
    ODD_JSON,
    assert_public_ids,
    by_node,
    context,
    published,
)
from tests.bridge.helpers import print_tables
from tests.routing.helpers import source as routing_source
from tests.web.privacy import leaks
from tests.web.test_exports import feed_core

FIXTURE = DATA / "meshviewer-frontend-fixture.json"
DRESDEN = DATA / "hopglass-dresden" / "nodes.json"
OWM = DATA / "openwifimap"
OPTIONS = SnapshotOptions(interval_s=60, offline_after_s=900)


def bridge_leaks(messages: list[wire.Message] | list[dict[str, Any]]) -> list[str]:
    """MACs, addresses, e-mails in what the bridge publishes, but for `info.macs` and a
    link's `peer_mac`: the private fields the collector resolves peers with."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("macs", "peer_mac")}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return leaks(strip([m if isinstance(m, dict) else m.model_dump(mode="json")
                        for m in messages]))


def meshviewer_messages(path: Path) -> tuple[MeshviewerSource, list[wire.Message]]:
    table = MeshviewerTable(url=str(path), id_key=ID_KEY)
    source = MeshviewerSource(table, context(path.parent), [table.url])
    return source, published("meshviewer", asyncio.run(source.poll()))


def test_frontend_fixture_ids_gateways_and_odd_entries() -> None:
    source, messages = meshviewer_messages(FIXTURE)
    nodes = by_node(messages)
    # ids that are already public are kept; MAC ids become the hostname
    assert sorted(nodes) == ["1004", "aldebaran", "alderaan", "antares", "capella", "deneb",
                             "node.a03", "rgl5x", "sirius", "sparse.a77"]
    assert {n for n, m in nodes.items() if m["info"].gateway} == {"1004", "node.a03", "rgl5x"}
    # wifi24/wifi5 are radio links; the link to a node the file does not list is kept,
    # from the end that is listed, to the id that node would get
    links = {(n, ln.peer, ln.iface, ln.kind, ln.tq) for n, m in nodes.items()
             if "report" in m for ln in m["report"].links}
    assert ("1004", "missing.a99", "wifi", "batman", round(0.42 * 255)) in links
    assert ("rgl5x", "antares", "wifi", "batman", round(0.95 * 255)) in links
    assert {i for _, _, i, _, _ in links} == {"wifi"}
    assert source.ids.get("missing.a99") == "missing.a99" and "missing.a99" not in nodes
    # the sparse node: offline, no report, only what the file says
    sparse = nodes["sparse.a77"]
    assert not sparse["status"].online and "report" not in sparse
    assert sparse["info"].hostname == "Pollux" and sparse["info"].model is None
    assert nodes["sirius"]["info"].firmware == "openwrt 1.0.0"
    assert bridge_leaks(messages) == []


def dresden_updates(prefix: str = "") -> tuple[dict[str, Any], list[wire.Message]]:
    """Dresden's nodes.json with an empty graph: the nodes of a real file (its
    graph.json is not public with it)."""
    nodes_doc = json.loads(DRESDEN.read_text())
    snap = hopglass.parse(nodes_doc, {"batadv": {"nodes": [], "links": []}}, "dresden", 0)
    updates = node_updates(snap, PublicIds(prefix, ID_KEY.encode()), OPTIONS)
    return nodes_doc, published("hopglass", updates)


def test_dresden_hopglass_nodes_every_node_as_the_file_says() -> None:
    nodes_doc, messages = dresden_updates()
    nodes = by_node(messages)
    raw = {n["nodeinfo"]["node_id"]: n for n in nodes_doc["nodes"]}
    assert len(nodes) == len(raw) == 21
    assert set(nodes) == set(raw)  # numeric ids hold no address: kept as they are
    assert_public_ids(list(nodes))
    for key, n in raw.items():
        got = nodes[key]
        assert got["status"].online is n["flags"]["online"], key
        assert got["info"].gateway is n["flags"]["gateway"], key
        assert got["info"].hostname == n["nodeinfo"]["hostname"]
        loc = n["nodeinfo"].get("location")
        assert (got["info"].location and (got["info"].location.lat, got["info"].location.lon)
                ) == (loc and (loc["latitude"], loc["longitude"]))
        if n["flags"]["online"]:
            stats = n["statistics"]
            assert got["report"].sys.uptime_s == round(stats["uptime"], 1)
            assert got["report"].sys.load == [stats["loadavg"]]
            assert got["report"].clients == stats["clients"]
    assert nodes["1004"]["info"].model == "Xiaomi Mi Router 4A Gigabit Edition"
    assert nodes["0"]["info"].firmware == "Ubuntu 20.04 1.4.0"
    # `network.addresses` and `statistics.gateway` are IP addresses: never published
    assert bridge_leaks(messages) == []


def _owm_source(url: str, base: Path = OWM) -> OpenWifiMapSource:
    table = OpenWifiMapTable(url=url, id_key=ID_KEY)
    return OpenWifiMapSource(table, context(base), [table.url])


def _expected_owm_links(docs: dict[str, dict[str, Any]], online: set[str]
                        ) -> Counter[tuple[str, str, float, float, float, float | None]]:
    """(node, peer, ETX, LQ, NLQ, signal) of every link an online document lists, read
    from the client's olsrd entries: linkCost is ETX × 1024 when an integer (olsrd 0.6),
    the ETX when a decimal (olsrd 0.9)."""
    out: Counter[tuple[str, str, float, float, float, float | None]] = Counter()
    for key, doc in docs.items():
        if key not in online:
            continue
        for lk in doc["links"]:
            olsr = lk["olsr_ipv4"]
            cost = olsr["linkCost"]
            etx = cost / 1024 if isinstance(cost, int) else cost
            out[(key, lk["id"], etx, olsr["linkQuality"], olsr["neighborLinkQuality"],
                 lk.get("signal"))] += 1
    return out


def _published_owm_links(nodes: dict[str, dict[str, Any]]
                         ) -> Counter[tuple[str, str, float, float, float, float | None]]:
    out: Counter[tuple[str, str, float, float, float, float | None]] = Counter()
    for node_id, msgs in nodes.items():
        for ln in msgs["report"].links if "report" in msgs else []:
            assert ln.kind == "olsr" and ln.peer is not None
            assert ln.etx is not None and ln.lq is not None and ln.nlq is not None
            out[(node_id, ln.peer, ln.etx, ln.lq, ln.nlq, ln.signal_dbm)] += 1
    return out


def test_openwifimap_client_documents_as_berlins_map_page_serves_them() -> None:
    view = json.loads((OWM / "client-view.json").read_text())
    docs = json.loads((OWM / "client-documents.json").read_text())
    source = _owm_source("client-view.json")
    messages = published("openwifimap", asyncio.run(source.poll()))
    nodes = by_node(messages)
    assert len(view["JSON"]["rows"]) == len(nodes) == len(docs) == 55
    assert set(nodes) == set(docs)  # document ids such as `romania-1.olsr` are public ids
    online = {n for n, m in nodes.items() if m["status"].online}
    assert set(docs) - online == {view["JSON"]["rows"][5]["id"]}  # two days behind
    assert _published_owm_links(nodes) == _expected_owm_links(docs, online)
    wifi = [ln for m in nodes.values() if "report" in m for ln in m["report"].links
            if ln.signal_dbm is not None]
    assert wifi and all(ln.noise_dbm == -95 for ln in wifi)
    # the OLSR IP addresses and the stations' MACs of every link never leave the bridge
    assert bridge_leaks(messages) == []


class OwmApi:
    """The OpenWiFiMap API's newer view (rows without links) and `db/ID` documents,
    served on loopback; counts the documents asked for."""

    def __init__(self) -> None:
        view = json.loads((OWM / "client-view.json").read_text())
        self.docs: dict[str, dict[str, Any]] = json.loads(
            (OWM / "client-documents.json").read_text())
        self.rows = [{"id": r["id"], "key": r["key"],
                      "value": {k: v for k, v in r["value"].items() if k != "links"}}
                     for r in view["JSON"]["rows"]]
        self.asked: Counter[str] = Counter()
        self.missing: set[str] = set()
        app = web.Application()
        app.router.add_get("/api/view_nodes_spatial", self.view)
        app.router.add_get("/api/db/{id}", self.document)
        self.server = TestServer(app, host="127.0.0.1")

    async def view(self, request: web.Request) -> web.Response:
        return web.json_response({"rows": self.rows})

    async def document(self, request: web.Request) -> web.Response:
        key = request.match_info["id"]
        self.asked[key] += 1
        if key in self.missing or key not in self.docs:
            raise web.HTTPNotFound()
        return web.json_response(self.docs[key])

    def touch(self, index: int) -> str:
        """The node at `index` reports again: a new mtime in its row and document."""
        row = self.rows[index]["value"]
        row["mtime"] = self.docs[row["id"]]["mtime"] = "2019-04-03T06:00:00.000Z"
        return str(row["id"])


async def test_openwifimap_newer_view_fetches_documents_only_when_they_change() -> None:
    api = OwmApi()
    client: TestClient[Any, Any] = TestClient(api.server)
    await client.start_server()
    try:
        url = str(client.make_url("/api/view_nodes_spatial?bbox=12.9,52.27,13.8,52.7"))
        source = _owm_source(url)
        first = by_node(published("openwifimap", await source.poll()))
        assert set(api.asked) == set(api.docs) and set(api.asked.values()) == {1}
        online = {n for n, m in first.items() if m["status"].online}
        assert _published_owm_links(first) == _expected_owm_links(api.docs, online)
        assert first["ukraine-1.olsr"]["info"].model == "Ubiquiti Nanostation M"

        api.asked.clear()
        again = by_node(published("openwifimap", await source.poll()))
        assert not api.asked  # nothing changed: no document asked for again
        assert _published_owm_links(again) == _published_owm_links(first)

        touched = api.touch(7)
        api.missing.add(touched)  # … but its document cannot be had this time
        third = by_node(published("openwifimap", await source.poll()))
        assert api.asked == {touched: 1}
        assert _published_owm_links(third) == _published_owm_links(first)  # kept

        api.missing.clear()
        api.docs[touched]["links"] = api.docs[touched]["links"][1:]  # one neighbour gone
        fourth = by_node(published("openwifimap", await source.poll()))
        assert api.asked == {touched: 2}  # asked again until it is had
        assert len(fourth[touched]["report"].links) == len(third[touched]["report"].links) - 1
    finally:
        await client.close()


async def test_every_public_answer_of_a_collector_fed_these_files_is_address_free(
        ) -> None:
    messages = (await asyncio.to_thread(meshviewer_messages, FIXTURE))[1]
    messages += dresden_updates("ffdd-")[1]  # its `1004` is not the fixture's `1004`
    owm = _owm_source("client-view.json")
    messages += published("openwifimap", await owm.poll())
    vis = routing_source("batman-adv", "ffnord/batadv-vis-json-lines.txt")
    messages += published("routing", await vis.poll())
    core = feed_core(messages, 1_700_000_000.0)
    ids = {m.node for m in messages}
    assert set(core.topology.nodes) == ids and len(ids) == 10 + 21 + 55 + 20
    clock = lambda: 1.7e9  # noqa: E731
    ctx = WebContext(core=core, config=Config(), metrics=Metrics(), clock=clock,
                     alerting=Alerting(Config(), core, lambda event: None, clock))
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(ctx), host="127.0.0.1"))
    await client.start_server()
    try:
        paths = ["/api/v1/nodes", "/api/v1/links", "/api/v1/topology", "/api/v1/map",
                 "/api/v1/outages", "/api/v1/weak-points", "/data/meshviewer.json",
                 "/data/nodelist.json", *(f"/api/v1/nodes/{n}" for n in sorted(ids))]
        for path in paths:
            resp = await client.get(path)
            assert resp.status == 200, path
            assert leaks(await resp.json()) == [], path
    finally:
        await client.close()


def test_once_print_imports_the_other_communities_files(tmp_path: Path) -> None:
    lines = print_tables(tmp_path, "ff-other", f"""
[[meshviewer]]
url = "{FIXTURE}"
id_key = "{ID_KEY}"
[[openwifimap]]
url = "{OWM / 'client-view.json'}"
id_key = "{ID_KEY}"
node_prefix = "owm-"
""")
    infos = [line["payload"] for line in lines if line["topic"].endswith("/info")]
    assert Counter(i["source"]["kind"] for i in infos) == {"meshviewer": 10, "openwifimap": 55}
    assert_public_ids([i["node"] for i in infos])
    assert bridge_leaks(lines) == []


def test_a_file_of_another_kind_is_refused_naming_the_table_to_use() -> None:
    dresden = json.loads(DRESDEN.read_text())
    berlin = json.loads((OWM / "client-view.json").read_text())
    fixture = json.loads(FIXTURE.read_text())
    graph = {"batadv": {"nodes": [], "links": []}}
    d3 = {"meta": {"timestamp": "2014-05-01T12:00:00"}, "links": [{"source": 0, "target": 1}],
          "nodes": [{"id": "02:00:00:00:00:01", "name": "a", "macs": "02:00:00:00:00:01",
                     "geo": None, "flags": {"online": True, "gateway": False}}]}
    cases = [(lambda: meshviewer.parse(dresden, "f", 0), r"\[\[hopglass\]\] table \(nodes_url"),
             (lambda: meshviewer.parse(graph, "f", 0), r"graph\.json: read it with a \[\[hop"),
             (lambda: hopglass.parse(berlin, graph, "f", 0), r"\[\[openwifimap\]\]"),
             (lambda: hopglass.parse(dresden, dresden, "f", 0), r"not a hopglass graph\.json"),
             (lambda: openwifimap.parse(fixture, "f", 0), r"\[\[meshviewer\]\]"),
             (lambda: meshviewer.parse(d3, "f", 0), r"ffmap-d3 .* does not read")]
    for parse, message in cases:
        with pytest.raises(SourceError, match=message):
            parse()


@pytest.mark.parametrize(("stamp", "unix"), [
    ("2020-05-13T12:59:46+0200", 1589367586.0),  # yanic
    ("2022-06-15T21:30:03", 1655328603.0),  # Dresden's hopglass: no zone, UTC
    ("2026-06-10T18:12:37.890Z", 1781115157.89),  # the meshviewer frontend's fixture
    ("2019-04-03T05:06:54.123456Z", 1554268014.123456),  # OpenWiFiMap's newer API
    ("2020-05-13 10:59:46", 1589367586.0),
    (1589367586, 1589367586.0),  # seconds
    (1589367586000, 1589367586.0),  # JavaScript milliseconds
    ("@now", None), ("", None), (float("nan"), None), (True, None),
])
def test_timestamps_in_the_forms_generators_write(stamp: object, unix: float | None) -> None:
    got = parse_time(stamp)
    assert got is None if unix is None else got == pytest.approx(unix)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_odd_values_anywhere_in_openwifimap_documents_never_break_the_import(
        data: st.DataObject) -> None:
    docs = json.loads((OWM / "client-documents.json").read_text())
    sample = [docs[k] for k in sorted(docs)[:8]]
    parts: list[dict[str, Any]] = [*sample, *(lk for d in sample for lk in d["links"]),
                                   *(lk["olsr_ipv4"] for d in sample for lk in d["links"])]
    for _ in range(data.draw(st.integers(1, 6))):
        part = data.draw(st.sampled_from(parts))
        part[data.draw(st.sampled_from(sorted(part)))] = data.draw(ODD_JSON)
    snap = openwifimap.parse({"JSON": {"rows": [{"doc": d} for d in sample]}}, "fuzz", 1.6e9)
    messages = published("openwifimap", node_updates(snap, PublicIds(), OPTIONS))  # valid
    assert_public_ids(list(by_node(messages)))
