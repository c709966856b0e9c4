"""InfluxDB alone: how many reports/s it stores with nothing else to do (a benchmark's limit).

The lines are the collector's: each report as the publishers send it (`loadgen`), decoded
as the collector decodes it and encoded by the InfluxDB sink's `report_chunk`, with the
peers resolved as the collector resolves them. They are posted as the sink posts them
(`/write`, batches of `batch_size` points of whole reports, one write at a time) to a
database of their own, after every line is made, so the time is InfluxDB's alone: what
`--role all` with InfluxDB cannot drain faster than while it keeps every point.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from dataclasses import dataclass

from loadgen import Mesh, report_parts

from meshmon.config import InfluxConfig
from meshmon.model.fastwire import decode_report
from meshmon.sinks.lineprotocol import report_chunk

BATCH_POINTS = InfluxConfig.model_fields["batch_size"].default
TUNED_DATA_CONF = 'cache-snapshot-memory-size = "256m"'
"""InfluxDB 1.x's `[data]` as docs/scaling.md advises for meshmon (the default snapshot of
25 MB holds about one point per series; InfluxDB then spends its CPU writing and
compacting many small files)"""


@dataclass
class Stored:
    reports: int
    points: int
    seconds: float

    @property
    def reports_per_s(self) -> float:
        return self.reports / self.seconds

    @property
    def points_per_s(self) -> float:
        return self.points / self.seconds


def batches(mesh: Mesh, reports: int, start_ts: float) -> list[tuple[bytes, int]]:
    """`reports` reports, the nodes in turn, 30 s apart per node, as the sink's batches."""
    parts = [report_parts(mesh, i) for i in range(len(mesh.ids))]
    out: list[tuple[bytes, int]] = []
    chunk: list[bytes] = []
    points = 0
    for k in range(reports):
        i = k % len(parts)
        ts = start_ts + 30 * (k // len(parts)) + 30 * i / len(parts)
        head, tail = parts[i]
        report = decode_report(f'{head}"ts":{ts:.4f},"seq":{k // len(parts) + 1}{tail}'.encode())
        dsts = [mesh.ids[int(peer)] for peer in mesh.neighbours[i]]
        lines, n = report_chunk(report, ts, dsts)
        if points and points + n > BATCH_POINTS:
            out.append((b"\n".join(chunk), points))
            chunk, points = [], 0
        chunk.append(lines)
        points += n
    if chunk:
        out.append((b"\n".join(chunk), points))
    return out


def store_alone(port: int, database: str, mesh: Mesh, reports: int) -> Stored:
    """Make `reports` reports' lines, then time InfluxDB (on 127.0.0.1:`port`) storing
    them into `database` (created here, dropped after)."""
    todo = batches(mesh, reports, time.time() - 3600)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        _post(conn, "/query?" + urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'}),
              b"")
        path = "/write?" + urllib.parse.urlencode({"db": database, "precision": "ns"})
        started = time.perf_counter()
        for body, _ in todo:
            _post(conn, path, body)
        took = time.perf_counter() - started
        # gone, so that InfluxDB does not compact it while the collectors are measured
        _post(conn, "/query?" + urllib.parse.urlencode({"q": f'DROP DATABASE "{database}"'}),
              b"")
    finally:
        conn.close()
    return Stored(reports, sum(n for _, n in todo), took)


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> None:
    conn.request("POST", path, body=body)
    response = conn.getresponse()
    answer = response.read()
    if response.status not in (200, 204):
        raise SystemExit(f"bench: InfluxDB answered {response.status} to {path[:40]}: "
                         f"{answer[:200]!r}")
