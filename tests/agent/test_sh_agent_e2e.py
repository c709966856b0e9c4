"""The busybox sh agent as a real process: real Mosquitto, a running collector.

Status and info (retained), reports reaching the collector's API, `fast` mode asked for by
the installer's live view, reports spooled while the broker restarts (sent afterwards in
order with their own timestamps), the last will when the agent is killed, and the clean
`online: false` on SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import time
from pathlib import Path

import aiohttp

from meshmon.history.samples import SeriesKey
from meshmon.model import wire
from tests import servers
from tests.agent.mqtt_helpers import Received, Recorder
from tests.agent.router import Router, chromiumos_libremesh
from tests.integration.harness import Publisher, collector_config, eventually, get_json, started

NODE = "sh-roof-1"
BASE = f"meshmon/v1/node/{NODE}/"
PEER_MAC, PEER_SIGNAL = "aa:bb:cc:00:11:22", -21  # a station of the captured dump


def _config(router: Router, port: int, interval_s: float) -> Path:
    return router.config(
        f'node = "{NODE}"\ninterval_s = {interval_s}\n'
        f"[mqtt]\nport = {port}\nreconnect_min_s = 1\nreconnect_max_s = 1\n"
        '[info]\nlat = 41.38\nlon = 2.17\ntags = ["roof", "sh"]\nowner_contact = "x@example.org"\n'
    )


def _reports(rec: Recorder) -> list[Received]:
    return [m for m in rec.where("/report") if isinstance(m.payload, dict)]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


async def _wait(rec: Recorder, predicate, what: str, timeout: float = 15) -> Received:  # type: ignore[no-untyped-def]
    try:
        return await asyncio.to_thread(rec.wait_for, predicate, timeout, what)
    except AssertionError:
        seen = [(m.topic.rsplit("/", 1)[-1], m.payload.get("seq") if isinstance(m.payload, dict)
                 else None) for m in rec.messages]
        raise AssertionError(f"no {what} within {timeout}s; got {seen}") from None


async def test_sh_agent_with_mosquitto_and_collector(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    router = chromiumos_libremesh(tmp_path / "router")
    service = await started(collector_config(tmp_path, mosquitto.port))
    neighbour = Publisher(mosquitto.port)
    rec = Recorder(mosquitto.port, BASE + "#")
    agent = router.spawn(_config(router, mosquitto.port, 2), tmp_path / "agent.log")
    try:
        await neighbour.send("meshmon/v1/node/roof-a/info",
                             {"v": 1, "node": "roof-a", "macs": [PEER_MAC]}, retain=True)
        # retained status and info, valid, seen by a client that subscribes afterwards (once
        # both are out: the status and the info go through two sessions, either may be first)
        await _wait(rec, lambda m: m.topic.endswith("/info"), "info")
        await _wait(rec, lambda m: m.topic.endswith("/status"), "status")
        late = Recorder(mosquitto.port, BASE + "+")
        try:
            status = await _wait(late, lambda m: m.topic.endswith("/status"), "retained status")
            info = await _wait(late, lambda m: m.topic.endswith("/info"), "retained info")
        finally:
            late.close()
        assert status.retain and status.payload["online"] is True and status.payload["ts"] > 0
        decoded = wire.decode("meshmon", BASE + "info", json.dumps(info.payload).encode())
        assert isinstance(decoded, wire.Info) and info.retain
        assert decoded.tags == ["roof", "sh"] and decoded.location is not None
        assert decoded.owner is not None and decoded.owner.contact == "x@example.org"
        assert decoded.agent == "meshmon-agent-sh/0.1.0" and decoded.interval_s == 2
        assert set(decoded.macs) == {"02:58:47:00:11:22", "02:58:47:00:11:23"}

        # reports reach the collector: the captured station resolves to roof-a
        url = f"{service.http_url}/api/v1/nodes/{NODE}"

        async def resolved() -> bool:
            got = await get_json(url)
            links = got["body"].get("links", []) if got["status"] == 200 else []
            peers = {e["peer"]: e for e in links}
            return "roof-a" in peers and peers["roof-a"]["out"] is not None

        await eventually(resolved, 20, "the sh agent's link to roof-a in the API")
        body = (await get_json(url))["body"]
        entry = next(e for e in body["links"] if e["peer"] == "roof-a")
        assert entry["kind"] == "wifi" and entry["out"]["metrics"]["signal_dbm"] == PEER_SIGNAL
        assert body["online"] is True
        normal = _reports(rec)
        assert all(r.payload["interval_s"] == 2 for r in normal)
        for r in normal:
            assert isinstance(wire.decode("meshmon", BASE + "report",
                                          json.dumps(r.payload).encode()), wire.Report)

        # the installer's live view asks for fast mode; the agent switches at once
        async with aiohttp.ClientSession() as session, \
                session.get(f"{service.http_url}/api/v1/live/{NODE}") as live:
            await live.content.readline()
            switched = await _wait(rec, lambda m: m.topic.endswith("/report")
                                   and m.payload["interval_s"] == 1, "a fast report")
            await _wait(rec, lambda m: m.topic.endswith("/report")
                        and m.payload["seq"] >= switched.payload["seq"] + 3, "fast reports")
        fast = [r for r in _reports(rec) if r.payload["seq"] >= switched.payload["seq"]][:4]
        # judged by the agent's own clock (whole seconds): arrival times also carry the
        # broker round trip of a fresh mosquitto_pub per report, which load stretches
        gaps = [b.payload["ts"] - a.payload["ts"] for a, b in itertools.pairwise(fast)]
        assert all(1 <= g <= 3 for g in gaps) and sum(gaps) <= 5, gaps  # normal mode: 6

        # broker restart: reports taken meanwhile are spooled and sent afterwards, in order
        mosquitto.proc.terminate()
        mosquitto.proc.wait(10)
        down_at = time.time()
        await asyncio.sleep(4)
        before = [r.payload for r in _reports(rec)]
        rec.close()
        servers.restart(mosquitto)
        up_at = time.time()
        rec = Recorder(mosquitto.port, BASE + "#")
        last = await _wait(rec, lambda m: m.topic.endswith("/report")
                           and m.payload["ts"] > up_at + 1, "a live report after the outage", 20)
        after = [r.payload for r in _reports(rec) if r.payload["seq"] <= last.payload["seq"]]
        made_in_outage = [r for r in after if down_at - 1 <= r["ts"] <= up_at]
        assert len(made_in_outage) >= 2, after
        seqs = [r["seq"] for r in after]
        assert seqs == sorted(seqs), "out of order"
        everything = sorted({r["seq"] for r in before + after})
        assert everything == list(range(everything[0], everything[-1] + 1)), "a report was lost"
        assert all(b["ts"] >= a["ts"] for a, b in itertools.pairwise(after))
        # the restarted broker had no persistence: status and info are sent again
        again = await _wait(rec, lambda m: m.topic.endswith("/status"), "status after restart")
        assert again.payload["online"] is True
        await _wait(rec, lambda m: m.topic.endswith("/info"), "info after restart")
        log = (tmp_path / "agent.log").read_text()
        assert f"cannot connect to 127.0.0.1:{mosquitto.port}: connection refused" in log
        assert "retrying" in log

        async def stored_outage() -> bool:
            assert service.store is not None
            rows = await service.store.samples(SeriesKey("node", NODE))
            return sum(1 for r in rows if down_at - 1 <= r["ts"] <= up_at) >= 2

        await eventually(stored_outage, 20, "the outage's reports stored by the collector")

        # killed: the broker publishes the retained last will, the collector sees it
        agent.send_signal(signal.SIGKILL)
        agent.wait(5)
        will = await _wait(rec, lambda m: m.topic.endswith("/status")
                           and m.payload["online"] is False, "last will", 20)
        assert will.payload == {"v": 1, "node": NODE, "online": False}

        async def offline() -> bool:
            return (await get_json(url))["body"]["online"] is False

        await eventually(offline, 10, "the collector marks the node offline")
        # the watchdog ended the long-lived clients (status with the will, cmd subscriber);
        # a one-shot report session cut off by the kill ends by itself within 30 s
        pattern = f"-i meshmon-agent-{NODE}(-cmd)? "
        leftovers = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True,
                                   check=False).stdout.split()
        assert leftovers == [], "the agent's long-lived mosquitto clients outlived it"
    finally:
        _stop(agent)
        rec.close()
        neighbour.close()
        await service.stop()


async def test_sh_agent_sigterm_sends_offline_and_exits(
    tmp_path: Path, mosquitto: servers.Server
) -> None:
    router = chromiumos_libremesh(tmp_path / "router")
    rec = Recorder(mosquitto.port, BASE + "#")
    agent = router.spawn(_config(router, mosquitto.port, 30), tmp_path / "agent.log")
    try:
        await _wait(rec, lambda m: m.topic.endswith("/report"), "first report")
        await _wait(rec, lambda m: m.topic.endswith("/status"), "status")
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(agent.wait, 10) == 0
        off = await _wait(rec, lambda m: m.topic.endswith("/status")
                          and m.payload["online"] is False, "online false")
        assert off.payload["ts"] > 0  # sent by the agent, not the will
    finally:
        _stop(agent)
        rec.close()
