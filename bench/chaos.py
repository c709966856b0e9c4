"""Chaos benchmark (issue 11 §3): agents publish numbered reports at a known rate while
(a) `meshmon serve` is SIGKILLed and restarted, (b) InfluxDB 1.6.7 is stopped for 60 s,
(c) Mosquitto restarts, (d) the SQLite file's filesystem (a tmpfs it mounts; root) fills
up. Prints published / stored / counted-dropped / lost-uncounted for each case.

Loopback only; every server is started and stopped by the run, which ends by itself
(about 8 minutes, `--quick` about 2). The cases are `tests/chaos/scenarios.py`, the same
the tests run shorter.

    python bench/chaos.py [--case a,b,c,d] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos import scenarios
from tests.integration.scripted_mesh import WebhookReceiver

FULL = {
    "a": {"agents_n": 10, "rate": 5.0, "before_s": 10, "down_s": 15, "after_s": 10,
          "flush_interval_s": 1.0},
    "b": {"agents_n": 10, "rate": 5.0, "before_s": 10, "down_s": 60, "after_s": 10},
    "c": {"agents_n": 10, "rate": 5.0, "before_s": 10, "down_s": 5, "after_s": 10,
          "restarts": 3},
    "d": {"agents_n": 10, "rate": 5.0, "before_s": 10, "full_s": 20, "after_s": 10,
          "queue_max": 2000},
}
QUICK = {
    "a": {"flush_interval_s": 1.0},
    "b": {"down_s": 6},
    "c": {},
    "d": {},
}
INFLUX_BUFFERS = (1_000_000, 20_000)
"""(b) runs twice: with the default buffer (nothing may be lost) and a small one"""


async def run(case: str, quick: bool, work: Path) -> list[scenarios.Outcome]:
    params = QUICK[case] if quick else FULL[case]
    if case == "a":
        return [await scenarios.collector_killed(work / "a", **params)]  # type: ignore[arg-type]
    if case == "b":
        runs = []
        for buffer in INFLUX_BUFFERS if not quick else (1000,):
            runs.append(await scenarios.influx_down(work / f"b-{buffer}", **params,  # type: ignore[arg-type]
                                                    buffer_max_points=buffer))
        return runs
    if case == "c":
        return [await scenarios.broker_restarts(work / "c", **params)]  # type: ignore[arg-type]
    hook = WebhookReceiver()
    await hook.start()
    try:
        return [await scenarios.disk_full(work / "d", hook.url,  # type: ignore[arg-type]
                                          lambda: len(hook.of("outage", "firing")), **params)]
    finally:
        await hook.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="a,b,c,d", help="cases to run, e.g. a,c")
    parser.add_argument("--quick", action="store_true", help="the short timings of the tests")
    args = parser.parse_args()
    # the agents' own "disconnected, reconnecting" while the broker restarts is expected
    logging.getLogger("meshmon_agent").setLevel(logging.ERROR)
    cases = [c.strip() for c in args.case.split(",") if c.strip()]
    if "d" in cases and os.geteuid() != 0:
        parser.error("case d mounts a tmpfs: run as root, or leave it out (--case a,b,c)")
    started = time.monotonic()
    outcomes: list[scenarios.Outcome] = []
    with tempfile.TemporaryDirectory(prefix="meshmon-chaos-") as tmp:
        for case in cases:
            case_started = time.monotonic()
            for outcome in await run(case, args.quick, Path(tmp)):
                outcomes.append(outcome)
                print(outcome.row(), f"({time.monotonic() - case_started:.0f} s)", flush=True)
    print()
    print(scenarios.TABLE_HEAD)
    for outcome in outcomes:
        print(outcome.row())
    uncounted = sum(o.uncounted for o in outcomes)
    print(f"\nRESULT cases={len(outcomes)} uncounted={uncounted} "
          f"published={sum(o.published for o in outcomes)} "
          f"counted_dropped={sum(o.counted_dropped for o in outcomes)} "
          f"seconds={time.monotonic() - started:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
