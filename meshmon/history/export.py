"""A history answer as CSV: a header row, then one row per step (or per sample time),
with the time as ISO 8601 UTC and as unix seconds, so a spreadsheet opens it as it is."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any


def column_name(series: dict[str, Any], stat: str) -> str:
    """`node load1 mean`, `iface eth0 rx_bps max`, `link a>b wlan0 wifi signal_dbm mean`;
    a name starts with a fixed word, never with a character a spreadsheet would take for
    a formula."""
    kind = series["kind"]
    iface = series.get("iface") or "?"
    if kind == "link":
        where = f"link {series['node']}>{series['peer']} {iface} {series['link_kind']}"
    elif kind in ("iface", "radio"):
        where = f"{kind} {series['node']} {iface}"
    else:
        where = f"node {series['node']}"
    return f"{where} {series['metric']} {stat}"


def iso(ts: float) -> str:
    """Unix seconds as `2026-12-06T07:05:00Z` (milliseconds when there are any)."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_text(answer: dict[str, Any]) -> str:
    """The answer of `meshmon.history.query.read` as CSV text."""
    series: Sequence[dict[str, Any]] = answer["series"]
    columns: list[tuple[str, list[float | None], dict[float, float] | None]] = []
    if "t" in answer:  # stepped: one shared time axis
        times: list[float] = list(answer["t"])
        for s in series:
            for stat in ("mean", "min", "max"):
                if stat in s:
                    columns.append((column_name(s, stat), s[stat], None))
    else:  # samples: each series has its own times
        times = sorted({t for s in series for t in s["t"]})
        for s in series:
            columns.append((column_name(s, "value"), [], dict(zip(s["t"], s["mean"],
                                                                  strict=True))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["time", "unix_time", *(name for name, _, _ in columns)])
    for i, t in enumerate(times):
        row: list[Any] = [iso(t), int(t) if t == int(t) else round(t, 3)]
        for _, values, by_time in columns:
            value = by_time.get(t) if by_time is not None else values[i]
            row.append("" if value is None else value)
        writer.writerow(row)
    return out.getvalue()
