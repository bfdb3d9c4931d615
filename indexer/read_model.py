"""Typed reads of the index for `ocindex status` and the dashboard: counts, errors, sources.
Never writes or opens anything: it reads through the connection or cursor it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from indexer.kinds import DATA_TABLES, SOURCE_PREFIX_PATTERN
from indexer.outcome import FileStatus
from indexer.snapshot import ErrorFile
from indexer.store.schema import schema_version

JSON_NAMESPACE = "json"
"""The namespace of the JSON files in indexed_by_source; a source's is its key prefix."""


@dataclass(frozen=True, slots=True)
class IndexCounts:
    """What the index holds; tables a legacy database lacks count as 0."""

    schema_version: int
    file_index: dict[str, int]
    """file_index rows by status: indexed, error, pending, deleted, skipped."""
    tables: dict[str, int]
    """Rows per data table."""


def existing_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def _count(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def file_status_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Return file_index rows by status; a legacy table without status counts as all indexed."""
    counts = {str(s): 0 for s in FileStatus}
    if "file_index" not in existing_tables(conn):
        return counts
    has_status = _count(
        conn,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'file_index' AND column_name = 'status'",
    )
    query = (
        "SELECT status, count(*) FROM file_index GROUP BY status"
        if has_status
        else "SELECT 'indexed', count(*) FROM file_index"
    )
    for status, n in conn.execute(query).fetchall():
        counts[str(status)] = int(n)
    return counts


def index_counts(conn: duckdb.DuckDBPyConnection) -> IndexCounts:
    existing = existing_tables(conn)
    tables = {
        t.name: _count(conn, f"SELECT count(*) FROM {t.name}") if t.name in existing else 0
        for t in DATA_TABLES
    }
    return IndexCounts(schema_version(conn), file_status_counts(conn), tables)


def error_files(cursor: duckdb.DuckDBPyConnection, limit: int) -> list[ErrorFile]:
    """Files in error, newest first, through a reader's own cursor (closed here)."""
    try:
        rows = cursor.execute(
            "SELECT file_path, file_type, coalesce(error_message, ''), coalesce(attempts, 0), "
            "status FROM file_index WHERE status = 'error' ORDER BY indexed_at DESC, file_path "
            "LIMIT ?",
            [limit],
        ).fetchall()
    finally:
        cursor.close()
    return [
        ErrorFile(
            rel_path=str(path),
            kind=str(kind),
            reason=str(message).split(":", 1)[0],
            message=str(message),
            attempts=int(attempts),
            status=str(status),
        )
        for path, kind, message, attempts, status in rows
    ]


def indexed_by_source(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """file_index rows by namespace ('json' for files, else the source prefix) and status."""
    try:
        rows = conn.execute(
            f"SELECT CASE WHEN regexp_matches(file_path, '{SOURCE_PREFIX_PATTERN}') "
            "THEN regexp_extract(file_path, '^([a-z]+:.*:)[a-z0-9_]+/', 1) "
            f"ELSE '{JSON_NAMESPACE}' END AS ns, "
            "coalesce(status, 'indexed'), count(*) FROM file_index GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    except duckdb.Error:  # no file_index yet, or a v1-era one without statuses
        return {}
    out: dict[str, dict[str, int]] = {}
    for ns, status, n in rows:
        out.setdefault(str(ns), {})[str(status)] = int(n)
    return out


def source_watermarks(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Every source's committed time_updated (ms) per SQLite table; empty before schema 4."""
    try:
        rows = conn.execute(
            "SELECT source, table_name, time_updated_ms FROM source_watermarks ORDER BY 1, 2"
        ).fetchall()
    except duckdb.Error:
        return {}
    out: dict[str, dict[str, int]] = {}
    for source, table, ms in rows:
        out.setdefault(str(source), {})[str(table)] = int(ms)
    return out
