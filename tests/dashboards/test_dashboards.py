"""The Grafana dashboards, their provisioning files and the InfluxDB 1.x retention policies.

Structure is checked from the files; every query is run against a real InfluxDB 1.6.7
filled by the collector's v1 sink from the demo's simulated agents over a real Mosquitto,
with two real outages (one recovered, one still open) — see `fill.py`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import queries
from dashboards.queries import DATASOURCE, DATASOURCE_UID, Target
from meshmon.config import parse
from tests import servers
from tests.dashboards.fill import Filled, fill

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = queries.load_dashboards()
BY_UID = {d["uid"]: d for d in DASHBOARDS}
TARGETS = [t for d in DASHBOARDS for t in queries.targets(d)]
IQL = ROOT / "dashboards" / "influxdb1" / "meshmon.iql"
DB = "t_dashboards"
METRIC_MEASUREMENTS = ("node", "link", "iface", "radio")


# -- files -----------------------------------------------------------------------------------


def test_datasource_is_provisioned_from_environment_variables() -> None:
    doc = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/meshmon.yaml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert (ds["uid"], ds["type"], ds["access"]) == (DATASOURCE_UID, "influxdb", "proxy")
    assert ds["jsonData"]["version"] == "InfluxQL"
    assert ds["url"] == "${MESHMON_INFLUX_URL}"
    assert ds["jsonData"]["dbName"] == ds["database"] == "${MESHMON_INFLUX_DB}"
    assert ds["user"] == "${MESHMON_INFLUX_USER}"
    assert ds["secureJsonData"]["password"] == "${MESHMON_INFLUX_PASSWORD}"
    assert "password" not in ds  # only the encrypted field
    assert queries.duration_s(ds["jsonData"]["timeInterval"]) > 0


def test_dashboard_provider_loads_the_dashboard_folder() -> None:
    doc = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/meshmon.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    assert provider["folder"] == "meshmon"


def test_five_dashboards_with_unique_uids_and_titles() -> None:
    uids = [d["uid"] for d in DASHBOARDS]
    titles = [d["title"] for d in DASHBOARDS]
    assert sorted(uids) == ["meshmon-installer", "meshmon-link", "meshmon-node",
                            "meshmon-outages", "meshmon-overview"]
    assert len(set(titles)) == len(titles) and all(t.startswith("meshmon — ") for t in titles)
    for d in DASHBOARDS:
        assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36, d["uid"]
        assert len(d["uid"]) <= 40 and re.fullmatch(r"[a-z0-9-]+", d["uid"])
        assert "__inputs" not in d  # provisioned as is, not an import with placeholders


def _datasource_refs(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield f"{path}.{key}", value
            yield from _datasource_refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _datasource_refs(value, f"{path}[{i}]")


@pytest.mark.parametrize("uid", sorted(BY_UID))
def test_panels_targets_and_datasources(uid: str) -> None:
    d = BY_UID[uid]
    panels = list(queries.iter_panels(d))
    assert panels
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        gp = p["gridPos"]
        assert {"x", "y", "w", "h"} <= set(gp) and all(isinstance(gp[k], int) for k in gp)
        assert gp["x"] >= 0 and gp["w"] > 0 and gp["h"] > 0 and gp["x"] + gp["w"] <= 24
        for x in range(gp["x"], gp["x"] + gp["w"]):  # no two panels on one grid cell
            for y in range(gp["y"], gp["y"] + gp["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]
        assert p["title"] and p["targets"]
        refs = [t["refId"] for t in p["targets"]]
        assert all(refs) and len(set(refs)) == len(refs), p["title"]
        for t in p["targets"]:
            assert t["rawQuery"] is True and t["query"].strip(), p["title"]
            assert t.get("resultFormat") in ("time_series", "table"), p["title"]
            assert "$timeFilter" in t["query"], p["title"]  # Grafana's time range applies
    refs = list(_datasource_refs(d))
    assert refs
    for where, ref in refs:
        assert ref == DATASOURCE, f"{where}: {ref}"
    for ann in d["annotations"]["list"]:
        assert ann["target"]["rawQuery"] is True and "$timeFilter" in ann["target"]["query"]


@pytest.mark.parametrize("uid", sorted(BY_UID))
def test_queries_use_only_macros_and_variables_defined_before(uid: str) -> None:
    d = BY_UID[uid]
    macros = {"timeFilter", "__interval", "interval", "__interval_ms"}
    defined: set[str] = set()
    for var in d["templating"]["list"]:
        assert var["type"] == "query" and var["datasource"] == DATASOURCE
        assert var["query"].startswith("SHOW TAG VALUES FROM ")
        assert queries.variable_names(var["query"]) <= defined, var["name"]
        defined.add(var["name"])
    for t in queries.targets(d):
        assert queries.variable_names(t.query) <= macros | defined, t.name
        assert "$" not in queries.substitute(t.query, dict.fromkeys(defined, "x")), t.name


def test_substitution_of_macros_and_variables() -> None:
    q = ("SELECT mean(\"x\") FROM \"link\" WHERE \"src\" = '$node' AND \"dst\" =~ /^${node}$/ "
         "AND $timeFilter GROUP BY time($__interval) [[node]]")
    out = queries.substitute(q, {"node": "a.b-1"}, interval="30s")
    assert out == ("SELECT mean(\"x\") FROM \"link\" WHERE \"src\" = 'a.b-1' AND \"dst\" =~ "
                   "/^a\\.b-1$/ AND time > now() - 1h GROUP BY time(30s) a.b-1")
    with pytest.raises(KeyError):
        queries.substitute("SELECT 1 WHERE x = '$nope'", {})


# -- queries against a filled InfluxDB -------------------------------------------------------


@pytest.fixture(scope="module")
def filled(influxdb1: servers.Server, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    mosquitto = servers.start_mosquitto()
    try:
        return asyncio.run(fill(influxdb1.url, DB, mosquitto.port,
                                tmp_path_factory.mktemp("dashboards")))
    finally:
        mosquitto.stop()


def run_on(server: servers.Server) -> Any:
    def run(q: str) -> dict[str, Any]:
        return queries.influxql(server.url, DB, q)
    return run


def _values(uid: str, server: servers.Server, prefer: dict[str, str]) -> dict[str, str]:
    return queries.resolve_variables(BY_UID[uid], run_on(server), prefer)


def _run(target: Target, values: dict[str, str], server: servers.Server) -> dict[str, Any]:
    q = queries.substitute(target.query, values, interval=queries.effective_interval(target))
    return queries.influxql(server.url, DB, q)


@pytest.mark.parametrize("uid", sorted(BY_UID))
def test_template_variable_queries_run(uid: str, filled: Filled,
                                      influxdb1: servers.Server) -> None:
    values = _values(uid, influxdb1, {})
    assert set(values) == {v.name for v in queries.variables(BY_UID[uid])}
    if "node" in values:
        assert values["node"] in filled.nodes
    if "dst" in values:  # a link whose other end is a node
        assert values["dst"] in filled.nodes and values["dst"] != values["src"]


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
@pytest.mark.parametrize("choice", ["first", "outage"])
def test_every_query_returns_data(target: Target, choice: str, filled: Filled,
                                  influxdb1: servers.Server) -> None:
    """With the variables' first values (what Grafana shows on load) and with the node that
    had the outage (what the outage panels must show)."""
    prefer = {} if choice == "first" else {"node": filled.recovered, "src": filled.recovered}
    values = _values(target.dashboard, influxdb1, prefer)
    result = _run(target, values, influxdb1)
    assert queries.has_data(result), f"{target.name}: no data for {values}"


def _rows(uid: str, title: str, values: dict[str, str], server: servers.Server,
          panel_type: str = "") -> list[dict]:
    (target,) = [t for t in queries.targets(BY_UID[uid]) if t.title == title
                 and (not panel_type or t.panel_type == panel_type)]
    return queries.rows(_run(target, values, server))


def test_outage_panels_show_the_outages(filled: Filled, influxdb1: servers.Server) -> None:
    rows = _rows("meshmon-outages", "Outages (one row per incident)", {}, influxdb1)
    by_node: dict[str, list[dict]] = {}
    for r in rows:
        by_node.setdefault(r["node"], []).append(r)
    recovered = by_node[filled.recovered]
    assert [r["status"] for r in recovered] == ["firing", "resolved"]
    assert recovered[0]["id"] == recovered[1]["id"] and recovered[1]["duration_s"] > 0
    assert [r["status"] for r in by_node[filled.down]] == ["firing"]
    assert by_node[filled.down][0]["affected"] >= 1  # it cuts nodes off
    assert filled.recovered in by_node[filled.recovered][0]["cause"]

    (current,) = _rows("meshmon-overview", "Current outages", {}, influxdb1)
    assert current["node"] == filled.down and current["cut off"] >= 1
    (open_now,) = _rows("meshmon-overview", "Open outages", {}, influxdb1, "stat")
    assert open_now["open outages"] == 1
    (cut_off,) = _rows("meshmon-overview", "Nodes cut off by open outages", {}, influxdb1)
    assert cut_off["nodes cut off"] == current["cut off"]

    marks = _rows("meshmon-overview", "Outages", {}, influxdb1, "")  # the annotation
    assert {m["status"] for m in marks} == {"firing", "resolved"}
    assert any(filled.recovered in m["summary"] for m in marks)

    events = _rows("meshmon-node", "Events of $node: outages, alerts, online/offline",
                   {"node": filled.recovered}, influxdb1)
    outage = [e for e in events if e["kind"] == "outage"]
    assert [e["status"] for e in outage] == ["resolved", "firing"]  # newest first
    assert {"offline", "online"} <= {e["kind"] for e in events}


def test_nodes_online_counts_nodes_not_reports(filled: Filled,
                                               influxdb1: servers.Server) -> None:
    rows = _rows("meshmon-overview", "Nodes online", {}, influxdb1, "timeseries")
    counts = [r["nodes online"] for r in rows if r.get("nodes online")]
    assert counts and max(counts) == len(filled.nodes)


def test_link_dashboard_shows_both_ends(filled: Filled, influxdb1: servers.Server) -> None:
    values = _values("meshmon-link", influxdb1, {"src": filled.recovered})
    rows = _rows("meshmon-link", "Latest sample of each direction", values, influxdb1)
    directions = {(r["src"], r["dst"]) for r in rows if r["kind"] == "wifi"}
    assert directions == {(values["src"], values["dst"]), (values["dst"], values["src"])}


# -- InfluxDB 1.x retention policies and continuous queries ----------------------------------


def _post(server: servers.Server, q: str) -> dict[str, Any]:
    data = urllib.parse.urlencode({"q": q}).encode()
    with urllib.request.urlopen(f"{server.url}/query", data, timeout=30) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


CQ = re.compile(r'CREATE CONTINUOUS QUERY "(\w+)" ON "\w+" .*?BEGIN\s+(.*?)\s+END;', re.S)


@pytest.fixture(scope="module")
def downsampled(filled: Filled, influxdb1: servers.Server) -> Iterator[list[str]]:
    """The .iql applied to the test database; every continuous query's SELECT … INTO run by
    hand over the test data (a CQ itself would only run at the next 5-minute boundary)."""
    text = IQL.read_text().replace('"meshmon"', f'"{DB}"')
    answer = _post(influxdb1, text)  # as the documented curl command sends it
    names = [m.group(1) for m in CQ.finditer(text)]
    try:
        assert all("error" not in r for r in answer["results"]), answer
        assert len(answer["results"]) == 3 + len(names)
        for m in CQ.finditer(text):
            select = re.sub(r"\s+GROUP BY time", " WHERE time > now() - 1h GROUP BY time",
                            m.group(2), count=1)
            (result,) = _post(influxdb1, select)["results"]
            written = queries.rows(result)[0]["written"]
            assert written > 0, m.group(1)
        yield names
    finally:
        for name in names:
            _post(influxdb1, f'DROP CONTINUOUS QUERY "{name}" ON "{DB}"')


def test_retention_policies_and_continuous_queries(downsampled: list[str],
                                                   influxdb1: servers.Server) -> None:
    rps = {r["name"]: r for r in queries.rows(
        queries.influxql(influxdb1.url, DB, f'SHOW RETENTION POLICIES ON "{DB}"'))}
    assert (rps["autogen"]["duration"], rps["autogen"]["default"]) == ("720h0m0s", True)
    assert (rps["year_5m"]["duration"], rps["year_5m"]["default"]) == ("8736h0m0s", False)
    cqs = {r["name"] for r in queries.rows(queries.influxql(influxdb1.url, DB,
                                                           "SHOW CONTINUOUS QUERIES"))}
    assert set(downsampled) <= cqs
    assert sorted(downsampled) == sorted(f"{m}_5m" for m in (*METRIC_MEASUREMENTS, "event"))
    # the downsampled measurements: same names and fields, 5-minute points
    for m in (*METRIC_MEASUREMENTS, "event"):
        result = queries.influxql(influxdb1.url, DB, f'SELECT * FROM "year_5m"."{m}"')
        assert queries.has_data(result), m
        times = {row["time"] for row in queries.rows(result)}
        assert all(t % 300_000 == 0 for t in times), m
    link = queries.rows(queries.influxql(
        influxdb1.url, DB, 'SELECT "signal_dbm", "tq", "tx_retries" FROM "year_5m"."link" '
                           "WHERE \"kind\" = 'wifi' LIMIT 1"))
    assert link and link[0]["signal_dbm"] < 0
    # applying the file again changes nothing and fails nothing
    again = _post(influxdb1, IQL.read_text().replace('"meshmon"', f'"{DB}"'))
    assert all("error" not in r for r in again["results"])


# rates need two 5-minute points, and the test data spans about 20 s
METRIC_TARGETS = [t for t in TARGETS if t.kind == "panel" and '"event"' not in t.query
                  and "derivative" not in t.query]


@pytest.mark.parametrize("target", METRIC_TARGETS, ids=[t.name for t in METRIC_TARGETS])
def test_metric_panels_read_the_downsampled_policy(target: Target, downsampled: list[str],
                                                   influxdb1: servers.Server) -> None:
    """As docs/influxdb.md says: `FROM "year_5m"."link"` instead of `FROM "link"`."""
    values = _values(target.dashboard, influxdb1, {})
    measurement = "|".join(METRIC_MEASUREMENTS)
    yearly = re.sub(rf'FROM "({measurement})"', r'FROM "year_5m"."\1"', target.query)
    assert yearly != target.query
    yearly_target = dataclasses.replace(target, query=yearly, interval="5m")
    assert queries.has_data(_run(yearly_target, values, influxdb1)), yearly


# -- preview ---------------------------------------------------------------------------------


def test_preview_draws_every_dashboard(filled: Filled, influxdb1: servers.Server,
                                       tmp_path: Path) -> None:
    from dashboards import preview

    pngs = preview.render_all(run_on(influxdb1), tmp_path, {"node": filled.recovered},
                              keep_html=True)
    assert sorted(p.name for p in pngs) == sorted(f"dashboard-{u}.png" for u in BY_UID)
    for png in pngs:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(head[16:20], "big")
        height = int.from_bytes(head[20:24], "big")
        assert width == preview.WIDTH and height > 600, png.name
        page = png.with_suffix(".html").read_text()
        assert "No data" not in page and "query error" not in page, png.name
        assert "not a Grafana screenshot" in page
    overview = (tmp_path / "dashboard-meshmon-overview.html").read_text()
    assert filled.down in overview  # the open outage is in the "Current outages" table


# -- docs ------------------------------------------------------------------------------------


def test_grafana_doc_shows_a_preview_of_every_dashboard() -> None:
    text = (ROOT / "docs" / "grafana.md").read_text()
    for uid in BY_UID:
        assert f"(img/dashboard-{uid}.png)" in text, uid
        png = ROOT / "docs" / "img" / f"dashboard-{uid}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert "not Grafana screenshots" in text


def test_deploy_recipe_collector_config_and_unit() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    (toml,) = re.findall(r"```toml\n(.*?)```", text, re.S)
    cfg = parse(toml, "docs/deploy.md")
    assert (cfg.mqtt.broker, cfg.mqtt.username) == ("external", "collector")
    assert (cfg.influxdb.enabled, cfg.influxdb.api, cfg.influxdb.database) == (True, "v1",
                                                                                "meshmon")
    assert cfg.storage.path == "/var/lib/meshmon/meshmon.sqlite"
    (unit,) = re.findall(r"```ini\n(.*?)```", text, re.S)
    assert "ExecStart=/opt/meshmon/bin/meshmon serve -c /etc/meshmon/meshmon.toml" in unit
    assert "User=meshmon" in unit and "StateDirectory=meshmon" in unit
    security = (ROOT / "docs" / "security.md").read_text()  # the ACL a node cannot escape
    assert "pattern write meshmon/v1/node/%u/report" in security
    assert "pattern write meshmon/v1/node/%u/#" not in security
    assert "use_username_as_clientid true" in text
