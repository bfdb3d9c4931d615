"""The log tables: one batch_log row per committed batch, one reconcile_log row per scan, one
switch_log row per change of indexer, and the per-source watermarks. Never opens a transaction:
callers write these inside theirs, on the writer's connection.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from indexer.outcome import BatchResult


def append_batch(conn: duckdb.DuckDBPyConnection, result: BatchResult) -> None:
    """The batch_log row of one batch, written before (or as) it commits."""
    conn.execute(
        "INSERT INTO batch_log VALUES (?, ?, ?, to_timestamp(?), to_timestamp(?), "
        "?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.batch_id,
            result.indexer_version,
            result.trigger,
            result.committed_at - result.processing_ms / 1000,
            result.committed_at,
            result.files,
            result.indexed,
            result.errors,
            result.pending,
            result.deleted,
            result.skipped,
            result.queue_wait_ms,
            result.processing_ms,
            list(result.event_latency_ms),
        ],
    )


def next_batch_id(conn: duckdb.DuckDBPyConnection) -> int:
    row = conn.execute("SELECT coalesce(max(batch_id), 0) FROM batch_log").fetchone()
    return int(row[0]) + 1 if row else 1


def append_reconcile(
    conn: duckdb.DuckDBPyConnection,
    scan_id: int,
    indexer_version: str,
    started_at: float,
    duration_ms: float,
    files_seen: int,
    counts: tuple[int, int, int, int],
    catches: int,
) -> None:
    """The reconcile_log row of one scan; counts are (new, modified, deleted, retried)."""
    conn.execute(
        "INSERT INTO reconcile_log VALUES (?, ?, to_timestamp(?), ?, ?, ?, ?, ?, ?, ?)",
        [scan_id, indexer_version, started_at, duration_ms, files_seen, *counts, catches],
    )


def next_scan_id(conn: duckdb.DuckDBPyConnection) -> int:
    row = conn.execute("SELECT coalesce(max(scan_id), 0) FROM reconcile_log").fetchone()
    return (int(row[0]) if row else 0) + 1


def append_switch(
    conn: duckdb.DuckDBPyConnection, from_version: str | None, to_version: str, reason: str
) -> None:
    conn.execute(
        "INSERT INTO switch_log VALUES (current_timestamp, ?, ?, ?)",
        [from_version, to_version, reason],
    )


def raise_watermarks(
    conn: duckdb.DuckDBPyConnection, source: str, time_updated_ms: Mapping[str, int]
) -> None:
    """Raise each table's watermark of a source to at least the given time_updated (ms)."""
    if not time_updated_ms:
        return
    params = [v for table, ms in sorted(time_updated_ms.items()) for v in (source, table, ms)]
    conn.execute(  # one statement (executemany costs a round trip per row)
        "INSERT INTO source_watermarks VALUES "
        + ", ".join(["(?, ?, ?)"] * len(time_updated_ms))
        + " ON CONFLICT (source, table_name) DO UPDATE SET time_updated_ms = "
        "greatest(source_watermarks.time_updated_ms, excluded.time_updated_ms)",
        params,
    )


def read_watermarks(conn: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT table_name, time_updated_ms FROM source_watermarks WHERE source = ?", [source]
    ).fetchall()
    return {str(table): int(ms) for table, ms in rows}
