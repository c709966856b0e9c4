"""Regenerate docs/img/dashboard-<uid>.png: fill a fresh InfluxDB 1.6.7 as the tests do, but
longer and with random outages, then draw every dashboard with `dashboards.preview`.

    .venv/bin/python -m tests.dashboards.make_previews [--seconds 240] [--out docs/img]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dashboards import preview, queries
from tests import servers
from tests.dashboards.fill import fill

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    """Fill, render, print the PNG paths."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--nodes", type=int, default=80)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    influx = servers.start_influxdb1()
    mosquitto = servers.start_mosquitto()
    workdir = Path(tempfile.mkdtemp(prefix="previews-"))
    try:
        filled = asyncio.run(fill(
            influx.url, "meshmon", mosquitto.port, workdir,
            nodes=args.nodes, interval_s=2.0, run_s=args.seconds, outage_s=30,
            outages_per_node_h=1.5, outage_duration_s=(20.0, 60.0),
        ))  # fmt: skip

        def run(q: str) -> dict[str, Any]:
            return queries.influxql(influx.url, "meshmon", q)

        prefer = {"node": filled.recovered, "src": filled.recovered}
        for path in preview.render_all(run, args.out, prefer, time_filter="time > now() - 1h",
                                       interval="10s"):
            print(path)
    finally:
        mosquitto.stop()
        influx.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
