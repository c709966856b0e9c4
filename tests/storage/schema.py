"""Helpers for tests of the SQLite file: its schema as data, its rows, the fixture file."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

DB_DATA = Path(__file__).parent.parent / "data" / "db"
RELEASES = ("c21697b", "0cf8116")
"""releases whose database files are committed: c21697b (schema version 0, before
versions), 0cf8116 (stop 18's release, schema version 3); see tests/data/db/README.md"""
OLD_DB = DB_DATA / "meshmon-c21697b.sqlite"
"""written by meshmon c21697b (schema version 0)"""


def old_db_copy(tmp_path: Path, release: str = "c21697b") -> Path:
    """A copy of a release's database to open (the committed file is never written)."""
    path = tmp_path / "meshmon.sqlite"
    shutil.copyfile(DB_DATA / f"meshmon-{release}.sqlite", path)
    return path


def old_db_manifest(release: str = "c21697b") -> dict[str, Any]:
    """What that release's collector answered just before it stopped (made with the file)."""
    manifest: dict[str, Any] = json.loads((DB_DATA / f"meshmon-{release}.json").read_text())
    return manifest


def schema_of(path: Path) -> dict[str, Any]:
    """Tables with their columns (name, type, not null, default, pk) and indexes with their
    columns and conditions: what two files must share to be read by the same code."""
    with closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, Any] = {}
        for table in tables:
            columns = [tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info({table})")]
            indexes = {
                r[1]: ([c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")], r[2], r[4])
                for r in conn.execute(f"PRAGMA index_list({table})")
            }
            out[table] = {"columns": columns, "indexes": indexes}
    return out


def rows_of(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted."""
    with closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for t in tables}


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


# the metrics of the c21697b samples that move into the history as they were (counters
# become rates, inactive_ms is not kept, chains are not kept)
OLD_NODE_METRICS = ("load1", "load5", "load15", "mem_total_kb", "mem_avail_kb",
                    "rootfs_used_pct", "clients", "links")
"""(the fixture's node samples are older than `seq`)"""
OLD_LINK_METRICS = ("signal_dbm", "signal_avg_dbm", "noise_dbm", "snr_db", "tx_rate_mbps",
                    "rx_rate_mbps", "expected_tput_mbps", "tq", "lq", "nlq", "etx", "cost",
                    "rxcost")


def moved_samples(manifest: dict[str, Any]) -> dict[Any, list[dict[str, Any]]]:
    """What the history must hold of the c21697b samples: series key → its samples
    (`ts` and the metrics above that the old row had), oldest first."""
    from meshmon.history.samples import SeriesKey

    out: dict[Any, list[dict[str, Any]]] = {}
    for node, rows in manifest["node_history"].items():
        out[SeriesKey("node", node)] = [
            {"ts": round(r["ts"], 3),
             **{m: r[m] for m in OLD_NODE_METRICS if r[m] is not None}}
            for r in rows]
    for rows in manifest["link_history"].values():
        for r in rows:
            if r["dst"] is None:
                continue
            key = SeriesKey("link", r["src"], r["dst"], r["iface"], r["kind"])
            out.setdefault(key, []).append(
                {"ts": round(r["ts"], 3),
                 **{m: r[m] for m in OLD_LINK_METRICS if r[m] is not None}})
    return {k: sorted(v, key=lambda r: r["ts"]) for k, v in out.items()}


def as_moved(stored: list[dict[str, Any]], like: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored samples with just the fields of `like`'s rows (for comparing; sample
    times are kept to the millisecond)."""
    return [{k: round(v, 3) if k == "ts" else v for k, v in s.items() if k in want}
            for s, want in zip(stored, like, strict=False)]
