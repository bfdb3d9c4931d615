"""What both indexers share of the `rollout.Indexer` protocol: the IndexerStats they report and
the reads they inherit (IndexerReads). Never writes: every read goes through its own cursor.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import duckdb

from indexer import read_model
from indexer.outcome import BatchResult
from indexer.pipeline.reconcile_report import ReconcilerStats
from indexer.pipeline.watcher import WatcherStats
from indexer.pipeline.writer import IndexWriter
from indexer.snapshot import BatchSummary, ErrorFile


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexerStats:
    """One indexer's counters at one instant; each indexer extends it with its own figures."""

    version: str
    running: bool
    batches: int
    files_processed: int
    """Files through a commit (or a failed one) since start."""
    db_errors: int
    fatal: str | None
    """Why the indexer can no longer write; None while it can."""
    pending_files: int
    oldest_pending_age_s: float | None
    queue_depth: int
    """Files (v1) or sealed batches (v2) ready for the writer."""
    delayed_files: int
    """Files waiting for a retry."""
    watcher: WatcherStats | None = None
    reconciler: ReconcilerStats | None = None
    """None for v1, which has no reconciler."""


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
        return read_model.error_files(self.writer.cursor(), limit)


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
