"""The index's DDL and its ordered, idempotent migrations, each applied with its version record
in one transaction (a new database's all in one). Never keeps a connection of its own; the
writer runs migrate().

Migrations add columns without non-constant defaults and checkpoint afterwards, because DDL
left in the WAL is the part of DuckDB's crash recovery most often reported broken.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from indexer.kinds import DATA_TABLES, FileKind, Table
from indexer.store.database import DatabaseError, transaction
from indexer.store.views import VIEWS_VERSION, create_views

SCHEMA_VERSION = 6

FILE_STATUSES = ("indexed", "error", "pending", "deleted", "skipped")


def _ddl(table: Table) -> str:
    cols = ", ".join(f"{name} {kind}" for name, kind in table.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} ({cols}, "
        f"PRIMARY KEY ({', '.join(table.primary_key)}))"
    )


def _v1_file_index(conn: duckdb.DuckDBPyConnection) -> None:
    # The legacy tracker's table, exactly as deployed databases have it.
    conn.execute(
        """CREATE TABLE IF NOT EXISTS file_index (
            file_path VARCHAR PRIMARY KEY,
            file_type VARCHAR NOT NULL,
            mtime DOUBLE NOT NULL,
            size INTEGER NOT NULL,
            record_id VARCHAR,
            indexed_at TIMESTAMP DEFAULT current_timestamp,
            error_message VARCHAR
        )"""
    )


_FILE_INDEX_V2_COLUMNS = (
    ("status", "VARCHAR DEFAULT 'indexed'"),
    ("mtime_ns", "BIGINT"),
    ("content_hash", "VARCHAR"),
    ("attempts", "INTEGER DEFAULT 0"),
    ("indexer_version", "VARCHAR"),
    ("first_attempt_at", "TIMESTAMP"),
)


def _migrate_columns(
    conn: duckdb.DuckDBPyConnection, table: str, wanted: tuple[tuple[str, str], ...]
) -> None:
    """Add each missing column; constant defaults only, so existing rows read the default."""
    have = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }
    for name, decl in wanted:
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")


def _v2_file_index_status(conn: duckdb.DuckDBPyConnection) -> None:
    _migrate_columns(conn, "file_index", _FILE_INDEX_V2_COLUMNS)
    conn.execute("UPDATE file_index SET status = 'indexed' WHERE status IS NULL")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_file_index_status ON file_index(status)")


def _v3_data_and_logs(conn: duckdb.DuckDBPyConnection) -> None:
    for table in DATA_TABLES:
        conn.execute(_ddl(table))
    conn.execute(
        """CREATE TABLE IF NOT EXISTS batch_log (
            batch_id BIGINT PRIMARY KEY,
            indexer_version VARCHAR NOT NULL,
            trigger VARCHAR,
            started_at TIMESTAMP,
            committed_at TIMESTAMP,
            files INTEGER,
            indexed INTEGER,
            errors INTEGER,
            pending INTEGER,
            deleted INTEGER,
            skipped INTEGER,
            queue_wait_ms DOUBLE,
            processing_ms DOUBLE,
            event_latency_ms DOUBLE[]
        )"""
    )
    conn.execute(
        """CREATE TABLE IF NOT EXISTS reconcile_log (
            scan_id BIGINT PRIMARY KEY,
            indexer_version VARCHAR,
            started_at TIMESTAMP,
            duration_ms DOUBLE,
            files_seen BIGINT,
            new_files BIGINT,
            modified_files BIGINT,
            deleted_files BIGINT,
            retried_files BIGINT,
            catches BIGINT
        )"""
    )
    conn.execute(
        """CREATE TABLE IF NOT EXISTS switch_log (
            switched_at TIMESTAMP,
            from_version VARCHAR,
            to_version VARCHAR,
            reason VARCHAR
        )"""
    )


def _v4_source_watermarks(conn: duckdb.DuckDBPyConnection) -> None:
    # Per source and table, the largest time_updated (epoch ms) committed: written by the
    # source in each batch's transaction, so it never runs ahead of the rows.
    conn.execute(
        """CREATE TABLE IF NOT EXISTS source_watermarks (
            source VARCHAR,
            table_name VARCHAR,
            time_updated_ms BIGINT,
            PRIMARY KEY (source, table_name)
        )"""
    )


def _v5_generations(conn: duckdb.DuckDBPyConnection) -> None:
    # OpenCode 2's fields (message type, fork copies, session roll-ups, model, fork): new
    # columns at the end of each table. Rows indexed before keep NULL there until their record
    # changes; `messages.type` is then read as coalesce(type, role).
    for table in DATA_TABLES:
        _migrate_columns(conn, table.name, table.columns)


_REREAD_KINDS = (FileKind.MESSAGE, FileKind.PART, FileKind.MESSAGE_CONTENT)


def _v6_complete_rows(conn: duckdb.DuckDBPyConnection) -> None:
    # Tool targets, exit codes, full text and the other fields of complete rows: new columns at
    # the end of messages and parts. Their records are read again through the normal pipeline:
    # a stamp and hash that match nothing make the next reconcile find each one modified, and
    # each is marked read as it is written, so an interrupted refill resumes where it stopped.
    # Rows stay in place until their record is read again, so nothing is lost meanwhile.
    for table in DATA_TABLES:
        _migrate_columns(conn, table.name, table.columns)
    kinds = ", ".join(f"'{k}'" for k in _REREAD_KINDS)
    conn.execute(
        "UPDATE file_index SET mtime_ns = NULL, content_hash = NULL "
        f"WHERE status = 'indexed' AND file_type IN ({kinds})"
    )
    create_views(conn)
    set_meta(conn, "views_version", VIEWS_VERSION)


MIGRATIONS: tuple[tuple[int, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    (1, _v1_file_index),
    (2, _v2_file_index_status),
    (3, _v3_data_and_logs),
    (4, _v4_source_watermarks),
    (5, _v5_generations),
    (6, _v6_complete_rows),
)


def schema_version(conn: duckdb.DuckDBPyConnection) -> int:
    """Return the applied schema version: 0 for a new file, 1 for a legacy v1-era database."""
    tables = {
        r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None:
            return int(row[0])
    return 1 if "file_index" in tables else 0


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration not yet applied, each with its version record in one transaction;
    a new database takes them all in one, to the same schema (one commit, not six: medians of
    8 alternated rounds 57.7 against 66.1 ms on tmpfs, 56.6 against 70.5 ms on disk;
    docs/benchmarks.md, "A new database's schema in one transaction")."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise DatabaseError(
            f"database schema {current} is newer than this ocindex knows ({SCHEMA_VERSION}); "
            "upgrade ocindex"
        )
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    steps = [(version, step) for version, step in MIGRATIONS if version > current]
    for group in [steps] if current == 0 else [[one] for one in steps]:
        with transaction(conn):
            for _, step in group:
                step(conn)
            current = group[-1][0]
            set_meta(conn, "schema_version", str(current))
    if get_meta(conn, "views_version") != VIEWS_VERSION:
        with transaction(conn):
            create_views(conn)
            set_meta(conn, "views_version", VIEWS_VERSION)
    conn.execute("CHECKPOINT")
    return current


def get_meta(conn: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
