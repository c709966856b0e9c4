"""SQLite store: state round trip, samples (the history), pruning, events, clock fallback."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from pathlib import Path

from meshmon.history.samples import SeriesKey
from meshmon.model.state import LinkKey, LinkSample, LinkState, NodeState
from meshmon.model.wire import Info, Link
from meshmon.sinks.base import Event
from meshmon.sinks.sqlite import SqliteStore
from tests.sinks.reports import DSTS, NOW, report


def store_at(tmp_path: Path, **kw) -> SqliteStore:
    """A store whose clock is the test's NOW (samples at NOW are recent, not pruned)."""
    kw.setdefault("flush_interval_s", 60)
    return SqliteStore(tmp_path / "m.sqlite", clock=lambda: NOW + 100, **kw)


def link_states(r=None) -> list[LinkState]:
    r = r or report()
    peers = ["n2", "n3", "mac:02:00:00:00:00:99"]
    return [
        LinkState(
            LinkKey("n1", peer, link.iface, link.kind),
            dst,
            link.peer_mac,
            LinkSample.from_link(link),
            first_seen=NOW - 100,
            last_seen=NOW,
            report_ts=r.ts,
        )
        for peer, dst, link in zip(peers, DSTS, r.links, strict=True)
    ]


async def test_state_round_trip_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    info = Info.model_validate(
        {
            "v": 1,
            "node": "n1",
            "hostname": "roof",
            "macs": ["02:00:00:00:00:01"],
            "location": {"lat": 41.4, "lon": 2.1},
            "owner": {"contact": "a@b"},
            "gateway": True,
            "tags": ["x"],
        }
    )
    nodes = [
        NodeState("n1", info, True, NOW - 1000, NOW, report(), 10.0),
        NodeState("n2", None, False, None, None, None, 30.0),
    ]
    links = link_states()
    store = SqliteStore(path, flush_interval_s=60)
    await store.start()
    store.save_state(nodes, links, [])
    store.save_state([], [], [LinkKey("n1", "gone", "wlan0", "wifi")])
    await store.close()

    again = SqliteStore(path)
    await again.start()
    loaded_nodes, loaded_links = await again.load_state()
    await again.close()
    assert sorted(loaded_nodes, key=lambda n: n.id) == nodes
    assert sorted(loaded_links, key=lambda ls: ls.key) == sorted(links, key=lambda ls: ls.key)


async def test_removed_links_are_deleted_and_later_saves_win(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    await store.start()
    links = link_states()
    store.save_state([], links, [])
    await store.flush()
    store.save_state([], [], [links[0].key, links[1].key])
    store.save_state([], [links[1]], [])  # came back before the batch was written
    _, loaded = await store.load_state()
    await store.close()
    assert sorted(ls.key for ls in loaded) == sorted([links[1].key, links[2].key])


NODE = SeriesKey("node", "n1")
WIFI = SeriesKey("link", "n1", "n2", "wlan0", "wifi")


async def test_samples_are_written_and_read_back(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    await store.start()
    for i in range(3):
        r = report(ts=NOW + 30 * i, seq=i, links=None)
        r.links[0].tx_retries = 12 + 30 * i  # one retry a second
        store.write_report(r, NOW + 30 * i + 1, DSTS)
    await store.flush()
    assert store.stats()["written_points"] == 3 and store.stats()["queued"] == 0
    hist = await store.samples(WIFI, NOW + 30)
    assert [h["ts"] for h in hist] == [NOW + 30, NOW + 60]
    h = hist[0]
    assert (h["signal_dbm"], h["snr_db"], h["tx_rate_mbps"]) == (-61, 34, 144.4)
    # counters are kept as rates; inactive_ms (an age, not a quality) is not kept
    assert h["tx_retries_per_s"] == 1.0 and "tx_retries" not in h and "inactive_ms" not in h
    assert "tq" not in h and "etx" not in h  # a missing metric stays missing
    assert [s["tq"] for s in await store.samples(SeriesKey("link", "n1", "n3", "bat0",
                                                              "batman"))] == [230] * 3
    # a link known only by its MAC is not kept: a MAC must never reach a public page
    assert not any(key.peer.startswith("mac:") or (key.peer == "" and key.kind == "link")
                   for key in await store.read_history(every_series))
    nodes = await store.samples(NODE)
    assert [n["ts"] for n in nodes] == [NOW, NOW + 30, NOW + 60]
    assert (nodes[0]["load15"], nodes[0]["mem_avail_kb"], nodes[0]["links"]) == (0.125, 32000, 3)
    assert [n["seq"] for n in nodes] == [0, 1, 2]
    await store.close()


async def test_wild_agent_clock_stores_arrival_time(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    await store.start()
    store.write_report(report(ts=3.0), NOW, DSTS)
    await store.flush()
    assert [n["ts"] for n in await store.samples(NODE)] == [NOW]
    assert store.stats()["clock_fallbacks"] == 1
    await store.close()


async def test_old_samples_are_pruned_and_their_rollups_kept(tmp_path: Path) -> None:
    store = SqliteStore(
        tmp_path / "m.sqlite", sample_retention_h=24, flush_interval_s=60, clock=lambda: NOW
    )
    await store.start()
    # (a row of raw samples goes once all of it is past the retention: the store packs
    # finished spans into rows of 4 hours, `meshmon.history.packing`)
    for hours_ago in (40, 30, 23, 1):
        t = NOW - hours_ago * 3600
        store.write_report(report(ts=t), t, DSTS)
    # 2 reports' buckets × (node, iface, radio and 2 resolved links)
    assert await store.prune(NOW) == 2 * 5
    assert [round((NOW - n["ts"]) / 3600) for n in await store.samples(NODE)] == [23, 1]
    assert len(await store.samples(WIFI)) == 2
    assert store.stats()["pruned_rows"] == 10
    assert (await store.read_history(hourly))[0][0] >= 5  # the roll-ups stay
    await store.close()


async def test_events_are_logged(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    await store.start()
    store.write_event(Event(NOW, "offline", "n1", "n1 stopped reporting"))
    store.write_event(
        Event(NOW + 5, "outage", None, "backbone down", {"affected": 4, "root": "n1"})
    )
    evs = await store.events(NOW + 1)  # reads see what is queued once it is flushed
    assert evs == []
    await store.flush()
    evs = await store.events(NOW)
    assert evs == [
        {
            "ts": NOW,
            "kind": "offline",
            "node": "n1",
            "summary": "n1 stopped reporting",
            "fields": {},
        },
        {
            "ts": NOW + 5,
            "kind": "outage",
            "node": None,
            "summary": "backbone down",
            "fields": {"affected": 4, "root": "n1"},
        },
    ]
    await store.close()


async def test_queue_bound_drops_oldest_reports_and_counts(tmp_path: Path) -> None:
    store = store_at(tmp_path, queue_max=100)
    await store.start()
    for i in range(120):
        store.write_report(report(ts=NOW + i, seq=i), NOW + i, DSTS)
    st = store.stats()
    assert st["queued"] == 100 and st["dropped_points"] == 20
    await store.flush()
    stored = await store.samples(NODE)
    await store.close()
    assert len(stored) == 100 and stored[0]["ts"] == NOW + 20  # the oldest went first


async def test_background_writer_flushes_on_its_own(tmp_path: Path) -> None:
    import asyncio

    store = store_at(tmp_path, flush_interval_s=0.05)
    await store.start()
    store.write_report(report(), NOW, DSTS)
    for _ in range(100):
        if store.stats()["written_points"] == 1:
            break
        await asyncio.sleep(0.02)
    assert store.stats()["written_points"] == 1
    await store.close()


async def test_link_sample_json_stays_a_wire_link(tmp_path: Path) -> None:
    """Rows written before LinkSample load, and rows written now still parse as wire.Link."""
    r = report()
    states = link_states(r)
    store = store_at(tmp_path)
    await store.start()
    store.save_state([], states, [])
    await store.flush()
    db = sqlite3.connect(tmp_path / "m.sqlite")
    for (sample,) in db.execute("SELECT sample FROM links"):
        wire = Link.model_validate_json(sample)
        assert LinkSample.from_link(wire) in [s.sample for s in states]
    old = {ls.key: link for ls, link in zip(states, r.links, strict=True)}
    for k, link in old.items():  # as the collector wrote them before
        db.execute(
            "UPDATE links SET sample = ? WHERE src = ? AND peer = ? AND iface = ? AND kind = ?",
            (link.model_dump_json(exclude_none=True), *k),
        )
    db.commit()
    db.close()
    _, loaded = await store.load_state()
    await store.close()
    assert sorted(loaded, key=lambda ls: ls.key) == sorted(states, key=lambda ls: ls.key)


async def test_the_running_store_packs_finished_spans_by_itself(tmp_path: Path) -> None:
    """No call asks for it: the store's own loop packs what is finished (a slice per write,
    also while no report comes), and the samples read the same."""
    clock = [NOW]
    store = SqliteStore(tmp_path / "m.sqlite", flush_interval_s=0.05, clock=lambda: clock[0])
    await store.start()
    for i in range(60):  # 10 hours, a report every 10 minutes
        clock[0] = t = NOW + i * 600
        store.write_report(report(ts=t, seq=i + 1), t, DSTS)
    await store.flush()
    before = await store.samples(NODE)
    assert len(before) == 60

    # (while the clock ran through the reports, the first spans may have been packed)
    already = await store.read_history(packed)
    clock[0] = NOW + 16 * 3600  # every 4-hour span of the reports ended an hour ago
    deadline = time.monotonic() + 20
    while await store.read_history(packed) < 3 * 3 + already:  # 3 series, 3 more spans
        assert time.monotonic() < deadline, "the store never packed"
        await asyncio.sleep(0.05)
    # (the last one was in its open bucket, unrounded: it is stored at the metric's scale)
    assert (await store.samples(NODE))[:-1] == before[:-1]
    assert store.worker_status.packed_rows > 0
    await store.close()


async def test_a_history_write_is_not_failed_by_another_connections_write(
        tmp_path: Path) -> None:
    """The store's transactions take the write lock when they begin: a write that first
    reads is not failed at once ("database is locked") because another connection of the
    collector (the alert log's) wrote after the read; that one waits instead."""
    import threading

    store = store_at(tmp_path)
    await store.start()
    read = tmp_path / "read"  # made by the store's transaction once it read
    other_wrote = threading.Event()
    errors: list[Exception] = []

    def other_write() -> None:
        while not read.exists():  # (the write must come while the transaction runs)
            time.sleep(0.01)
        conn = sqlite3.connect(tmp_path / "m.sqlite", timeout=10)
        try:
            conn.execute("INSERT INTO events (ts, kind, node, summary, fields) "
                         "VALUES (1, 'x', 'n', 'other connection', '{}')")
            conn.commit()
            other_wrote.set()
        except sqlite3.Error as exc:
            errors.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=other_write)
    thread.start()
    await store.write_history(functools.partial(read_then_write, read))
    thread.join(10)
    assert other_wrote.is_set() and not errors
    assert await store.read_history(has_late_series)
    await store.close()


def read_then_write(read: Path, tables) -> None:
    """(in the store's worker process) Read, let the other connection try to write for
    half a second (it cannot while this transaction holds the lock), then write."""
    tables.conn.execute("SELECT count(*) FROM history_series").fetchone()
    read.touch()
    time.sleep(0.5)
    tables.series_id(SeriesKey("node", "late"))
    tables.save_registry()


# readers of the history: run in the store's worker process (pickled: module-level)
def every_series(tables, _in_memory) -> list[SeriesKey]:
    return list(tables.series)


def hourly(tables, _in_memory) -> list[tuple[int]]:
    return list(tables.conn.execute("SELECT count(*) FROM history_1h"))


def packed(tables, _in_memory) -> int:
    return int(tables.conn.execute("SELECT count(*) FROM history_raw_packed").fetchone()[0])


def has_late_series(tables, _in_memory) -> bool:
    return SeriesKey("node", "late") in tables.series
