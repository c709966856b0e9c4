"""The schema version and migrations of the collector's SQLite file, on real files: a new
file, one written by meshmon c21697b (before versions), a newer one, a broken one."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from meshmon.config import Config
from meshmon.errors import StartupError
from meshmon.history import query
from meshmon.history.samples import KNOWN_METRICS
from meshmon.history.tables import HistoryTables
from meshmon.service import Service
from meshmon.storage import migrations
from meshmon.storage.database import open_database
from meshmon.storage.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from tests.servers import free_port
from tests.storage.schema import (
    as_moved,
    moved_samples,
    old_db_copy,
    old_db_manifest,
    rows_of,
    schema_of,
    user_version,
)


def test_migrations_are_numbered_one_after_another() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len(MIGRATIONS) == SCHEMA_VERSION


def test_a_new_file_gets_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    open_database(path).close()
    assert user_version(path) == SCHEMA_VERSION
    schema = schema_of(path)
    assert {"nodes", "links", "events", "engine_state", "alert_log", "silences", "deliveries",
            "admin_sessions", "history_series", "history_metrics", "history_raw",
            "history_5min", "history_1h", "history_1d", "history_journal", "history_raw_packed",
            "history_5min_packed", "history_1h_packed"} <= set(schema)
    # samples went to the history tables, where metric names are rows: a new metric needs
    # no migration
    assert not {"node_samples", "link_samples"} & set(schema)
    assert [c[0] for c in schema["history_metrics"]["columns"]] == ["id", "name", "scale"]
    assert {c[0] for c in schema["history_raw"]["columns"]} == {"series", "start", "data"}
    assert "signal_dbm" in KNOWN_METRICS and "ccq_pct" in KNOWN_METRICS


def test_a_c21697b_file_is_migrated_to_the_schema_of_a_new_one_with_its_rows(
    tmp_path: Path,
) -> None:
    old = old_db_copy(tmp_path)
    assert user_version(old) == 0
    before = rows_of(old)
    open_database(old).close()
    assert user_version(old) == SCHEMA_VERSION
    fresh = tmp_path / "fresh.sqlite"
    open_database(fresh).close()
    assert schema_of(old) == schema_of(fresh)
    after = rows_of(old)
    # version 4 moved the samples into the history tables (next test)
    samples = {"node_samples", "link_samples"}
    history = {t for t in after if t.startswith("history_")}
    assert {k: v for k, v in after.items() if k not in history} == {
        **{k: v for k, v in before.items() if k not in samples}, "admin_sessions": []}
    assert len(before["link_samples"]) == 50 and len(after["deliveries"]) == 4
    assert after["history_journal"] == [] and len(after["history_raw"]) > 0


def test_the_old_samples_move_into_the_history(tmp_path: Path) -> None:
    path = old_db_copy(tmp_path)
    open_database(path).close()
    conn = sqlite3.connect(path)
    tables = HistoryTables(conn)
    want = moved_samples(old_db_manifest())
    assert len(want) == 5 + 12  # 5 nodes, 12 resolved links (wifi and batman)
    for key, rows in want.items():
        stored = query.samples(tables, {}, key)
        assert as_moved(stored, rows) == rows, key
    # counters came as rates (the old rows count 10 more retries a report)
    wifi = query.samples(tables, {}, next(k for k in want if k.link_kind == "wifi"))
    assert "tx_retries" not in wifi[0] and all(s["tx_retries_per_s"] > 0 for s in wifi[1:])
    conn.close()


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    path = old_db_copy(tmp_path)
    conn = open_database(path)
    schema, rows = schema_of(path), rows_of(path)
    changes = conn.total_changes  # (moving the old samples wrote rows)
    assert migrations.migrate(conn, str(path)) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert conn.total_changes == changes  # the second pass wrote nothing
    conn.close()
    open_database(path).close()  # and opening it again neither
    assert (schema_of(path), rows_of(path)) == (schema, rows)
    assert user_version(path) == SCHEMA_VERSION


def test_a_failing_migration_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = old_db_copy(tmp_path)
    schema, rows = schema_of(path), rows_of(path)
    broken = Migration(SCHEMA_VERSION + 1, "a column, then a mistake", (
        "ALTER TABLE events ADD COLUMN incident TEXT",
        "ALTER TABLE no_such_table ADD COLUMN x REAL",
    ))  # fmt: skip
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StartupError) as failed:
        open_database(path)
    assert str(path) in str(failed.value) and "no_such_table" in str(failed.value)
    assert "rolled back" in str(failed.value)
    # all of it rolled back, the earlier migrations (1 … latest) included
    assert user_version(path) == 0
    assert (schema_of(path), rows_of(path)) == (schema, rows)


def newer_file(tmp_path: Path) -> Path:
    """A file a newer meshmon wrote: one version ahead, in rollback-journal mode (so even
    switching it to WAL would change its bytes)."""
    path = tmp_path / "meshmon.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE nodes (id TEXT PRIMARY KEY, future_column BLOB)")
    conn.execute("INSERT INTO nodes VALUES ('n1', x'00')")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def refused_unchanged(path: Path, message: str) -> None:
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"supports up to version {SCHEMA_VERSION}" in message
    assert "Upgrade meshmon or restore a backup" in message
    assert "not changed" in message


def test_a_newer_file_is_refused_and_never_altered(tmp_path: Path) -> None:
    path = newer_file(tmp_path)
    content, stat = path.read_bytes(), path.stat()
    with pytest.raises(StartupError) as refused:
        open_database(path)
    refused_unchanged(path, str(refused.value))
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshmon.sqlite"]


async def test_the_collector_refuses_a_newer_file_before_it_starts_anything(
    tmp_path: Path,
) -> None:
    path = newer_file(tmp_path)
    content = path.read_bytes()
    config = Config.model_validate({
        "mqtt": {"embedded": {"port": 0}}, "http": {"port": 0},
        "storage": {"path": str(path)},
    })  # fmt: skip
    service = Service(config)
    with pytest.raises(StartupError) as refused:
        await service.start()
    refused_unchanged(path, str(refused.value))
    assert path.read_bytes() == content
    assert service.broker is None and service.http_port == 0
    # not even the maintainer token file was made next to it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshmon.sqlite"]


def test_meshmon_serve_says_why_it_will_not_start(tmp_path: Path) -> None:
    path = newer_file(tmp_path)
    cfg = tmp_path / "meshmon.toml"
    cfg.write_text(f'[mqtt.embedded]\nport = {free_port()}\n[http]\nport = {free_port()}\n'
                   f'[storage]\npath = "{path}"\n')
    run = subprocess.run([sys.executable, "-m", "meshmon.cli", "serve", "-c", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "meshmon: cannot start:" in run.stderr and "Traceback" not in run.stderr
    refused_unchanged(path, run.stderr.replace("\n", " "))


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "meshmon.sqlite"
    path.write_bytes(b"these are not the droids\n" * 100)
    with pytest.raises(StartupError, match="not a database") as failed:
        open_database(path)
    assert str(path) in str(failed.value)
