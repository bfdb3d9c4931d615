"""HybridIndexer (v1) owns the legacy pipeline, kept honest: a DuckDB-read bulk load, then per file.
It must never batch realtime writes into one transaction, nor let two threads write at once.

Bulk (at start, and on rescan; legacy/bulk.py): walk the tree and keep the files whose stamp
differs from file_index (or whose row is pending). The files older than the start time are read
by DuckDB (`read_blob(?)` with a list of paths, in chunks) and parsed by the same record parser
as v2. A file that does not parse cleanly is re-read by processor.read_file, so both indexers
classify it alike. Each chunk is written with autocommitted statements, file_index rows
included. Newer files and handed-over keys go to the realtime path.

Realtime: watcher events feed a debounce map (legacy/debounce.py: path -> deadline, debounce_ms
after the LAST event). One worker thread takes the due files one at a time: read_file, look up
its row, then a few autocommitted statements and a one-file batch_log row. There is no
reconciler; rescan() runs the bulk phase again, on the worker. Every database touch is a job
of the IndexWriter; besides its idle checkpoints, v1 checkpoints after the startup bulk load
and when it stops on a writer it does not close.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb

from indexer.facade import IndexerReads, IndexerStats
from indexer.kinds import FileKey, is_source_path
from indexer.legacy.bulk import BulkLoader, BulkReport, BulkRequest, first_line
from indexer.legacy.debounce import Debouncer, Waiting
from indexer.outcome import BatchResult, FileRead, FileStatus
from indexer.pipeline.accumulator import PendingEntry, Trigger
from indexer.pipeline.apply import apply_reads
from indexer.pipeline.reader import ProcessorConfig, read_file
from indexer.pipeline.watcher import StorageWatcher
from indexer.pipeline.writer import IndexWriter, WriterFailed
from indexer.snapshot import PendingFile, ReconcileSummary, newest_pending
from indexer.store.logs import append_batch, next_batch_id
from indexer.store.tracking import FileTracker

__all__ = ["BulkReport", "HybridIndexer", "V1Config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class V1Config:
    debounce_ms: float = 500.0
    """A file is processed this long after the LAST event for it."""
    watch: bool = True
    processor: ProcessorConfig = field(default_factory=ProcessorConfig)
    bulk_chunk_files: int = 2000
    """Files per DuckDB read and per group of autocommitted writes in the bulk phase."""
    db_retry_s: float = 1.0
    """A file whose statements failed is tried again after this long."""


@dataclass(frozen=True, slots=True, kw_only=True)
class V1Stats(IndexerStats):
    realtime_files: int
    """Files through the one-at-a-time path."""
    bulk_files_read: int
    events_lost: int
    bulk: BulkReport | None
    """The last run of the bulk phase."""


class HybridIndexer(IndexerReads):
    """start() and stop() from one controlling thread; every other method is safe from any."""

    version = "v1"

    def __init__(
        self,
        root: Path,
        db_path: Path | None = None,
        writer: IndexWriter | None = None,
        config: V1Config | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> None:
        if writer is None and db_path is None:
            raise ValueError("give db_path or a writer")
        self.root = root
        self.db_path = db_path
        self.writer = writer
        self._owns_writer = writer is None
        self.config = config or V1Config()
        self._on_batch = on_batch
        self.watcher: StorageWatcher | None = None
        self._worker: threading.Thread | None = None
        self._cond = threading.Condition()
        self._lock = self._cond  # IndexerReads guards _recent with it
        # The files (and rescans) waiting for the worker; stats() reads it under _cond.
        self._waiting = Debouncer(self._cond, self.config.debounce_ms / 1000)
        self._bulk = BulkLoader(
            root,
            self.version,
            self.config.processor,
            self.config.bulk_chunk_files,
            waiting=self._waiting.paths,
            to_realtime=self.submit,
            retry_later=self._waiting.retry_later,
            log_batch=self._log_batch,
        )
        self._recent: deque[BatchResult] = deque(maxlen=500)
        self._last_bulk: BulkReport | None = None
        self._last_commit = 0.0
        self._next_batch_id = 1
        self.batches = 0
        self.files_processed = 0
        self.realtime_files = 0
        self.bulk_files_read = 0
        self.events_lost = 0
        self.db_errors = 0
        self._fatal: str | None = None
        self.running = False
        self._interrupted = False

    @property
    def fatal(self) -> str | None:
        writer = self.writer
        return self._fatal or (writer.fatal if writer is not None else None)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, handover: Iterable[PendingEntry] = ()) -> None:
        """Open and migrate the database if needed, watch, run the bulk phase, then go realtime.

        The watcher starts before the bulk scan, so nothing written meanwhile is missed: its
        events wait in the debounce map until the worker starts.
        """
        if self.writer is None:
            assert self.db_path is not None
            self.writer = IndexWriter.open(self.db_path)
        writer = self.writer
        self._next_batch_id = writer.run(next_batch_id, writes=False)
        handed = list(handover)
        # v1 reads the JSON files only
        self._waiting.open(e for e in handed if not is_source_path(e.key.rel_path))
        if self.config.watch:
            self.watcher = StorageWatcher(self.root, self.submit, self._events_lost)
            self.watcher.start()
        try:
            writer.run(partial(self._run_bulk, trigger=Trigger.STARTUP))
            writer.run(_checkpoint)
        except BaseException:
            self.stop_intake()
            raise
        finally:
            self._waiting.set_busy(False)
        self._worker = threading.Thread(target=self._work_loop, name="ocindex-v1", daemon=True)
        self._worker.start()
        self.running = True
        log.info("v1 started on %s (%d handed over)", self.root, len(handed))

    def interrupt(self) -> None:
        """Have start()'s bulk phase end after the chunk it is on (see Indexer.interrupt)."""
        self._interrupted = True

    def stop_intake(self) -> None:
        """Stop the watcher; the worker keeps processing what is already debounced."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def stop(self, flush: bool = True, close: bool = True) -> list[PendingEntry]:
        """Stop intake, then process everything debounced (or hand it back), checkpoint.

        Returns what was not processed: nothing with flush=True (unless the worker had died),
        the debounced files otherwise, for a handover to v2.
        """
        self.stop_intake()
        self._waiting.close(flush)
        if self._worker is not None:
            self._worker.join(60)
            self._worker = None
        leftover, requests = self._waiting.drain()
        for request in requests:
            request.done.set()  # nobody will run it now; rescan() sees no report
        self.running = False
        if self.writer is not None:
            if close and self._owns_writer:
                self.writer.close()
                self.writer = None
            elif self.fatal is None:
                try:
                    self.writer.run(_checkpoint)
                except duckdb.Error as exc:
                    log.debug("v1 checkpoint skipped: %s", exc)
        return leftover

    # --- intake -----------------------------------------------------------------------------

    def submit(self, keys: list[FileKey], trigger: Trigger = Trigger.MANUAL) -> None:
        """Debounce these files: each is due debounce_ms after its last submission."""
        # v1 reads the JSON files only
        self._waiting.add((k for k in keys if not is_source_path(k.rel_path)), trigger)

    def _events_lost(self, why: str) -> None:
        log.warning("v1: events may have been lost (%s): rescanning", why)
        with self._cond:
            self.events_lost += 1
            self._waiting.request_once(BulkRequest(Trigger.WATCHER))

    # --- the worker thread ------------------------------------------------------------------

    def _work_loop(self) -> None:
        """Take due files and rescan requests one at a time; the writer runs each."""
        assert self.writer is not None
        writer = self.writer
        try:
            while (job := self._waiting.take(lambda: self.fatal is not None)) is not None:
                if isinstance(job, BulkRequest):
                    self._run_request(job)
                else:
                    writer.run(partial(self._process_one, waiting=job))
        except WriterFailed:
            return  # the writer said why
        except Exception as exc:  # a bug, not a file's fault: record it and stop writing
            log.exception("v1 worker stopped")
            self._fatal = f"the v1 worker stopped: {first_line(exc)}"
        finally:
            self._waiting.set_busy(False)

    def _run_request(self, request: BulkRequest) -> None:
        try:
            assert self.writer is not None
            request.report = self.writer.run(partial(self._run_bulk, trigger=request.trigger))
        except duckdb.Error as exc:
            with self._cond:
                self.db_errors += 1
            request.error = exc
            log.error("v1 rescan failed: %s", first_line(exc))
        finally:
            request.done.set()

    def _run_bulk(self, conn: duckdb.DuckDBPyConnection, trigger: Trigger) -> BulkReport:
        """The bulk phase, a job of the writer; its report feeds stats()."""
        report = self._bulk.run(conn, trigger, stopping=lambda: self._interrupted)
        with self._cond:
            self._last_bulk = report
            self.bulk_files_read += report.read
        return report

    def _process_one(self, conn: duckdb.DuckDBPyConnection, waiting: Waiting) -> None:
        """The legacy per-file path: read, look up, then a few autocommitted statements."""
        tracker = FileTracker(conn, self.version)
        key = waiting.key
        started = time.monotonic()
        queue_wait_ms = max(0.0, started - waiting.due) * 1000
        try:
            prior = tracker.lookup([key.rel_path])
            before = prior.get(key.rel_path)
            read = read_file(
                self.root, key, self.config.processor, before.attempts if before else 0
            )
            kept = apply_reads(conn, tracker, [read], prior)
            self._log_batch(
                conn,
                str(waiting.trigger),
                [read],
                kept,
                started,
                queue_wait_ms,
                (waiting.event_at,),
            )
        except Exception as exc:  # the database's, or a bug's: this file waits, the rest go on
            self._file_failed(waiting, exc)
            return
        with self._cond:
            self.realtime_files += 1
        if read.status is FileStatus.ERROR:
            log.warning("error: %s: %s", key.rel_path, read.message)
        if read.retry_in_s is not None and not self._waiting.draining:
            self._waiting.retry_later(key, read.retry_in_s)

    def _file_failed(self, waiting: Waiting, exc: Exception) -> None:
        with self._cond:
            self.db_errors += 1
        assert self.writer is not None
        if isinstance(exc, duckdb.Error) and self.writer.check_invalidated(exc):
            return
        log.error("v1: %s not written, retrying: %s", waiting.key.rel_path, first_line(exc))
        if not self._waiting.draining:
            self._waiting.retry_later(waiting.key, self.config.db_retry_s, waiting.trigger)

    def _log_batch(
        self,
        conn: duckdb.DuckDBPyConnection,
        trigger: str,
        reads: Sequence[FileRead],
        kept: Sequence[FileRead],
        started: float,
        queue_wait_ms: float = 0.0,
        event_at: Sequence[float] = (),
    ) -> BatchResult:
        """Append the batch_log row (autocommitted) and publish the result."""
        result = BatchResult.of(
            batch_id=self._next_batch_id,
            indexer_version=self.version,
            trigger=trigger,
            reads=reads,
            kept=kept,
            queue_wait_ms=queue_wait_ms,
            processing_ms=(time.monotonic() - started) * 1000,
            committed_at=time.time(),
            event_at=event_at,
        )
        append_batch(conn, result)
        self._next_batch_id += 1
        with self._cond:
            self.batches += 1
            self.files_processed += len(reads)
            self._last_commit = result.committed_at
            self._recent.appendleft(result)
        if self._on_batch is not None:
            try:
                self._on_batch(result)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("on_batch listener failed")
        return result

    # --- facade ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Make every debounced file (and waiting retry) due now; the worker takes them next."""
        self._waiting.flush()

    def rescan(self) -> BulkReport | None:
        """Run the bulk phase again over the files changed since (stamp != file_index).

        Runs on the worker while it is alive, so only one thread ever writes; waits for it.
        """
        worker = self._worker
        on_worker = worker is threading.current_thread()  # e.g. from an on_batch callback
        if worker is not None and worker.is_alive() and not on_worker:
            request = BulkRequest(Trigger.MANUAL)
            self._waiting.request(request)
            while not request.done.wait(0.1):
                if not worker.is_alive():
                    break
            if request.error is not None:
                raise request.error
            if request.done.is_set():
                return request.report
        if self.writer is None or self.writer.is_closed or self._waiting.closed:
            return None  # not started, or stopped: a stopped indexer writes nothing
        return self.writer.run(partial(self._run_bulk, trigger=Trigger.MANUAL))

    def is_idle(self, settle_s: float = 0.0) -> bool:
        with self._cond:
            if not self._waiting.is_idle():
                return False
            last = self._last_commit
        return time.time() - last >= settle_s

    def stats(self) -> V1Stats:
        watcher = self.watcher
        watched = watcher.get_stats() if watcher is not None else None
        with self._cond:
            now = time.monotonic()
            oldest = min((w.first_seen for w in self._waiting.values()), default=None)
            return V1Stats(
                version=self.version,
                running=self.running,
                batches=self.batches,
                files_processed=self.files_processed,
                db_errors=self.db_errors,
                fatal=self.fatal,
                pending_files=len(self._waiting),
                oldest_pending_age_s=None if oldest is None else now - oldest,
                queue_depth=sum(1 for w in self._waiting.values() if w.due <= now),
                delayed_files=sum(1 for w in self._waiting.values() if w.trigger is Trigger.RETRY),
                watcher=watched,
                realtime_files=self.realtime_files,
                bulk_files_read=self.bulk_files_read,
                events_lost=self.events_lost,
                bulk=self._last_bulk,
            )

    def pending_files(self, limit: int = 100) -> list[PendingFile]:
        """The debounce map, newest first."""
        with self._cond:
            return newest_pending(self._waiting.values(), time.monotonic(), limit)

    def reconciler_findings(self, limit: int = 10) -> list[ReconcileSummary]:
        return []  # v1 has no reconciler: that is what v2 adds


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CHECKPOINT")
