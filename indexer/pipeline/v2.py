"""UnifiedIndexerV2: wires watcher and reconciler into the accumulator, and the accumulator into
the one writer thread that runs the BatchProcessor. Holds no pipeline logic of its own.

A clean stop loses nothing: intake stops first, then everything pending is sealed and committed,
then the database is checkpointed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb

from indexer.config import Tunables, process_env
from indexer.facade import IndexerReads, IndexerStats
from indexer.kinds import FileKey
from indexer.outcome import BatchResult, FileStatus
from indexer.pipeline.accumulator import (
    AccumulatorConfig,
    FileBatchAccumulator,
    PendingEntry,
    Trigger,
)
from indexer.pipeline.processor import BatchProcessor, ReadBatch
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import Reconciler, ReconcilerConfig, ReconcileReport
from indexer.pipeline.watcher import StorageWatcher
from indexer.pipeline.writer import IndexWriter, WriterFailed
from indexer.snapshot import PendingFile, ReconcileSummary
from indexer.sources.base import ChangeSource
from indexer.store.logs import append_reconcile, next_scan_id

log = logging.getLogger(__name__)

_READ_AHEAD = 2
"""Batches read and parsed ahead of the writer: one committing, one waiting."""


@dataclass(frozen=True)
class V2Config:
    accumulator: AccumulatorConfig = field(default_factory=AccumulatorConfig)
    processor: ProcessorConfig = field(default_factory=ProcessorConfig)
    reconciler: ReconcilerConfig = field(default_factory=ReconcilerConfig)
    watch: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, watch: bool = True) -> V2Config:
        """The defaults, with the tunables documented in docs/configuration.md applied."""
        return cls.from_tunables(Tunables.from_env(process_env() if env is None else env), watch)

    @classmethod
    def from_tunables(cls, tunables: Tunables, watch: bool = True) -> V2Config:
        """The accumulator's, processor's and reconciler's settings from the tunables."""
        backlog = tunables.max_batch_files_under_backlog
        return cls(
            accumulator=AccumulatorConfig(
                window_ms=tunables.window_ms,
                max_files=tunables.max_batch_files,
                max_files_under_backlog=backlog or None,
            ),
            processor=ProcessorConfig(
                max_file_bytes=tunables.max_file_bytes, settle_s=tunables.settle_s
            ),
            reconciler=ReconcilerConfig(interval_s=tunables.reconcile_interval_s),
            watch=watch,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Stats(IndexerStats):
    batches_sent: int
    """Batches the accumulator sealed."""
    files_sent: int


class UnifiedIndexerV2(IndexerReads):
    """start() and stop() from one controlling thread; every other method is safe from any."""

    version = "v2"

    def __init__(
        self,
        root: Path,
        db_path: Path | None = None,
        writer: IndexWriter | None = None,
        config: V2Config | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
        sources: Sequence[ChangeSource] = (),
    ) -> None:
        if writer is None and db_path is None:
            raise ValueError("give db_path or a writer")
        self.root = root
        self.db_path = db_path
        self.writer = writer
        self._owns_writer = writer is None
        self.config = config or V2Config()
        self._on_batch = on_batch
        self.sources = tuple(sources)
        self.accumulator: FileBatchAccumulator | None = None
        self.reconciler: Reconciler | None = None
        self.watcher: StorageWatcher | None = None
        self._processor: BatchProcessor | None = None
        self._reader: threading.Thread | None = None
        self._commits: deque[Future[None]] = deque()
        self._draining = threading.Event()
        self._reports: deque[tuple[int, ReconcileReport]] = deque(maxlen=20)
        self._recent: deque[BatchResult] = deque(maxlen=500)
        self._lock = threading.Lock()
        self._next_scan_id = 1
        self._sealed: set[str] = set()  # paths read or being committed, for the reconciler
        self.batches = 0
        self.files_processed = 0
        self.db_errors = 0
        self.running = False

    @property
    def fatal(self) -> str | None:
        return self.writer.fatal if self.writer is not None else None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, handover: Iterable[PendingEntry] = ()) -> None:
        """Open and migrate the database if needed, run a full reconcile, then watch."""
        if self.writer is None:
            assert self.db_path is not None
            self.writer = IndexWriter.open(self.db_path)
        writer = self.writer
        self._next_scan_id = writer.run(next_scan_id, writes=False)
        self.accumulator = FileBatchAccumulator(self.config.accumulator)
        self.accumulator.start()
        self._processor = writer.run(self._new_processor, writes=False)
        self._draining.clear()
        self._commits.clear()
        self._reader = threading.Thread(target=self._read_loop, name="ocindex-reader", daemon=True)
        self._reader.start()
        handed = list(handover)
        for entry in handed:
            self.accumulator.add(entry.key, Trigger.HANDOVER)
        self.reconciler = Reconciler(
            self.root,
            writer.cursor,
            self.accumulator.add_many,
            self._in_flight,
            self.config.reconciler,
            on_report=self._log_report,
            sources=self.sources,
        )
        self.reconciler.scan_now(Trigger.STARTUP)
        self.reconciler.start()
        for source in self.sources:
            source.start(self.accumulator.add_many)
        if self.config.watch:
            self.watcher = StorageWatcher(
                self.root,
                self.accumulator.add_many,
                self._events_lost,
            )
            self.watcher.start()
        self.running = True
        log.info("v2 started on %s (%d handed over)", self.root, len(handed))

    def _new_processor(self, conn: duckdb.DuckDBPyConnection) -> BatchProcessor:
        return BatchProcessor(
            conn, self.root, self.version, self.config.processor, sources=self.sources
        )

    def stop_intake(self) -> None:
        """Stop the watcher, the sources and the reconciler loop; the writer keeps committing."""
        for source in self.sources:
            source.stop()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.reconciler is not None:
            self.reconciler.stop()

    def stop(self, flush: bool = True, close: bool = True) -> list[PendingEntry]:
        """Stop intake, then flush and commit everything pending (or hand it back), checkpoint.

        Returns what was not committed: nothing with flush=True, the pending keys otherwise.
        """
        self.stop_intake()
        acc = self.accumulator
        leftover: list[PendingEntry] = []
        if acc is not None:
            if not flush:
                leftover = acc.drain_pending()
            acc.stop()
        self._draining.set()
        if self._reader is not None:
            self._reader.join(60)
        self._wait_commits(0)
        if acc is not None and not flush:
            leftover += acc.drain_pending()  # retries scheduled by the last batches
        self.running = False
        if self.writer is not None:
            if close and self._owns_writer:
                self.writer.close()
                self.writer = None
            elif self.fatal is None:
                try:
                    self.writer.run(_checkpoint)
                except duckdb.Error as exc:
                    log.warning("checkpoint at stop failed: %s", exc)
        return leftover

    # --- reading ahead, committing through the writer --------------------------------------

    def _read_loop(self) -> None:
        """Read and parse batch N+1 while the writer commits batch N; order is kept."""
        assert self.accumulator is not None and self._processor is not None
        acc, processor = self.accumulator, self._processor
        while not self.fatal:
            batch = acc.get_batch(timeout_s=0.1)
            if batch is not None:
                with self._lock:
                    self._sealed.update(e.key.rel_path for e in batch.entries)
                read = processor.read(batch)
                self._wait_commits(_READ_AHEAD - 1)
                assert self.writer is not None
                self._commits.append(self.writer.submit(partial(self._commit, read)))
            elif (
                self._draining.is_set() and not acc.is_sealing() and not acc.get_stats().queue_depth
            ):
                return  # everything sealed has been read and handed to the writer

    def _wait_commits(self, keep: int) -> None:
        """Wait until at most `keep` commits are queued at the writer."""
        while len(self._commits) > keep:
            future = self._commits.popleft()
            try:
                future.result()
            except WriterFailed:
                return

    def _in_flight(self) -> set[str]:
        """Paths submitted but not yet committed: pending, retrying, or in a sealed batch."""
        assert self.accumulator is not None
        with self._lock:
            sealed = set(self._sealed)
        return self.accumulator.pending_paths() | sealed

    def _commit(self, read: ReadBatch, conn: duckdb.DuckDBPyConnection) -> None:
        """A writer job: commit one read batch, then schedule retries and tell the listeners."""
        assert self.accumulator is not None and self._processor is not None
        try:
            result = self._processor.commit(read)
        except duckdb.Error as exc:
            self._batch_failed(read.entries, exc)
            return
        for key, delay in result.retries:
            self.accumulator.add_later(key, delay)
        with self._lock:
            self._sealed.difference_update(e.key.rel_path for e in read.entries)
            self.batches += 1
            self.files_processed += result.files
            self._recent.appendleft(result)
        for outcome in result.reads:
            if outcome.status is FileStatus.ERROR:
                log.warning("error: %s: %s", outcome.key.rel_path, outcome.message)
        if self._on_batch is not None:
            try:
                self._on_batch(result)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("on_batch listener failed")

    def _batch_failed(self, entries: tuple[PendingEntry, ...], exc: duckdb.Error) -> None:
        with self._lock:
            self._sealed.difference_update(e.key.rel_path for e in entries)
            self.db_errors += 1
            self.files_processed += len(entries)
        assert self.writer is not None and self.accumulator is not None
        if self.writer.check_invalidated(exc):
            return  # the writer said why, once; every later job fails with WriterFailed
        log.error("batch not committed, retrying its files: %s", str(exc).splitlines()[0])
        for entry in entries:
            self.accumulator.add_later(entry.key, 1.0, entry.trigger)

    def _log_report(self, report: ReconcileReport) -> None:
        """Number a finished scan and have the writer append its reconcile_log row."""
        with self._lock:
            scan_id, self._next_scan_id = self._next_scan_id, self._next_scan_id + 1
            self._reports.appendleft((scan_id, report))
        if self.writer is None:
            return
        counts = (len(report.new), len(report.modified), len(report.deleted), len(report.retried))
        row = (scan_id, self.version, report.started_at, report.duration_ms, report.files_seen)
        self.writer.submit(lambda conn: append_reconcile(conn, *row, counts, report.catches))

    # --- intake helpers ----------------------------------------------------------------------

    def _events_lost(self, why: str) -> None:
        log.warning("events may have been lost (%s): reconciling now", why)
        if self.reconciler is not None:
            self.reconciler.request_scan()

    # --- facade ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Seal and send everything pending now."""
        if self.accumulator is not None:
            self.accumulator.force_flush()

    def rescan(self) -> ReconcileReport | None:
        """Run a full reconcile now and submit what it finds."""
        if self.reconciler is None:
            return None
        return self.reconciler.scan_now(Trigger.MANUAL)

    def submit(self, keys: list[FileKey], trigger: Trigger = Trigger.MANUAL) -> None:
        if self.accumulator is not None:
            self.accumulator.add_many(keys, trigger)

    def is_idle(self, settle_s: float = 0.0) -> bool:
        acc = self.accumulator
        if acc is None:
            return True
        s = acc.get_stats()
        if s.pending_files or s.queue_depth or s.delayed_files:
            return False
        with self._lock:
            busy = s.files_sent != self.files_processed
            last = self._recent[0].committed_at if self._recent else 0.0
        return not busy and time.time() - last >= settle_s

    def stats(self) -> V2Stats:
        acc = self.accumulator.get_stats() if self.accumulator else None
        reconciler, watcher = self.reconciler, self.watcher
        reconciled = reconciler.get_stats() if reconciler is not None else None
        watched = watcher.get_stats() if watcher is not None else None
        with self._lock:
            return V2Stats(
                version=self.version,
                running=self.running,
                batches=self.batches,
                files_processed=self.files_processed,
                db_errors=self.db_errors,
                fatal=self.fatal,
                pending_files=acc.pending_files if acc else 0,
                oldest_pending_age_s=acc.oldest_pending_age_s if acc else None,
                queue_depth=acc.queue_depth if acc else 0,
                delayed_files=acc.delayed_files if acc else 0,
                watcher=watched,
                reconciler=reconciled,
                batches_sent=acc.batches_sent if acc else 0,
                files_sent=acc.files_sent if acc else 0,
            )

    def pending_files(self, limit: int = 100) -> list[PendingFile]:
        return self.accumulator.pending_files(limit) if self.accumulator else []

    def reconciler_findings(self, limit: int = 10) -> list[ReconcileSummary]:
        with self._lock:
            reports = list(self._reports)[:limit]
        return [report.summary(scan_id) for scan_id, report in reports]


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CHECKPOINT")
