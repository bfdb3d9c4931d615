"""What `ocindex status` reports: schema version, file_index counts, rows per data table.
Never writes: it reads through whatever connection or cursor it is handed.
"""

from __future__ import annotations

from typing import Any

import duckdb

from indexer.kinds import TABLES
from indexer.outcome import FileStatus
from indexer.store.schema import schema_version


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


def collect_status(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Return the status document; tables a legacy database lacks count as 0."""
    existing = existing_tables(conn)
    tables = {
        t.name: _count(conn, f"SELECT count(*) FROM {t.name}") if t.name in existing else 0
        for t in TABLES.values()
    }
    return {
        "schema_version": schema_version(conn),
        "file_index": file_status_counts(conn),
        "tables": tables,
    }
