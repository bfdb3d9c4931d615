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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import duckdb

from indexer.facade import IndexerReads, IndexerStats
from indexer.kinds import FileKey
from indexer.outcome import BatchResult, FileStatus
from indexer.pipeline import first_load
from indexer.pipeline.accumulator import (
    AccumulatorConfig,
    FileBatchAccumulator,
    PendingEntry,
    Trigger,
)
from indexer.pipeline.first_load import LoadedBatch
from indexer.pipeline.processor import BatchProcessor, ReadBatch
from indexer.pipeline.read_pool import PoolConfig, ReadPool
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconcile_report import ReconcileReport
from indexer.pipeline.reconciler import Reconciler, ReconcilerConfig
from indexer.pipeline.retries import CommitRetries, one_line
from indexer.pipeline.watch_process import WatcherProcess
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
    pool: PoolConfig = field(default_factory=PoolConfig)
    """Worker processes that read big batches (a catch-up); none by default."""
    watch: bool = True
    watch_process: bool = False
    """Run the watcher in a process of its own (watchdog's threads off this process's GIL)."""
    first_load: bool = True
    """Load a first catch-up of a tree with no store beside it in bulk (pipeline.first_load)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Stats(IndexerStats):
    batches_sent: int
    """Batches the accumulator sealed."""
    files_sent: int
    condition: str | None = None
    """Why the database cannot be written right now (reopening it, or stopped for good)."""


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
        self.accumulator = FileBatchAccumulator(self.config.accumulator)
        self.reconciler: Reconciler | None = None
        self.watcher: StorageWatcher | WatcherProcess | None = None
        self._reader: threading.Thread | None = None
        self._processor: BatchProcessor | None = None
        self._pool: ReadPool | None = None
        self._commits: deque[Future[None]] = deque()
        self._recent: deque[BatchResult] = deque(maxlen=500)
        self._lock = threading.Lock()
        self.batches = self.files_processed = self.db_errors = 0
        self._retries = CommitRetries(self.accumulator)
        self.running = False
        self._interrupted = False
        """interrupt() was called: start() ends early, and what it found is left to the next."""

    @property
    def fatal(self) -> str | None:
        return self.writer.fatal if self.writer is not None else None

    def start(self, handover: Iterable[PendingEntry] = ()) -> None:
        """Open and migrate the database if needed, run a full reconcile, then watch."""
        if self.writer is None:
            assert self.db_path is not None
            self.writer = IndexWriter.open(self.db_path)
        writer, acc = self.writer, self.accumulator
        writer.on_reopened = partial(self._events_lost, "the database was reopened")
        acc.start()
        if self.config.pool.workers:
            # Its workers start with the first batch big enough for them.
            self._pool = ReadPool(self.root, self.config.processor, self.config.pool)
        processor = self._processor = writer.run(self._new_processor, writes=False)
        self._reader = threading.Thread(
            target=self._read_loop, args=(processor, writer), name="ocindex-reader", daemon=True
        )
        self._reader.start()
        handed = list(handover)
        for entry in handed:
            acc.add(entry.key, Trigger.HANDOVER)
        bulk, bulk_from = self.config.first_load and not self.sources, self._bulk_from()
        load_workers = self._load_workers = first_load.LoadWorkers(
            self.root, self.config.processor, self.config.pool, self._pool
        )
        self.reconciler = Reconciler(
            self.root,
            writer.cursor,
            acc.add_many,
            acc.pending_paths,
            self.config.reconciler,
            on_report=self._log_report,
            sources=self.sources,
            first_scan_id=writer.run(next_scan_id, writes=False),
            # A store beside the tree: its twins and history are the regular way's to decide.
            first_load=self._first_load if bulk else None,
            # Its workers start while the walk goes on, once it has seen enough files.
            first_load_soon=(bulk_from, lambda: load_workers.start(bulk_from)) if bulk else None,
        )
        try:
            self.reconciler.scan_now(Trigger.STARTUP)
        finally:
            load_workers.close()  # the walk's start of them, when no load followed
        if self._interrupted:
            log.info("v2 start interrupted on %s: watching nothing", self.root)
            return
        self.reconciler.start()
        for source in self.sources:
            source.start(acc.add_many)
        if self.config.watch and self.root.is_dir():
            self.watcher = self._start_watcher()
        elif self.config.watch:
            # OpenCode 2.x may never have written a JSON tree: its store is the whole history.
            log.info("no JSON tree at %s: only the store(s) are watched", self.root)
        self.running = True
        log.info("v2 started on %s (%d handed over)", self.root, len(handed))

    def _start_watcher(self) -> StorageWatcher | WatcherProcess:
        """The watcher, in its own process when configured and possible, else in this one."""
        assert self.reconciler is not None
        args = (self.root, self.accumulator.add_many, self._events_lost)
        if self.config.watch_process:
            child = WatcherProcess(*args, on_unwatched=self.reconciler.set_unwatched)
            try:
                child.start()
                return child
            except OSError as exc:
                log.warning("watcher: no process of its own (%s); watching in this one", exc)
        watcher = StorageWatcher(*args, on_unwatched=self.reconciler.set_unwatched)
        watcher.start()
        return watcher

    def _new_processor(self, conn: duckdb.DuckDBPyConnection) -> BatchProcessor:
        return BatchProcessor(
            conn,
            self.root,
            self.version,
            self.config.processor,
            sources=self.sources,
            pool=self._pool,
        )

    def interrupt(self) -> None:
        """Have start() end as soon as it can, for a stop (Ctrl-C, SIGTERM) that should not wait
        for a long catch-up: a first catch-up commits no further batch, the keys found from now
        on are dropped, and nothing more starts; stop() then commits what was pending. The next
        start's reconcile finds what was not committed. Only sets flags: a signal handler may
        call it."""
        self._interrupted = True
        self.accumulator.abandon()

    def stop(self, flush: bool = True, close: bool = True) -> list[PendingEntry]:
        """Stop the watcher, the sources and the reconciler loop, then flush and commit everything
        pending (or hand it back), checkpoint. Returns what was not committed: nothing with
        flush=True, the pending keys otherwise."""
        for source in self.sources:
            source.stop()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.reconciler is not None:
            self.reconciler.stop()
        acc = self.accumulator
        leftover = [] if flush else acc.drain_pending()
        acc.stop()
        if self._reader is not None:
            self._reader.join(60)
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._wait_commits(0)
        if acc.dropped:
            log.info(
                "stopped early: %d files found were left for the next start's reconcile",
                acc.dropped,
            )
        if not flush:
            leftover += acc.drain_pending()  # retries scheduled by the last batches
        self.running = False
        if self.writer is not None:
            if close and self._owns_writer:
                self.writer.close()
                self.writer = None
            elif self.fatal is None:
                try:
                    self.writer.checkpoint()
                except duckdb.Error as exc:
                    log.warning("checkpoint at stop failed: %s", exc)
        return leftover

    def _read_loop(self, processor: BatchProcessor, writer: IndexWriter) -> None:
        """Read and parse batch N+1 while the writer commits batch N; order is kept."""
        acc = self.accumulator
        while not self.fatal:
            batch = acc.get_batch(timeout_s=0.1)
            if batch is not None:
                try:
                    read = processor.read(batch)
                except Exception as exc:  # a bug, not a file's fault: the batch waits, we go on
                    self._retries.with_backoff(batch.entries, exc)
                    acc.done(batch)
                    continue
                self._wait_commits(_READ_AHEAD - 1)
                self._commits.append(writer.submit(partial(self._commit, processor, read)))
            elif not acc.is_sealing() and not acc.get_stats().queue_depth:
                return  # stopped, and everything sealed was read and handed to the writer

    def _wait_commits(self, keep: int) -> None:
        """Wait until at most `keep` commits are queued at the writer."""
        while len(self._commits) > keep:
            try:
                self._commits.popleft().result()
            except WriterFailed:
                return

    def _commit(
        self, processor: BatchProcessor, read: ReadBatch, conn: duckdb.DuckDBPyConnection
    ) -> None:
        """A writer job: commit one read batch, then schedule retries and tell the listeners.

        A batch that fails for another reason than the database (a bug, a value nothing can
        store) is rolled back and committed again file by file, so its neighbours land and only
        the file that fails waits, with backoff."""
        try:
            result = processor.commit(read)
        except duckdb.Error as exc:
            self._batch_failed(read, exc)
            return
        except Exception as exc:
            if len(read.entries) == 1:
                self._count_failure(read)
                self._retries.with_backoff(read.entries, exc)
                self.accumulator.done(read.batch)
                return
            for entry, one in zip(read.entries, read.reads, strict=True):
                self._commit(processor, replace(read, entries=(entry,), reads=(one,)), conn)
            return
        self._retries.committed(read.entries)
        for key, delay in result.retries:
            self.accumulator.add_later(key, delay)
        self._count(result)
        self.accumulator.done(read.batch)
        for outcome in result.reads:
            if outcome.status is FileStatus.ERROR:
                log.warning("error: %s: %s", outcome.key.rel_path, outcome.message)
        self._tell(result)

    def _count(self, result: BatchResult) -> None:
        with self._lock:
            self.batches += 1
            self.files_processed += result.files
            # Kept for the dashboard: the counts, not the files read (500 batches of 2,000).
            self._recent.appendleft(replace(result, reads=()))

    def _tell(self, result: BatchResult) -> None:
        if self._on_batch is not None:
            try:
                self._on_batch(result)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("on_batch listener failed")

    def _first_load(self, chunks: Iterable[list[FileKey]], files: int, trigger: Trigger) -> None:
        """A first catch-up's files, loaded in bulk when there are enough of them; returns once
        they are committed, or handed to the accumulator (pipeline.first_load)."""
        acc = self.accumulator
        if files < self._bulk_from():
            for chunk in chunks:
                acc.add_many(chunk, trigger)
            return
        config, writer = self.config, self.writer
        assert writer is not None
        pool = self._load_workers.start(files)
        try:
            with first_load.duckdb_yields_cores(writer, pool):
                loaded = first_load.load_first(
                    chunks,
                    first_load.reader(pool, self.root, config.processor),
                    self._submit_loaded,
                    partial(acc.add_many, trigger=trigger),
                    lambda: acc.stopping or self._interrupted or self.fatal is not None,
                    first_load.BATCH_FILES,
                    files,
                )
        finally:
            self._load_workers.close()
        log.info("first catch-up: %d of %d files loaded in bulk", loaded, files)

    def _bulk_from(self) -> int:
        """The fewest files a first catch-up loads in bulk. With a live view (the dashboard),
        what the accumulator holds: below it, start() returns once the walk is submitted and
        the catch-up shows as it goes; in bulk, it returns only once the load is done."""
        least = first_load.MIN_FILES
        if self.config.watch:
            least = max(least, self.config.accumulator.max_pending_files)
        return least

    def _submit_loaded(self, loaded: LoadedBatch, keys: list[FileKey]) -> Future[int]:
        assert self.writer is not None
        return self.writer.submit(partial(self._commit_loaded, loaded, keys))

    def _commit_loaded(
        self, loaded: LoadedBatch, keys: list[FileKey], conn: duckdb.DuckDBPyConnection
    ) -> int:
        """A writer job: commit a loaded batch; if that fails, its files go the regular way
        (which decides them as always: a record another file holds, a database error)."""
        assert self._processor is not None and self.writer is not None
        try:
            result = self._processor.commit_loaded(loaded)
        except Exception as exc:
            if isinstance(exc, duckdb.Error):
                self.writer.check_invalidated(exc)
            log.info("first catch-up: %d files go the regular way: %s", len(keys), one_line(exc))
            for key in keys:  # never blocks the writer, unlike add_many's backpressure
                self.accumulator.add_later(key, 0.0, Trigger.STARTUP)
            return 0
        self._count(result)
        self._tell(result)
        return result.files

    def _count_failure(self, read: ReadBatch) -> None:
        with self._lock:
            self.db_errors += 1
            self.files_processed += len(read.entries)

    def _batch_failed(self, read: ReadBatch, exc: duckdb.Error) -> None:
        assert self.writer is not None
        self._count_failure(read)
        # When the database was invalidated, the writer said why, once, and reopens it; a
        # reconcile then finds what failed meanwhile.
        if not self.writer.check_invalidated(exc):
            self._retries.in_a_second(read.entries, exc)
        self.accumulator.done(read.batch)

    def _log_report(self, r: ReconcileReport) -> None:
        if self.writer is not None:
            row = (r.scan_id, self.version, r.started_at, r.duration_ms, r.files_seen, r.counts)
            self.writer.submit(lambda conn: append_reconcile(conn, *row, r.catches))

    def _events_lost(self, why: str) -> None:
        log.warning("events may have been lost (%s): reconciling now", why)
        if self.reconciler is not None:
            self.reconciler.request_scan()

    def flush(self) -> None:
        """Seal and send everything pending now."""
        self.accumulator.force_flush()

    def rescan(self) -> ReconcileReport | None:
        """Run a full reconcile now and submit what it finds."""
        return self.reconciler.scan_now(Trigger.MANUAL) if self.reconciler else None

    def submit(self, keys: list[FileKey], trigger: Trigger = Trigger.MANUAL) -> None:
        self.accumulator.add_many(keys, trigger)

    def is_idle(self, settle_s: float = 0.0) -> bool:
        if not self.accumulator.is_idle():
            return False
        with self._lock:
            last = self._recent[0].committed_at if self._recent else 0.0
        return time.time() - last >= settle_s

    def stats(self) -> V2Stats:
        acc = self.accumulator.get_stats()
        reconciler, watcher = self.reconciler, self.watcher
        with self._lock:
            return V2Stats(
                version=self.version,
                running=self.running,
                batches=self.batches,
                files_processed=self.files_processed,
                db_errors=self.db_errors,
                fatal=self.fatal,
                pending_files=acc.pending_files,
                oldest_pending_age_s=acc.oldest_pending_age_s,
                queue_depth=acc.queue_depth,
                delayed_files=acc.delayed_files,
                watcher=watcher.get_stats() if watcher else None,
                reconciler=reconciler.get_stats() if reconciler else None,
                batches_sent=acc.batches_sent,
                files_sent=acc.files_sent,
                condition=self.writer.condition if self.writer is not None else None,
            )

    def pending_files(self, limit: int = 100) -> list[PendingFile]:
        return self.accumulator.pending_files(limit)

    def reconciler_findings(self, limit: int = 10) -> list[ReconcileSummary]:
        return self.reconciler.summaries(limit) if self.reconciler else []
