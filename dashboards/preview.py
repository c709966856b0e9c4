"""A picture of each dashboard without Grafana: its layout from the JSON, its data from InfluxDB.

For every dashboard in this folder the preview resolves the template variables, runs every
panel's query (through `dashboards.queries`, exactly as the tests do) and draws the panels
where their `gridPos` puts them: time series as lines or bars (outage annotations as red
marks), stats as numbers, tables as tables, bar gauges as bars. It is a sketch of what
Grafana shows, not Grafana: units, colours and most options are simplified.

    python -m dashboards.preview --url http://127.0.0.1:8086 --db meshmon --out docs/img

writes `dashboard-<uid>.png` (and the HTML next to it with `--html`) using Debian's
Chromium through Playwright (`/usr/bin/chromium`; `playwright install` is never needed).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboards import queries

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
WIDTH = 1600  # px for Grafana's 24 columns
CELL, GAP = 30, 8  # Grafana's grid: row height and margin (px)
PALETTE = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9",
           "#705da0", "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c"]
MAX_SERIES = 24
MAX_ROWS = 14


@dataclass
class Series:
    """One line of a time series panel."""

    name: str
    points: list[tuple[float, float]]  # (ms, value)
    right: bool = False


@dataclass
class PanelData:
    """A panel with what its queries returned."""

    panel: dict[str, Any]
    outcomes: list[queries.Outcome] = field(default_factory=list)


@dataclass
class DashboardView:
    """A dashboard, its variable values, its panels' data and its annotations."""

    dashboard: dict[str, Any]
    values: dict[str, str]
    panels: list[PanelData]
    annotations: list[tuple[float, str]]  # (ms, text)


# -- collecting ------------------------------------------------------------------------------


def collect(
    dashboard: dict[str, Any],
    run: Any,
    prefer: Mapping[str, str] | None = None,
    *,
    time_filter: str = queries.DEFAULT_TIME_FILTER,
    interval: str = queries.DEFAULT_INTERVAL,
) -> DashboardView:
    """Run every query of one dashboard and keep the results by panel."""
    values, outcomes = queries.run_dashboard(dashboard, run, prefer, time_filter=time_filter,
                                             interval=interval)
    by_panel: dict[int, list[queries.Outcome]] = {}
    annotations: list[tuple[float, str]] = []
    for o in outcomes:
        if o.target.kind == "annotation":
            for row in queries.rows(o.result or {}):
                annotations.append((float(row["time"]), str(row.get("summary", ""))))
        elif o.target.panel_id is not None:
            by_panel.setdefault(o.target.panel_id, []).append(o)
    panels = [PanelData(p, by_panel.get(int(p.get("id", -1)), []))
              for p in queries.iter_panels(dashboard) if p.get("type") != "row"]
    return DashboardView(dashboard, values, panels, sorted(annotations))


# -- naming and formatting -------------------------------------------------------------------


def _alias(pattern: str, measurement: str, column: str, tags: Mapping[str, str]) -> str:
    if not pattern:
        tag_text = ", ".join(f"{k}: {v}" for k, v in sorted(tags.items()))
        return f"{measurement}.{column}" + (f" {{{tag_text}}}" if tag_text else "")
    out = pattern.replace("$col", column).replace("$m", measurement)
    return re.sub(r"\$tag_(\w+)", lambda m: tags.get(m.group(1), ""), out).strip()


def _js_regex(text: str) -> re.Pattern[str]:
    if len(text) > 1 and text.startswith("/") and text.rfind("/") > 0:
        text = text[1:text.rfind("/")]
    return re.compile(text)


def _override_matches(panel: Mapping[str, Any], name: str, prop: str) -> Any:
    """The value an override sets for property `prop` on the field called `name`."""
    found = None
    for ov in panel.get("fieldConfig", {}).get("overrides", []):
        m = ov.get("matcher", {})
        if m.get("id") == "byRegexp":
            hit = bool(_js_regex(str(m.get("options", ""))).search(name))
        elif m.get("id") == "byName":
            hit = m.get("options") == name
        else:
            continue
        for p in ov.get("properties", []):
            if hit and p.get("id") == prop:
                found = p.get("value")
    return found


def fmt_value(value: Any, unit: str = "") -> str:
    """A value as a short text, roughly as Grafana would show it."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    v = float(value)
    if unit == "s":
        for size, name in ((86400, "day"), (3600, "hour"), (60, "min")):
            if abs(v) >= size:
                return f"{v / size:.1f} {name}"
        return f"{v:.1f} s"
    if unit in ("bytes", "bps"):
        suffix = "B" if unit == "bytes" else "b/s"
        step = 1024.0 if unit == "bytes" else 1000.0
        for prefix in ("", "k", "M", "G", "T"):
            if abs(v) < step:
                return f"{v:.3g} {prefix}{suffix}".replace(" k", " K" if unit == "bytes" else " k")
            v /= step
        return f"{v:.3g} P{suffix}"
    text = f"{v:.0f}" if v == int(v) and abs(v) < 1e6 else f"{v:.3g}" if abs(v) >= 100 \
        else f"{v:.2f}"
    units = {"dBm": " dBm", "dB": " dB", "percent": " %", "Mbits": " Mb/s", "pps": " /s"}
    return text + units.get(unit, "")


def _clock(ms: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000))


# -- panel bodies ----------------------------------------------------------------------------


def series_of(pd: PanelData) -> list[Series]:
    """The lines of a time series panel; fields with only nulls are left out (as the
    dashboards' `allIsNull` override hides them in Grafana)."""
    out: list[Series] = []
    targets = {t.get("refId"): t for t in pd.panel.get("targets", [])}
    for o in pd.outcomes:
        alias = str(targets.get(o.target.ref_id, {}).get("alias", ""))
        for s in (o.result or {}).get("series", []):
            cols = s["columns"]
            for ci, col in enumerate(cols):
                if col == "time":
                    continue
                pts = [(float(v[0]), float(v[ci])) for v in s["values"]
                       if isinstance(v[ci], int | float) and not isinstance(v[ci], bool)]
                if not pts:
                    continue
                name = _alias(alias, s.get("name", ""), col, s.get("tags") or {})
                right = _override_matches(pd.panel, name, "custom.axisPlacement") == "right"
                out.append(Series(name, pts, right))
    return out


def svg_timeseries(pd: PanelData, width: int, height: int,
                   annotations: Sequence[tuple[float, str]]) -> str:
    """A time series panel as SVG: lines (or bars), a left and maybe a right axis."""
    series = series_of(pd)[:MAX_SERIES]
    if not series:
        return '<div class="novalue">No data</div>'
    defaults = pd.panel.get("fieldConfig", {}).get("defaults", {})
    unit = str(defaults.get("unit", ""))
    bars = defaults.get("custom", {}).get("drawStyle") == "bars"
    legend_h = min(16 * math.ceil(len(series) / 3), height // 3)
    plot_h = height - legend_h - 22
    left, right_pad = 62, 62 if any(s.right for s in series) else 12
    plot_w = width - left - right_pad
    ts = [p[0] for s in series for p in s.points]
    t0, t1 = min(ts), max(ts)
    if t1 <= t0:
        t0, t1 = t0 - 30_000, t1 + 30_000

    def scale(side_right: bool) -> tuple[float, float]:
        vals = [p[1] for s in series if s.right == side_right for p in s.points]
        if not vals:
            return 0.0, 1.0
        lo, hi = min(vals), max(vals)
        if defaults.get("min") is not None and not side_right:
            lo = min(lo, float(defaults["min"]))
        if bars:
            lo = min(lo, 0.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        pad = (hi - lo) * 0.05
        return lo - (0 if bars or lo == 0 else pad), hi + pad

    scales = {False: scale(False), True: scale(True)}

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(v: float, side: bool) -> float:
        lo, hi = scales[side]
        return 4 + (hi - v) / (hi - lo) * plot_h

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for frac in (0.0, 0.5, 1.0):
        yy = 4 + frac * plot_h
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" '
                     'class="grid"/>')
        for side, anchor, xx in ((False, "end", left - 4), (True, "start", left + plot_w + 4)):
            if side and not any(s.right for s in series):
                continue
            lo, hi = scales[side]
            v = hi - frac * (hi - lo)
            u = unit
            if side:
                u = str(_override_matches(pd.panel, next(s.name for s in series if s.right),
                                          "unit") or "")
            parts.append(f'<text x="{xx}" y="{yy + 4:.1f}" text-anchor="{anchor}" '
                         f'class="axis">{html.escape(fmt_value(v, u))}</text>')
    for t, label in ((t0, _clock(t0)), (t1, _clock(t1))):
        parts.append(f'<text x="{x(t):.1f}" y="{plot_h + 18}" text-anchor="middle" '
                     f'class="axis">{label} UTC</text>')
    for t, text in annotations:
        if t0 <= t <= t1:
            parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="4" y2="{plot_h + 4}" '
                         f'class="anno"><title>{html.escape(text)}</title></line>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        if bars:
            n = max(1, len(series))
            bw = max(2.0, plot_w / max(2, len({p[0] for p in s.points})) / (n + 1))
            for t, v in s.points:
                top, base = y(max(v, 0), s.right), y(0, s.right)
                parts.append(f'<rect x="{x(t) - bw * n / 2 + i * bw:.1f}" y="{top:.1f}" '
                             f'width="{bw:.1f}" height="{max(1.0, base - top):.1f}" '
                             f'fill="{color}"/>')
        else:
            pts = " ".join(f"{x(t):.1f},{y(v, s.right):.1f}" for t, v in s.points)
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                         'stroke-width="1.4"/>')
            if len(s.points) == 1:
                t, v = s.points[0]
                parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v, s.right):.1f}" r="2.5" '
                             f'fill="{color}"/>')
    ly = plot_h + 24
    col_w = width // 3
    for i, s in enumerate(series):
        row, col = divmod(i, 3)
        yy = ly + row * 16 + 10
        if yy > height - 2:
            break
        color = PALETTE[i % len(PALETTE)]
        label = s.name + (" (right)" if s.right else "")
        room = int((col_w - 24) / 6.0)  # characters that fit in one legend column
        name = html.escape(label if len(label) <= room else label[:room - 1] + "…")
        parts.append(f'<rect x="{col * col_w + 6}" y="{yy - 8}" width="10" height="3" '
                     f'fill="{color}"/><text x="{col * col_w + 20}" y="{yy - 3}" '
                     f'class="legend">{name}</text>')
    parts.append("</svg>")
    return "".join(parts)


def table_rows(pd: PanelData) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a table panel after the transformations the dashboards use."""
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    for o in pd.outcomes:
        for s in (o.result or {}).get("series", []):
            tags = s.get("tags") or {}
            for name in [*tags, *s["columns"]]:
                col = "Time" if name == "time" else name
                if col not in columns:
                    columns.append(col)
            for values in s["values"]:
                row = {("Time" if c == "time" else c): v
                       for c, v in zip(s["columns"], values, strict=True)}
                row.update(tags)
                rows.append(row)
    if "Time" in columns:  # like Grafana: time first
        columns.remove("Time")
        columns.insert(0, "Time")
    for tr in pd.panel.get("transformations", []):
        opts = tr.get("options", {})
        if tr.get("id") == "groupBy":
            columns, rows = _group_by(columns, rows, opts.get("fields", {}))
        elif tr.get("id") == "organize":
            excluded = {k for k, v in opts.get("excludeByName", {}).items() if v}
            rename = opts.get("renameByName", {})
            columns = [rename.get(c, c) for c in columns if c not in excluded]
            rows = [{rename.get(k, k): v for k, v in r.items() if k not in excluded}
                    for r in rows]
        elif tr.get("id") == "sortBy":
            for spec in reversed(opts.get("sort", [])):
                _sort_rows(rows, str(spec["field"]), bool(spec.get("desc")))
    for spec in pd.panel.get("options", {}).get("sortBy", []):
        if spec.get("displayName") in columns:
            _sort_rows(rows, str(spec["displayName"]), bool(spec.get("desc")))
    return columns, rows


def _sort_rows(rows: list[dict[str, Any]], name: str, desc: bool) -> None:
    """Sort in place by one column, rows without a value last either way."""
    present = [r for r in rows if r.get(name) is not None]
    present.sort(key=lambda r: r[name], reverse=desc)
    rows[:] = present + [r for r in rows if r.get(name) is None]


def _group_by(columns: list[str], rows: list[dict[str, Any]],
              spec: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    keys = [c for c in columns if spec.get(c, {}).get("operation") == "groupby"]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r.get("Time") or 0):
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    out_cols = list(keys)
    aggs = [(c, a) for c in columns for a in spec.get(c, {}).get("aggregations", [])
            if spec.get(c, {}).get("operation") == "aggregate"]
    out_cols += [f"{c} ({a})" for c, a in aggs]
    out_rows = []
    for key, members in groups.items():
        row = dict(zip(keys, key, strict=True))
        for c, a in aggs:
            vals: list[Any] = [m[c] for m in members if m.get(c) is not None]
            if a == "first":
                row[f"{c} ({a})"] = vals[0] if vals else None
            elif a == "last":
                row[f"{c} ({a})"] = vals[-1] if vals else None
            elif a == "max":
                row[f"{c} ({a})"] = max(vals) if vals else None
        out_rows.append(row)
    return out_cols, out_rows


def html_table(pd: PanelData) -> str:
    """A table panel as an HTML table (time columns as UTC clock times)."""
    columns, rows = table_rows(pd)
    if not rows:
        return f'<div class="novalue">{html.escape(_no_value(pd) or "No data")}</div>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows[:MAX_ROWS]:
        cells = []
        for c in columns:
            v = r.get(c)
            unit = str(_override_matches(pd.panel, c, "unit") or "")
            text = _clock(float(v)) if c in ("Time", "started") and v is not None \
                else fmt_value(v, unit)
            cls = f' class="st-{html.escape(str(v))}"' if isinstance(v, str) and v in (
                "firing", "resolved", "critical", "warning") else ""
            cells.append(f"<td{cls}>{html.escape(text[:90])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<div class="more">… {len(rows) - MAX_ROWS} more rows</div>' \
        if len(rows) > MAX_ROWS else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _no_value(pd: PanelData) -> str:
    return str(pd.panel.get("fieldConfig", {}).get("defaults", {}).get("noValue", ""))


def html_stat(pd: PanelData) -> str:
    """A stat panel: its first series reduced by the panel's calculation (`lastNotNull`,
    `max` or `mean`), after a `limit` transformation (the newest rows) if it has one."""
    unit = str(pd.panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""))
    calcs = pd.panel.get("options", {}).get("reduceOptions", {}).get("calcs") or ["lastNotNull"]
    limit = next((int(t.get("options", {}).get("limitField", 10))
                  for t in pd.panel.get("transformations", []) if t.get("id") == "limit"), 0)
    for s in series_of(pd):
        values = [v for _, v in s.points][-limit:]  # newest first after sortBy Time desc
        value = max(values) if calcs[0] == "max" else \
            sum(values) / len(values) if calcs[0] == "mean" else values[-1]
        return f'<div class="stat">{html.escape(fmt_value(value, unit))}</div>'
    return f'<div class="stat">{html.escape(_no_value(pd) or "No data")}</div>'


def html_bargauge(pd: PanelData) -> str:
    """A bar gauge: one bar per row (table results) or per series."""
    items: list[tuple[str, float]] = []
    fmt = str(pd.panel.get("fieldConfig", {}).get("defaults", {}).get("displayName", ""))
    tag = re.search(r"__data\.fields\.(\w+)", fmt)
    for o in pd.outcomes:
        if tag:
            for r in queries.rows(o.result or {}):
                nums = [v for k, v in r.items() if k != "time" and isinstance(v, int | float)]
                if nums:
                    items.append((str(r.get(tag.group(1), "")), float(nums[0])))
    if not tag:
        items = [(s.name, s.points[-1][1]) for s in series_of(pd)]
    if not items:
        return '<div class="novalue">No data</div>'
    items.sort(key=lambda i: -i[1])
    top = max(v for _, v in items) or 1.0
    bars = "".join(
        f'<div class="bar"><span class="bname">{html.escape(n)}</span><span class="btrack">'
        f'<span class="bfill" style="width:{max(1.0, 100 * v / top):.1f}%"></span></span>'
        f'<span class="bval">{fmt_value(v)}</span></div>' for n, v in items[:10])
    return f'<div class="bars">{bars}</div>'


# -- page ------------------------------------------------------------------------------------

CSS = """
body { margin: 0; background: #111217; color: #ccccdc; font: 13px system-ui, sans-serif; }
header { padding: 10px 16px; border-bottom: 1px solid #2c2f36; }
h1 { font-size: 18px; margin: 0 0 4px; color: #fff; }
.note { color: #8e8e9e; font-size: 12px; }
.vars span { background: #22252b; border: 1px solid #34373d; padding: 2px 8px; margin-right: 6px;
             border-radius: 3px; }
.grid { position: relative; margin: 8px; }
.panel { position: absolute; background: #181b1f; border: 1px solid #2c2f36; border-radius: 3px;
         overflow: hidden; box-sizing: border-box; }
.panel h2 { font-size: 13px; margin: 0; padding: 6px 8px; color: #d8d9da; font-weight: 500;
            white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.body { position: absolute; top: 28px; left: 4px; right: 4px; bottom: 4px; overflow: hidden; }
svg line.grid { stroke: #2c2f36; } svg .axis { fill: #8e8e9e; font-size: 10px; }
svg .legend { fill: #ccccdc; font-size: 10px; }
svg line.anno { stroke: #e02f44; stroke-dasharray: 3 3; stroke-width: 1.2; }
.stat { font-size: 40px; font-weight: 600; color: #73bf69; text-align: center; margin-top: 14px; }
.novalue { color: #8e8e9e; text-align: center; margin-top: 30px; }
table { border-collapse: collapse; width: 100%; font-size: 11px; }
th { text-align: left; color: #6e9fff; border-bottom: 1px solid #2c2f36; padding: 3px 5px; }
td { border-bottom: 1px solid #22252b; padding: 2px 5px; white-space: nowrap; overflow: hidden;
     max-width: 520px; text-overflow: ellipsis; }
td.st-firing, td.st-critical { color: #f2495c; } td.st-resolved { color: #73bf69; }
td.st-warning { color: #ff9830; } .more { color: #8e8e9e; font-size: 11px; padding: 3px 5px; }
.bar { display: flex; align-items: center; gap: 8px; margin: 3px 4px; }
.bname { width: 34%; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.btrack { flex: 1; background: #22252b; height: 12px; }
.bfill { display: block; height: 12px; background: linear-gradient(90deg, #73bf69, #fade2a); }
.bval { width: 48px; text-align: right; }
"""


def render_html(view: DashboardView, caption: str = "") -> str:
    """One self-contained HTML page drawing the dashboard."""
    d = view.dashboard
    col_w = (WIDTH - 16) / 24
    blocks, bottom = [], 0
    for pd in view.panels:
        gp = pd.panel["gridPos"]
        x, y, w, h = gp["x"] * col_w, gp["y"] * (CELL + GAP), gp["w"] * col_w - GAP, \
            gp["h"] * CELL + (gp["h"] - 1) * GAP
        bottom = max(bottom, y + h)
        title = str(pd.panel.get("title", ""))
        for name, value in view.values.items():
            title = title.replace(f"${name}", value)
        ptype = pd.panel.get("type")
        errors = [o.error for o in pd.outcomes if o.error]
        if errors:
            body = f'<div class="novalue">query error: {html.escape(errors[0][:200])}</div>'
        elif ptype == "timeseries":
            body = svg_timeseries(pd, int(w - 8), int(h - 32), view.annotations)
        elif ptype == "stat":
            body = html_stat(pd)
        elif ptype == "table":
            body = html_table(pd)
        elif ptype == "bargauge":
            body = html_bargauge(pd)
        else:
            body = f'<div class="novalue">({html.escape(str(ptype))} panel)</div>'
        blocks.append(f'<div class="panel" style="left:{x:.0f}px;top:{y:.0f}px;width:{w:.0f}px;'
                      f'height:{h:.0f}px"><h2>{html.escape(title)}</h2>'
                      f'<div class="body">{body}</div></div>')
    variables = "".join(f"<span>{html.escape(k)} = {html.escape(v)}</span>"
                        for k, v in view.values.items())
    caption = caption or ("Preview rendered by meshmon (dashboards/preview.py) from the "
                          "dashboard JSON and real query results — not a Grafana screenshot.")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(d['title'])}"
        f"</title><style>{CSS}</style></head><body><header><h1>{html.escape(d['title'])}</h1>"
        f"<div class='vars'>{variables}</div><div class='note'>{html.escape(caption)} "
        f"uid <code>{html.escape(d['uid'])}</code>.</div></header>"
        f"<div class='grid' style='height:{bottom + 8:.0f}px'>{''.join(blocks)}</div>"
        "</body></html>"
    )


async def screenshot(pages: Mapping[Path, str], executable: str = CHROMIUM) -> list[Path]:
    """Save each HTML page as a full-page PNG at the given path."""
    from playwright.async_api import async_playwright  # only the screenshots need it

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": WIDTH, "height": 900})
            for path, text in pages.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                await page.set_content(text)
                await page.screenshot(path=str(path), full_page=True)
        finally:
            await browser.close()
    return list(pages)


def render_all(
    run: Any,
    out_dir: Path,
    prefer: Mapping[str, str] | None = None,
    *,
    time_filter: str = queries.DEFAULT_TIME_FILTER,
    interval: str = queries.DEFAULT_INTERVAL,
    keep_html: bool = False,
    directory: Path = queries.DASHBOARD_DIR,
) -> list[Path]:
    """Render every dashboard of `directory` to `out_dir/dashboard-<uid>.png`."""
    pages: dict[Path, str] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for dashboard in queries.load_dashboards(directory):
        view = collect(dashboard, run, prefer, time_filter=time_filter, interval=interval)
        text = render_html(view)
        png = out_dir / f"dashboard-{dashboard['uid']}.png"
        pages[png] = text
        if keep_html:
            png.with_suffix(".html").write_text(text)
    return asyncio.run(screenshot(pages))


def main(argv: list[str] | None = None) -> int:
    """Render a preview PNG of every dashboard from a live InfluxDB."""
    ap = argparse.ArgumentParser(prog="python -m dashboards.preview", description=main.__doc__)
    ap.add_argument("--url", default="http://127.0.0.1:8086")
    ap.add_argument("--db", default="meshmon")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--time-filter", default=queries.DEFAULT_TIME_FILTER)
    ap.add_argument("--interval", default=queries.DEFAULT_INTERVAL)
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--html", action="store_true", help="keep the HTML next to each PNG")
    args = ap.parse_args(argv)

    def run(q: str) -> dict[str, Any]:
        return queries.influxql(args.url, args.db, q, username=args.user,
                                password=args.password)

    prefer = dict(v.split("=", 1) for v in args.var)
    for path in render_all(run, args.out, prefer, time_filter=args.time_filter,
                           interval=args.interval, keep_html=args.html):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
