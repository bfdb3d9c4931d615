"""UnifiedIndexerV2: wires watcher and reconciler into the accumulator, and the accumulator into
the one writer thread that runs the BatchProcessor. Holds no pipeline logic of its own.

A clean stop loses nothing: intake stops first, then everything pending is sealed and committed,
then the database is checkpointed.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from indexer.accumulator import (
    AccumulatorConfig,
    FileBatchAccumulator,
    PendingEntry,
    Trigger,
)
from indexer.config import env_number
from indexer.facade import IDLE_CHECKPOINT_AFTER_S, IndexerReads
from indexer.processor import BatchProcessor, BatchResult, ProcessorConfig, ReadBatch
from indexer.reconciler import Reconciler, ReconcilerConfig, ReconcileReport
from indexer.records import DEFAULT_MAX_FILE_BYTES
from indexer.schema import migrate, open_database
from indexer.snapshot import PendingFile, ReconcileSummary
from indexer.source import ChangeSource
from indexer.storage import FileKey
from indexer.tracker import FileStatus
from indexer.watcher import StorageWatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class V2Config:
    accumulator: AccumulatorConfig = field(default_factory=AccumulatorConfig)
    processor: ProcessorConfig = field(default_factory=ProcessorConfig)
    reconciler: ReconcilerConfig = field(default_factory=ReconcilerConfig)
    watch: bool = True
    drop_event_ratio: float = 0.0
    """Fault injection for tests: drop every event of this share of paths (chosen by hash)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, watch: bool = True) -> V2Config:
        """The defaults, with the tunables documented in docs/configuration.md applied."""
        env = os.environ if env is None else env
        backlog = int(env_number(env, "OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG", 0))
        return cls(
            accumulator=AccumulatorConfig(
                window_ms=env_number(env, "OCINDEX_WINDOW_MS", 200.0),
                max_files=int(env_number(env, "OCINDEX_MAX_BATCH_FILES", 100, minimum=1)),
                max_files_under_backlog=backlog or None,
            ),
            processor=ProcessorConfig(
                max_file_bytes=int(
                    env_number(env, "OCINDEX_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES, 1)
                ),
                settle_s=env_number(env, "OCINDEX_SETTLE_S", 2.0),
            ),
            reconciler=ReconcilerConfig(
                interval_s=env_number(env, "OCINDEX_RECONCILE_INTERVAL_S", 30.0, minimum=0.1)
            ),
            watch=watch,
        )


class UnifiedIndexerV2(IndexerReads):
    """start() and stop() from one controlling thread; every other method is safe from any."""

    version = "v2"

    def __init__(
        self,
        root: Path,
        db_path: Path | None = None,
        conn: duckdb.DuckDBPyConnection | None = None,
        config: V2Config | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
        sources: Sequence[ChangeSource] = (),
    ) -> None:
        if conn is None and db_path is None:
            raise ValueError("give db_path or an open conn")
        self.root = root
        self.db_path = db_path
        self.conn = conn
        self._owns_conn = conn is None
        self.config = config or V2Config()
        self._on_batch = on_batch
        self.sources = tuple(sources)
        self.accumulator: FileBatchAccumulator | None = None
        self.reconciler: Reconciler | None = None
        self.watcher: StorageWatcher | None = None
        self._processor: BatchProcessor | None = None
        self._writer: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._read_ahead: queue.Queue[ReadBatch | None] = queue.Queue(maxsize=2)
        self._writer_done = threading.Event()
        self._draining = threading.Event()
        self._logs: deque[ReconcileReport] = deque()
        self._recent: deque[BatchResult] = deque(maxlen=500)
        self._lock = threading.Lock()
        self._next_scan_id = 1
        self._sealed: set[str] = set()  # paths read or being committed, for the reconciler
        self.batches = 0
        self.files_processed = 0
        self.db_errors = 0
        self.fatal: str | None = None
        self.running = False

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, handover: Iterable[PendingEntry] = ()) -> None:
        """Open and migrate the database if needed, run a full reconcile, then watch."""
        if self.conn is None:
            assert self.db_path is not None
            self.conn = open_database(self.db_path)
            migrate(self.conn)
        conn = self.conn
        row = conn.execute("SELECT coalesce(max(scan_id), 0) FROM reconcile_log").fetchone()
        self._next_scan_id = (int(row[0]) if row else 0) + 1
        self.accumulator = FileBatchAccumulator(self.config.accumulator)
        self.accumulator.start()
        self._processor = BatchProcessor(
            conn, self.root, self.version, self.config.processor, sources=self.sources
        )
        self._writer_done.clear()
        self._draining.clear()
        self._read_ahead = queue.Queue(maxsize=2)
        self._reader = threading.Thread(target=self._read_loop, name="ocindex-reader", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="ocindex-writer", daemon=True)
        self._reader.start()
        self._writer.start()
        handed = list(handover)
        for entry in handed:
            self.accumulator.add(entry.key, Trigger.HANDOVER)
        self.reconciler = Reconciler(
            self.root,
            conn.cursor,
            self.accumulator.add_many,
            self._in_flight,
            self.config.reconciler,
            on_report=self._logs.append,
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
                drop_event=self._drop_filter(),
            )
            self.watcher.start()
        self.running = True
        log.info("v2 started on %s (%d handed over)", self.root, len(handed))

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
        if self._writer is not None:
            self._writer.join(60)
        if acc is not None and not flush:
            leftover += acc.drain_pending()  # retries scheduled by the last batches
        self.running = False
        if self.conn is not None:
            self._write_logs()
            try:
                self.conn.execute("CHECKPOINT")
            except duckdb.Error as exc:
                log.warning("checkpoint at stop failed: %s", exc)
            if close and self._owns_conn:
                self.conn.close()
                self.conn = None
        return leftover

    # --- the writer thread -----------------------------------------------------------------

    def _read_loop(self) -> None:
        """Read and parse batch N+1 while the writer commits batch N; order is kept."""
        assert self.accumulator is not None and self._processor is not None
        acc, processor = self.accumulator, self._processor
        while not self.fatal:
            batch = acc.get_batch(timeout_s=0.1)
            if batch is not None:
                with self._lock:
                    self._sealed.update(e.key.rel_path for e in batch.entries)
                self._put_read(processor.read(batch))
            elif (
                self._draining.is_set() and not acc.is_sealing() and not acc.get_stats().queue_depth
            ):
                self._put_read(None)  # everything sealed has been read: tell the writer
                return

    def _in_flight(self) -> set[str]:
        """Paths submitted but not yet committed: pending, retrying, or in a sealed batch."""
        assert self.accumulator is not None
        with self._lock:
            sealed = set(self._sealed)
        return self.accumulator.pending_paths() | sealed

    def _put_read(self, item: ReadBatch | None) -> None:
        while not self.fatal:
            try:
                self._read_ahead.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _write_loop(self) -> None:
        assert self.accumulator is not None and self._processor is not None
        acc, processor = self.accumulator, self._processor
        last_commit = time.monotonic()
        dirty = False
        try:
            while True:
                try:
                    read = self._read_ahead.get(timeout=0.1)
                except queue.Empty:
                    self._write_logs()
                    if dirty and time.monotonic() - last_commit > IDLE_CHECKPOINT_AFTER_S:
                        self._checkpoint()
                        dirty = False
                    continue
                if read is None:
                    return
                try:
                    result = processor.commit(read)
                except duckdb.Error as exc:
                    self._batch_failed(read.entries, exc)
                    if self.fatal:
                        return
                    continue
                dirty = True
                last_commit = time.monotonic()
                for key, delay in result.retries:
                    acc.add_later(key, delay)
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
                self._write_logs()
        finally:
            self._writer_done.set()

    def _batch_failed(self, entries: tuple[PendingEntry, ...], exc: duckdb.Error) -> None:
        text = str(exc).splitlines()[0]
        with self._lock:
            self._sealed.difference_update(e.key.rel_path for e in entries)
            self.db_errors += 1
            self.files_processed += len(entries)
        if "invalidated" in text.lower():
            self.fatal = f"the database needs a restart: {text}"
            log.error("writer stopped: %s", self.fatal)
            return
        log.error("batch not committed, retrying its files: %s", text)
        assert self.accumulator is not None
        for entry in entries:
            self.accumulator.add_later(entry.key, 1.0, entry.trigger)

    def _write_logs(self) -> None:
        conn = self.conn
        while self._logs and conn is not None:
            report = self._logs.popleft()
            conn.execute(
                "INSERT INTO reconcile_log VALUES (?, ?, to_timestamp(?), ?, ?, ?, ?, ?, ?, ?)",
                [
                    self._next_scan_id,
                    self.version,
                    report.started_at,
                    report.duration_ms,
                    report.files_seen,
                    len(report.new),
                    len(report.modified),
                    len(report.deleted),
                    len(report.retried),
                    report.catches,
                ],
            )
            self._next_scan_id += 1

    def _checkpoint(self) -> None:
        assert self.conn is not None
        try:
            self.conn.execute("CHECKPOINT")
        except duckdb.Error as exc:
            log.debug("idle checkpoint skipped: %s", exc)

    # --- intake helpers ----------------------------------------------------------------------

    def _events_lost(self, why: str) -> None:
        log.warning("events may have been lost (%s): reconciling now", why)
        if self.reconciler is not None:
            self.reconciler.request_scan()

    def _drop_filter(self) -> Callable[[str], bool] | None:
        ratio = self.config.drop_event_ratio
        if ratio <= 0:
            return None
        return lambda path: zlib.crc32(path.encode()) % 1000 < ratio * 1000

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

    def stats(self) -> dict[str, object]:
        acc = self.accumulator.get_stats() if self.accumulator else None
        with self._lock:
            out: dict[str, object] = {
                "version": self.version,
                "running": self.running,
                "batches": self.batches,
                "files_processed": self.files_processed,
                "db_errors": self.db_errors,
                "fatal": self.fatal,
            }
        if acc is not None:
            out.update(
                batches_sent=acc.batches_sent,
                files_sent=acc.files_sent,
                pending_files=acc.pending_files,
                oldest_pending_age_s=acc.oldest_pending_age_s,
                queue_depth=acc.queue_depth,
                delayed_files=acc.delayed_files,
            )
        if self.reconciler is not None:
            out["reconciler"] = self.reconciler.get_stats()
        if self.watcher is not None:
            out["watcher"] = self.watcher.get_stats()
        return out

    def pending_files(self, limit: int = 100) -> list[PendingFile]:
        return self.accumulator.pending_files(limit) if self.accumulator else []

    def reconciler_findings(self, limit: int = 10) -> list[ReconcileSummary]:
        if self.reconciler is None:
            return []
        reports = list(self.reconciler.recent)[:limit]
        first = self._next_scan_id + len(self._logs) - 1
        return [r.summary(first - i) for i, r in enumerate(reports)]
