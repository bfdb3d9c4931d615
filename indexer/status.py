"""What `ocindex status` reports: schema version, file_index counts, rows per data table.
Never writes: it reads through whatever connection or cursor it is handed.
"""

from __future__ import annotations

from typing import Any

import duckdb

from indexer.records import TABLES
from indexer.schema import schema_version
from indexer.tracker import FileStatus


def collect_status(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Return the status document; tables a legacy database lacks count as 0."""
    existing = {
        r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    counts = {str(s): 0 for s in FileStatus}
    if "file_index" in existing:
        has_status = bool(
            conn.execute(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'file_index' AND column_name = 'status'"
            ).fetchone()[0]  # type: ignore[index]
        )
        query = (
            "SELECT status, count(*) FROM file_index GROUP BY status"
            if has_status
            else "SELECT 'indexed', count(*) FROM file_index"
        )
        for status, n in conn.execute(query).fetchall():
            counts[str(status)] = int(n)
    tables = {}
    for table in TABLES.values():
        n = 0
        if table.name in existing:
            n = int(conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0])  # type: ignore[index]
        tables[table.name] = n
    return {"schema_version": schema_version(conn), "file_index": counts, "tables": tables}
