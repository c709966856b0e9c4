"""Every InfluxQL query of the Grafana dashboards in this folder, ready to run without Grafana.

The dashboards (`dashboards/*.json`) use raw InfluxQL only: each panel target has
`rawQuery: true` and its text in `query`; template variables are of type `query` with
InfluxQL (`SHOW TAG VALUES …`); annotations carry their InfluxQL in `target.query`.
This module finds all of them, resolves the template variables the way Grafana does
(in order, each variable's query run with the values of the ones before it, first value
unless told otherwise) and substitutes Grafana's macros, so a test — or anyone with an
InfluxDB — can run every query a dashboard would send.

Standard library only: `python -m dashboards.queries --url http://127.0.0.1:8086 --db meshmon`
runs every query against that database and reports the ones that fail or come back empty.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parent
DATASOURCE_UID = "meshmon-influxdb"
"""The `uid` of the provisioned datasource (provisioning/datasources/meshmon.yaml)."""
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}

DEFAULT_TIME_FILTER = "time > now() - 1h"
DEFAULT_INTERVAL = "10s"

# $name, ${name}, ${name:format}, [[name]]: Grafana's three variable syntaxes
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]")
_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}/]")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Target:
    """One query a dashboard sends: a panel target or an annotation."""

    dashboard: str  # dashboard uid
    panel_id: int | None  # None for an annotation
    title: str  # panel title or annotation name
    ref_id: str
    query: str  # raw InfluxQL with Grafana macros and variables
    kind: str = "panel"  # "panel" or "annotation"
    result_format: str = "time_series"
    interval: str | None = None  # the panel's minimum interval, if set
    panel_type: str = ""

    @property
    def name(self) -> str:
        """A readable id: `uid/panel title/refId`."""
        return f"{self.dashboard}/{self.title}/{self.ref_id}"


@dataclass(frozen=True)
class Variable:
    """A template variable of type `query`."""

    name: str
    query: str
    label: str = ""


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[dict[str, Any]]:
    """All dashboards (`*.json`) of a folder, sorted by file name."""
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including the panels inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _query_text(obj: Mapping[str, Any]) -> str:
    q = obj.get("query", "")
    if isinstance(q, Mapping):  # newer Grafana stores variable queries as objects
        q = q.get("query", "")
    return str(q)


def targets(dashboard: Mapping[str, Any]) -> list[Target]:
    """Every query of one dashboard: panel targets, then annotations."""
    uid = str(dashboard.get("uid", ""))
    out: list[Target] = []
    for panel in iter_panels(dashboard):
        for t in panel.get("targets", []):
            out.append(Target(
                dashboard=uid, panel_id=panel.get("id"), title=str(panel.get("title", "")),
                ref_id=str(t.get("refId", "")), query=_query_text(t),
                result_format=str(t.get("resultFormat", "time_series")),
                interval=panel.get("interval") or None, panel_type=str(panel.get("type", "")),
            ))  # fmt: skip
    for ann in dashboard.get("annotations", {}).get("list", []):
        target = ann.get("target") or {}
        query = _query_text(target) or _query_text(ann)
        if query:
            out.append(Target(
                dashboard=uid, panel_id=None, title=str(ann.get("name", "")),
                ref_id=str(target.get("refId", "annotation")), query=query, kind="annotation",
                result_format="table",
            ))  # fmt: skip
    return out


def variables(dashboard: Mapping[str, Any]) -> list[Variable]:
    """The template variables of type `query`, in dashboard order."""
    return [
        Variable(str(v["name"]), _query_text(v), str(v.get("label", "")))
        for v in dashboard.get("templating", {}).get("list", [])
        if v.get("type") == "query"
    ]


def variable_names(query: str) -> set[str]:
    """The names of the variables and macros a query refers to."""
    return {next(g for g in (m[0], m[1], m[3]) if g) for m in _VARIABLE.findall(query)}


def duration_s(text: str) -> float:
    """A Grafana/InfluxQL duration (`10s`, `5m`, `1h`) in seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def substitute(
    query: str,
    values: Mapping[str, str],
    *,
    time_filter: str = DEFAULT_TIME_FILTER,
    interval: str = DEFAULT_INTERVAL,
    range_s: float = 3600,
) -> str:
    """The query as Grafana would send it: macros and template variables replaced.

    `$timeFilter` becomes `time_filter`, `$__interval`/`$interval` the interval; a
    variable used inside `/regex/` is regex-escaped (as Grafana does), elsewhere inserted
    as is. An unknown variable raises KeyError: a query must not go out with a `$`.
    """
    macros = {
        "timeFilter": time_filter,
        "__interval": interval,
        "interval": interval,
        "__interval_ms": str(int(duration_s(interval) * 1000)),
        "__range": f"{int(range_s)}s",
        "__range_s": str(int(range_s)),
        "__range_ms": str(int(range_s * 1000)),
    }

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(5) or ""
        if name in macros:
            return macros[name]
        if name not in values:
            raise KeyError(f"no value for ${name} in: {query}")
        value = values[name]
        if fmt == "regex" or (not fmt and _inside_regex(query, m.start())):
            return _REGEX_SPECIAL.sub(lambda c: "\\" + c.group(0), value)
        return value

    return _VARIABLE.sub(replace, query)


def _inside_regex(query: str, pos: int) -> bool:
    """True if `pos` is inside a `/…/` literal (an odd number of unescaped `/` before it,
    not counting those inside quotes)."""
    slashes, quote, i = 0, "", 0
    while i < pos:
        c = query[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"" and slashes % 2 == 0:
            quote = c
        elif c == "\\":
            i += 1
        elif c == "/":
            slashes += 1
        i += 1
    return slashes % 2 == 1


def effective_interval(target: Target, default: str = DEFAULT_INTERVAL) -> str:
    """`$__interval` for a target: the panel's minimum interval if larger than `default`."""
    if target.interval and duration_s(target.interval) > duration_s(default):
        return target.interval
    return default


# -- running queries -------------------------------------------------------------------------


class InfluxQLError(RuntimeError):
    """The server answered with an error for a statement."""


def influxql(
    url: str, db: str, q: str, *, username: str = "", password: str = "", timeout: float = 30
) -> dict[str, Any]:
    """Run InfluxQL on `url` (InfluxDB 1.x `/query`, or 2.x/3.x's v1-compatible one);
    return the first statement's result. Raises InfluxQLError on an error answer."""
    params = {"db": db, "q": q, "epoch": "ms"}
    req = urllib.request.Request(f"{url.rstrip('/')}/query?" + urllib.parse.urlencode(params))
    if username:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise InfluxQLError(f"HTTP {e.code}: {e.read()[:300]!r}") from e
    if "error" in body:
        raise InfluxQLError(str(body["error"]))
    result: dict[str, Any] = body["results"][0]
    if "error" in result:
        raise InfluxQLError(str(result["error"]))
    return result


def rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a result, each a dict of column → value plus the series' tags."""
    out: list[dict[str, Any]] = []
    for series in result.get("series", []):
        tags = series.get("tags") or {}
        for values in series.get("values", []):
            row = dict(zip(series["columns"], values, strict=True))
            row.update(tags)
            out.append(row)
    return out


def has_data(result: Mapping[str, Any]) -> bool:
    """True if some row has a value that is not null in a column other than `time`."""
    for series in result.get("series", []):
        value_columns = [i for i, c in enumerate(series["columns"]) if c != "time"]
        for values in series.get("values", []):
            if any(values[i] is not None for i in value_columns):
                return True
    return False


def tag_values(result: Mapping[str, Any]) -> list[str]:
    """The values of a `SHOW TAG VALUES` result (column `value`), in order."""
    return [str(r["value"]) for r in rows(result) if "value" in r]


def resolve_variables(
    dashboard: Mapping[str, Any],
    run: Callable[[str], Mapping[str, Any]],
    prefer: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A value for every template variable, as Grafana picks them on load: in order, each
    variable's query (with the values chosen so far) is run and its first value taken,
    unless `prefer` names a value the query returned. Raises LookupError if a variable's
    query returns nothing."""
    prefer = prefer or {}
    chosen: dict[str, str] = {}
    for var in variables(dashboard):
        options = tag_values(run(substitute(var.query, chosen)))
        if not options:
            raise LookupError(f"{dashboard.get('uid')}: variable ${var.name} has no values")
        want = prefer.get(var.name)
        chosen[var.name] = want if want in options else options[0]
    return chosen


@dataclass(frozen=True)
class Outcome:
    """What one target returned."""

    target: Target
    query: str  # as sent
    result: dict[str, Any] | None
    error: str = ""

    @property
    def ok(self) -> bool:
        """No error and some data."""
        return not self.error and self.result is not None and has_data(self.result)


def run_dashboard(
    dashboard: Mapping[str, Any],
    run: Callable[[str], dict[str, Any]],
    prefer: Mapping[str, str] | None = None,
    *,
    time_filter: str = DEFAULT_TIME_FILTER,
    interval: str = DEFAULT_INTERVAL,
) -> tuple[dict[str, str], list[Outcome]]:
    """Resolve the variables, then run every target; errors are caught per target."""
    values = resolve_variables(dashboard, run, prefer)
    outcomes: list[Outcome] = []
    for target in targets(dashboard):
        q = substitute(target.query, values, time_filter=time_filter,
                       interval=effective_interval(target, interval))
        try:
            outcomes.append(Outcome(target, q, run(q)))
        except InfluxQLError as exc:
            outcomes.append(Outcome(target, q, None, str(exc)))
    return values, outcomes


def main(argv: list[str] | None = None) -> int:
    """Run every dashboard query against an InfluxDB; exit 1 if any fails or is empty."""
    ap = argparse.ArgumentParser(prog="python -m dashboards.queries", description=main.__doc__)
    ap.add_argument("--url", default="http://127.0.0.1:8086")
    ap.add_argument("--db", default="meshmon")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--time-filter", default=DEFAULT_TIME_FILTER)
    ap.add_argument("--interval", default=DEFAULT_INTERVAL)
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                    help="prefer this value for a template variable (if its query returns it)")
    ap.add_argument("--dir", type=Path, default=DASHBOARD_DIR)
    args = ap.parse_args(argv)
    prefer = dict(v.split("=", 1) for v in args.var)

    def run(q: str) -> dict[str, Any]:
        return influxql(args.url, args.db, q, username=args.user, password=args.password)

    failed = 0
    for dashboard in load_dashboards(args.dir):
        try:
            values, outcomes = run_dashboard(dashboard, run, prefer,
                                             time_filter=args.time_filter, interval=args.interval)
        except (LookupError, InfluxQLError) as exc:
            print(f"FAIL {dashboard.get('uid')}: {exc}")
            failed += 1
            continue
        print(f"{dashboard.get('uid')}: {values or 'no variables'}")
        for o in outcomes:
            state = "ok   " if o.ok else ("ERROR" if o.error else "EMPTY")
            failed += not o.ok
            print(f"  {state} {o.target.name}" + (f": {o.error}" if o.error else ""))
            if not o.ok:
                print(f"        {o.query}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
