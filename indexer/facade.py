"""What both indexers' facades share: the reads the dashboard and the CLI make of them.
Never writes: every read goes through its own cursor, closed after use.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import duckdb

from indexer.outcome import BatchResult
from indexer.pipeline.writer import IndexWriter
from indexer.snapshot import BatchSummary, ErrorFile


class IndexerReads:
    """Mixed into both indexers; they provide writer, _lock, _recent and is_idle()."""

    writer: IndexWriter | None
    _lock: threading.Lock | threading.Condition
    _recent: deque[BatchResult]

    def is_idle(self, settle_s: float = 0.0) -> bool:
        raise NotImplementedError

    def wait_idle(self, timeout_s: float = 30.0, settle_s: float = 0.0) -> bool:
        """Wait until nothing is pending, queued or being written; True if reached in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.is_idle(settle_s):
                return True
            time.sleep(0.02)
        return False

    def recent_batches(self, limit: int = 100) -> list[BatchSummary]:
        with self._lock:
            recent = list(self._recent)[:limit]
        return [summarize(r) for r in recent]

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the index for the calling thread's reads; the caller closes it."""
        if self.writer is None or self.writer.is_closed:
            raise RuntimeError("the indexer is not running")
        return self.writer.cursor()

    def error_files(self, limit: int = 100) -> list[ErrorFile]:
        if self.writer is None or self.writer.is_closed:
            return []
        return error_files(self.writer.cursor(), limit)


def summarize(result: BatchResult) -> BatchSummary:
    lat = sorted(result.event_latency_ms)
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None
    return BatchSummary(
        batch_id=result.batch_id,
        indexer_version=result.indexer_version,
        trigger=result.trigger,
        committed_at=result.committed_at,
        files=result.files,
        indexed=result.indexed,
        errors=result.errors,
        pending=result.pending,
        deleted=result.deleted,
        processing_ms=result.processing_ms,
        queue_wait_ms=result.queue_wait_ms,
        event_p95_ms=p95,
    )


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
