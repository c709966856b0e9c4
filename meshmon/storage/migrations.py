"""The schema of the collector's SQLite file: one version (`PRAGMA user_version`) for the
whole file and one ordered list of migrations, whichever store writes the tables.

Version 0 is a file written before schema versions existed (meshmon up to c21697b: tables
made with `CREATE TABLE IF NOT EXISTS` by each store, `user_version` never set), or a new,
empty file. Opening the file applies every migration after its version, in order, in one
transaction, then sets `user_version`; a failure rolls all of it back. A file whose version
is newer than `SCHEMA_VERSION` was written by a newer meshmon and is refused unchanged.

To change the schema, append one `Migration` with the next version, e.g.:

    Migration(5, "events: the incident each event belongs to", (
        "ALTER TABLE events ADD COLUMN incident TEXT",
    )),

A step is an SQL statement, or a function of the connection for what SQL cannot say. Never
edit a migration that has shipped: databases out there already ran it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from meshmon.errors import StartupError

Step = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True, slots=True)
class Migration:
    """The steps that take a file from `version - 1` to `version`."""

    version: int
    description: str
    steps: tuple[Step, ...]


# The tables as meshmon wrote them before schema versions (commit c21697b), spelled out
# rather than built from LINK_METRICS: a new metric is a new migration, not an edit here.
_BASELINE: tuple[Step, ...] = (
    """CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY, info TEXT, online INTEGER NOT NULL, first_seen REAL, last_seen REAL,
    interval_s REAL NOT NULL, last_report TEXT
)""",
    """CREATE TABLE IF NOT EXISTS links (
    src TEXT NOT NULL, peer TEXT NOT NULL, iface TEXT NOT NULL, kind TEXT NOT NULL,
    dst TEXT, peer_mac TEXT, sample TEXT NOT NULL, first_seen REAL NOT NULL,
    last_seen REAL NOT NULL, report_ts REAL NOT NULL,
    PRIMARY KEY (src, peer, iface, kind)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS node_samples (
    node TEXT NOT NULL, ts REAL NOT NULL, uptime_s REAL, load1 REAL, load5 REAL, load15 REAL,
    mem_total_kb REAL, mem_avail_kb REAL, rootfs_used_pct REAL, clients REAL, links REAL
)""",
    "CREATE INDEX IF NOT EXISTS node_samples_node_ts ON node_samples (node, ts)",
    """CREATE TABLE IF NOT EXISTS link_samples (
    src TEXT NOT NULL, peer TEXT NOT NULL, iface TEXT NOT NULL, kind TEXT NOT NULL, dst TEXT,
    ts REAL NOT NULL, signal_dbm REAL, signal_avg_dbm REAL, noise_dbm REAL, snr_db REAL,
    tx_rate_mbps REAL, rx_rate_mbps REAL, expected_tput_mbps REAL, tx_retries REAL,
    tx_failed REAL, inactive_ms REAL, tq REAL, lq REAL, nlq REAL, etx REAL, cost REAL,
    rxcost REAL, chains_dbm TEXT
)""",
    "CREATE INDEX IF NOT EXISTS link_samples_src_peer_ts ON link_samples (src, peer, ts)",
    """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, node TEXT,
    summary TEXT NOT NULL, fields TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS events_ts ON events (ts)",
    """CREATE TABLE IF NOT EXISTS engine_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), saved_at REAL NOT NULL, state TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS alert_log (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, alert_id TEXT NOT NULL, status TEXT NOT NULL,
    kind TEXT NOT NULL, severity TEXT NOT NULL, summary TEXT NOT NULL, notifiers TEXT NOT NULL,
    silenced INTEGER NOT NULL, payload TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS alert_log_ts ON alert_log (ts)",
    """CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY, node TEXT NOT NULL, tag TEXT NOT NULL, starts_at REAL NOT NULL,
    ends_at REAL NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL,
    created_at REAL NOT NULL, ended_early INTEGER NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY, notifier TEXT NOT NULL, payload TEXT NOT NULL, recipient TEXT,
    created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    last_error TEXT, delivered_at REAL, dropped_at REAL, drop_reason TEXT
)""",
    """CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (id)
    WHERE delivered_at IS NULL AND dropped_at IS NULL""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the tables of meshmon before schema versions (c21697b)", _BASELINE),
    Migration(2, "maintainer sessions kept on the server", (
        # key: HMAC-SHA256(admin token, cookie value); neither the cookie nor the token is
        # stored, and a new token finds none of the old keys
        """CREATE TABLE admin_sessions (
    key TEXT PRIMARY KEY, created_at REAL NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID""",
    )),
    Migration(3, "node_samples: the report's seq (a gap is a report that never got here)", (
        "ALTER TABLE node_samples ADD COLUMN seq INTEGER",
    )),
    Migration(4, "history: raw samples, 5-minute and hourly roll-ups (meshmon.history)", (
        """CREATE TABLE history_series (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, node TEXT NOT NULL, peer TEXT NOT NULL,
    iface TEXT NOT NULL, link_kind TEXT NOT NULL,
    UNIQUE (node, kind, peer, iface, link_kind)
)""",
        """CREATE TABLE history_metrics (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, scale INTEGER NOT NULL
)""",
        *(f"""CREATE TABLE {table} (
    series INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (series, start)
) WITHOUT ROWID""" for table in ("history_raw", "history_5min", "history_1h")),
        # what history_raw holds that history_5min and history_1h do not show yet: the
        # buckets stored while still open, rolled up when a collector next starts
        """CREATE TABLE history_open (
    series INTEGER NOT NULL, start INTEGER NOT NULL, PRIMARY KEY (series, start)
) WITHOUT ROWID""",
        # the samples of older collectors move into them, then their tables go
        lambda conn: _move_legacy_samples(conn),
        "DROP TABLE node_samples",
        "DROP TABLE link_samples",
    )),
    Migration(5, "history: daily records (history_1d); a journal of open buckets", (
        """CREATE TABLE history_1d (
    series INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (series, start)
) WITHOUT ROWID""",
        # the samples of buckets still open, one row per write (instead of each open
        # bucket's raw row rewritten at every write, marked in history_open)
        """CREATE TABLE history_journal (
    id INTEGER PRIMARY KEY, last_start INTEGER NOT NULL, data BLOB NOT NULL
)""",
        lambda conn: _history_5(conn),
        "DROP TABLE history_open",
    )),
    Migration(6, "history: finished spans packed into long rows (meshmon.history.packing)", (
        # rowid tables: a row of several kB fills its overflow pages (a WITHOUT ROWID
        # table leaves most of one empty); the rows are packed by the running collector
        *(f"""CREATE TABLE {table} (
    series INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (series, start)
)""" for table in ("history_raw_packed", "history_5min_packed", "history_1h_packed")),
    )),
)  # fmt: skip
SCHEMA_VERSION = MIGRATIONS[-1].version
"""the schema version this code writes (and the newest it can read)"""


def _move_legacy_samples(conn: sqlite3.Connection) -> None:
    from meshmon.history.legacy import convert  # the history package knows the layout

    convert(conn)


def _history_5(conn: sqlite3.Connection) -> None:
    """Roll up the buckets a killed collector left open, then fill history_1d."""
    from meshmon.history.tables import HistoryTables

    tables = HistoryTables(conn)
    for sid, start in conn.execute("SELECT series, start FROM history_open").fetchall():
        bucket = tables.stored_raw(sid, start)
        if bucket is not None:
            tables.roll_up(sid, bucket)
    for sid in sorted(tables.keys):
        tables.rebuild_daily(sid)


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's `PRAGMA user_version` (0: before schema versions, or a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def refuse_newer(path: str, version: int) -> None:
    """Raise a StartupError when `version` is newer than this code knows."""
    if version > SCHEMA_VERSION:
        raise StartupError(
            f"the SQLite database {path} has schema version {version}, but this meshmon "
            f"supports up to version {SCHEMA_VERSION}: it was written by a newer meshmon. "
            "Upgrade meshmon or restore a backup made by this version; the file was not "
            "changed.")


def migrate(conn: sqlite3.Connection, path: str) -> tuple[int, int]:
    """Bring the file to SCHEMA_VERSION in one transaction; (version before, after).

    `conn` is in autocommit mode (`isolation_level=None`). Safe to call from several
    connections at once: the version is read again under the write lock."""
    before = schema_version(conn)
    refuse_newer(path, before)
    if before == SCHEMA_VERSION:
        return before, before
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(conn)
        refuse_newer(path, before)
        for migration in MIGRATIONS[before:]:
            for step in migration.steps:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back by itself (disk full, I/O)
            conn.execute("ROLLBACK")
        raise
    return before, SCHEMA_VERSION
