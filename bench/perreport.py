"""The collector's work per report, repeatable: for instruction counts (a benchmark, not a test).

    python bench/perreport.py [--nodes 2000] [--rounds 3] [--profile] [--profile-worker] [--no-stop]
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python bench/perreport.py --rounds 3 --no-stop   # and with --rounds 0

Starts Mosquitto (the collector's MQTT connection needs a broker; no report goes through
it), runs the real `Service` in this process on a clock of its own, hands it every node's
info and one report of each (so its links exist), then `--rounds` rounds of one report of
every node through its ingest entry (`on_batch`, as the MQTT client hands them over:
batches of 250). The clock moves 30 s a round (3.75 s a batch), and what the running
collector does on timers is done here at fixed points instead, so two runs do the same
work: a tick and a state save every 1,000 reports, a SQLite write (`flush`) every 2,000
(the drain's ~10,000 reports/s with a tick every 0.1 s and a write every 0.2 s). The
rounds stay within one 5-minute history bucket (no close) for up to 8 rounds.

The work of the rounds alone is the difference between two runs, `--rounds R` and
`--rounds 0` (start-up, warm-up and stop are the same in both): valgrind's instruction
count, divided by R × nodes. Without valgrind it prints the process's CPU time per report
over the rounds (the SQLite worker thread included) — noisy on a shared machine. The
store does its SQLite work in a thread here (`[storage] worker = "thread"`), so this
process does all of a report's work: the hand-over to the worker (one MessagePack batch a
write) is counted, the copy between processes that `meshmon serve` adds is not.
`--profile`: cProfile of the rounds (the loop's thread), top 35 by own time;
`--profile-worker`: the same of the SQLite worker's batch writes.
Last line: RESULT reports=… cpu_us=… loop_us=…
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import Mesh, build_mesh, info_payload, report_parts  # noqa: E402

from meshmon.config import Config  # noqa: E402
from meshmon.runtime import tune_runtime  # noqa: E402
from meshmon.service import Service  # noqa: E402
from meshmon.storage.store_worker import StoreWorker  # noqa: E402
from tests import servers  # noqa: E402

BATCH = 250
TICK_EVERY = 1000
FLUSH_EVERY = 2000
ROUND_S = 30.0
PREFIX = "meshmon"


class GcWatch:
    """Collections and their time (the thread that ran them) while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.count = 0
        self.seconds = 0.0
        self.by_generation = [[0, 0.0], [0, 0.0], [0, 0.0]]
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._start = time.thread_time()
        else:
            took = time.thread_time() - self._start
            self.count += 1
            self.seconds += took
            gen = self.by_generation[info["generation"]]
            gen[0] += 1
            gen[1] += took


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def one_round(service: Service, mesh: Mesh, parts: list[tuple[str, str]],
                    clock: Clock, seq: int) -> None:
    """One report of every node into the ingest entry, the timers' work at fixed points."""
    batch = []
    n = len(mesh.ids)
    step = ROUND_S * BATCH / n
    for i, node in enumerate(mesh.ids):
        head, tail = parts[i]
        now = clock.now
        payload = f'{head}"ts":{now:.4f},"seq":{seq}{tail}'.encode()
        batch.append((f"{PREFIX}/v1/node/{node}/report", payload, now, 0, False))
        done = i + 1
        if len(batch) == BATCH or done == n:
            service.on_batch(batch)
            batch = []
            clock.now += step
        if done % TICK_EVERY == 0 or done == n:
            service._tick()
            service._save_state()
        if (done % FLUSH_EVERY == 0 or done == n) and service.store is not None:
            await service.store.flush()
            service._release_acks()


async def run(args: argparse.Namespace) -> float:
    mesh = build_mesh(args.nodes)
    parts = [report_parts(mesh, i) for i in range(args.nodes)]
    mq = servers.start_mosquitto()
    tmp = tempfile.mkdtemp(prefix="bench-perreport-")
    # 10 s after a 5-minute boundary: warm-up and 3 rounds (120 s) close no history bucket
    t0 = (int(time.time()) // 300) * 300 + 10.0
    clock = Clock(t0)
    service: Service | None = None
    try:
        config = Config.model_validate({
            "log_level": "warning",
            "mqtt": {"broker": "external", "port": mq.port, "client_id": "bench-perreport"},
            "http": {"port": 0},
            "storage": {"path": f"{tmp}/perreport.sqlite", "flush_interval_s": 60,
                        "worker": "thread"},  # (one process: callgrind counts it)
        })
        service = Service(config, clock=clock)
        await service.start()
        # the timers' work is done at fixed points instead (MQTT stays connected)
        await asyncio.sleep(0)
        for task in service._own[1:]:
            task.cancel()
        await asyncio.sleep(0)
        service.on_control([(f"{PREFIX}/v1/node/{node}/info", info_payload(mesh, i),
                             clock.now, 0, False) for i, node in enumerate(mesh.ids)])
        await one_round(service, mesh, parts, clock, 0)  # warm-up: the links exist
        profile = cProfile.Profile()
        watch = GcWatch()
        watch.active = True
        cpu0, loop0 = time.process_time(), time.thread_time()
        if args.profile:
            profile.enable()
        if args.profile_worker:
            WORKER.profile = cProfile.Profile()
        for r in range(args.rounds):
            await one_round(service, mesh, parts, clock, r + 1)
        profile.disable()
        worker, WORKER.profile = WORKER.profile, None
        cpu, loop = time.process_time() - cpu0, time.thread_time() - loop0
        watch.active = False
        reports = args.rounds * args.nodes
        cpu_us = cpu / reports * 1e6 if reports else 0.0
        loop_us = loop / reports * 1e6 if reports else 0.0
        if args.profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(35)
        if worker is not None:
            pstats.Stats(worker).sort_stats("tottime").print_stats(35)
        print(f"{reports} reports, {cpu_us:.1f} µs CPU per report, {loop_us:.1f} of them in "
              f"the event loop's thread ({args.nodes} nodes, {len(service.topology.nodes)} "
              "in the topology)")
        if reports:
            print(f"garbage collections: {watch.count}, "
                  f"{watch.seconds / reports * 1e6:.1f} µs per report (by generation: "
                  + ", ".join(f"{n} in {s * 1e3:.0f} ms" for n, s in watch.by_generation)
                  + ")")
        print(f"RESULT reports={reports} cpu_us={cpu_us:.1f} loop_us={loop_us:.1f}")
        return cpu_us
    finally:
        if args.no_stop:  # the stop's writes (every open history bucket) left out
            mq.stop()
            shutil.rmtree(tmp, ignore_errors=True)
            sys.stdout.flush()
            os._exit(0)
        if service is not None:
            await service.stop()
        mq.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class WorkerProfile:
    """cProfile of the SQLite store's batch writes (its worker thread) with `--profile-worker`."""

    def __init__(self) -> None:
        self.profile: cProfile.Profile | None = None
        write_batch = StoreWorker.write_batch

        def watched(store: StoreWorker, *args: Any) -> Any:
            profile = self.profile
            if profile is None:
                return write_batch(store, *args)
            profile.enable()
            try:
                return write_batch(store, *args)
            finally:
                profile.disable()

        StoreWorker.write_batch = watched  # type: ignore[method-assign,assignment]


WORKER = WorkerProfile()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-worker", action="store_true")
    ap.add_argument("--no-stop", action="store_true",
                    help="end without stopping the collector (its final writes: faster "
                         "under valgrind)")
    args = ap.parse_args()
    tune_runtime()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
