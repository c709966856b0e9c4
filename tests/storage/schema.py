"""Helpers for tests of the SQLite file: its schema as data, its rows, the fixture file."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

DB_DATA = Path(__file__).parent.parent / "data" / "db"
OLD_DB = DB_DATA / "meshmon-c21697b.sqlite"
"""written by meshmon c21697b (schema version 0); see tests/data/db/README.md"""


def old_db_copy(tmp_path: Path) -> Path:
    """A copy of the c21697b database to open (the committed file is never written)."""
    path = tmp_path / "meshmon.sqlite"
    shutil.copyfile(OLD_DB, path)
    return path


def old_db_manifest() -> dict[str, Any]:
    """What the c21697b collector answered just before it stopped (made with the file)."""
    manifest: dict[str, Any] = json.loads(OLD_DB.with_suffix(".json").read_text())
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
