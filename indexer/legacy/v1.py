"""HybridIndexer (v1) owns the legacy pipeline, kept honest: a DuckDB-read bulk load, then per file.
It must never batch realtime writes into one transaction, nor let two threads write at once.

Bulk (at start, and on rescan): walk the tree and keep the files whose stamp differs from
file_index (or whose row is pending). The files older than the start time are read by DuckDB
(`read_blob(?)` with a list of paths, in chunks) and parsed by the same record parser as v2.
A file that does not parse cleanly is re-read by processor.read_file, so both indexers classify
it alike. Each chunk is written with autocommitted statements, file_index rows included.
Newer files and handed-over keys go to the realtime path.

Realtime: watcher events feed a debounce map (path -> deadline, debounce_ms after the LAST
event). One worker thread takes the due files one at a time: read_file, look up its row, then a
few autocommitted statements and a one-file batch_log row. There is no reconciler; rescan()
runs the bulk phase again, on the worker.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb

from indexer.facade import IndexerReads, IndexerStats
from indexer.kinds import FileKey, FileKind, classify, is_source_path
from indexer.outcome import BatchResult, FileRead, FileStamp, FileStatus, ParsedFile, needs_retry
from indexer.pipeline.accumulator import PendingEntry, Trigger
from indexer.pipeline.processor import ProcessorConfig, apply_reads, read_file
from indexer.pipeline.watcher import StorageWatcher
from indexer.pipeline.writer import IndexWriter, WriterFailed
from indexer.records import content_hash, parse
from indexer.scan import walk_files
from indexer.snapshot import PendingFile, ReconcileSummary, newest_pending
from indexer.store.logs import append_batch, next_batch_id
from indexer.store.tracking import FileTracker, TrackedFile

log = logging.getLogger(__name__)

_MAX_INT32 = 2**31 - 1


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


@dataclass(frozen=True, slots=True)
class BulkReport:
    """One run of the bulk phase."""

    trigger: str
    started_at: float
    duration_ms: float
    files_seen: int
    changed: int
    """Files whose stamp differs from file_index, or whose row waits for a retry."""
    bulk_files: int
    """Changed files older than the start time: read by the bulk phase."""
    to_realtime: int
    """Changed files newer than the start time (or already debounced): left to realtime."""
    read: int
    """Files whose bytes were read: by DuckDB, or one by one for the fallback."""
    fallback: int
    """Files re-read by read_file: not parsed cleanly, changed, too large, or not returned."""
    indexed: int
    errors: int
    pending: int
    deleted: int
    skipped: int

    @property
    def findings(self) -> int:
        """Files that disagreed with file_index: the figure a reconcile report calls findings."""
        return self.changed

    @property
    def files_per_s(self) -> float:
        return self.bulk_files / (self.duration_ms / 1000) if self.duration_ms > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class V1Stats(IndexerStats):
    realtime_files: int
    """Files through the one-at-a-time path."""
    bulk_files_read: int
    events_lost: int
    bulk: BulkReport | None
    """The last run of the bulk phase."""


@dataclass(slots=True)
class _Waiting:
    """One file in the debounce map; guarded by the indexer's condition."""

    key: FileKey
    trigger: Trigger
    first_seen: float
    """Monotonic time the file joined the map."""
    event_at: float
    """Wall time of the earliest unprocessed event."""
    due: float
    """Monotonic time the worker may take it."""
    seq: int


@dataclass(slots=True)
class _BulkRequest:
    trigger: Trigger
    done: threading.Event = field(default_factory=threading.Event)
    report: BulkReport | None = None
    error: BaseException | None = None


_Job = _Waiting | _BulkRequest


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
        self._waiting: dict[str, _Waiting] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._requests: deque[_BulkRequest] = deque()
        self._busy = False
        self._draining = False
        self._halt = False
        self._closed = False
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
        with self._cond:
            self._draining = self._halt = self._closed = False
            now = time.monotonic()
            for entry in handed:
                if not is_source_path(entry.key.rel_path):  # v1 reads the JSON files only
                    self._put(entry.key, Trigger.HANDOVER, now, entry.first_seen, entry.event_at)
            self._busy = True
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
            with self._cond:
                self._busy = False
        self._worker = threading.Thread(target=self._work_loop, name="ocindex-v1", daemon=True)
        self._worker.start()
        self.running = True
        log.info("v1 started on %s (%d handed over)", self.root, len(handed))

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
        with self._cond:
            self._closed = True
            if flush:
                self._draining = True
            else:
                self._halt = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(60)
            self._worker = None
        with self._cond:
            leftover = [
                PendingEntry(w.key, w.trigger, w.first_seen, w.event_at)
                for w in sorted(self._waiting.values(), key=lambda w: w.due)
            ]
            self._waiting.clear()
            self._heap.clear()
            requests = list(self._requests)
            self._requests.clear()
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
        now = time.monotonic()
        due = now + self.config.debounce_ms / 1000
        with self._cond:
            if self._closed:
                return
            for key in keys:
                if not is_source_path(key.rel_path):  # v1 reads the JSON files only
                    self._put(key, trigger, due)
            self._cond.notify_all()

    def _put(
        self,
        key: FileKey,
        trigger: Trigger,
        due: float,
        first_seen: float | None = None,
        event_at: float | None = None,
    ) -> None:
        """Add or re-arm one file; the caller holds the condition."""
        seq = next(self._seq)
        old = self._waiting.get(key.rel_path)
        if old is not None:
            old.trigger, old.due, old.seq = trigger, due, seq
        else:
            self._waiting[key.rel_path] = _Waiting(
                key,
                trigger,
                time.monotonic() if first_seen is None else first_seen,
                time.time() if event_at is None else event_at,
                due,
                seq,
            )
        heapq.heappush(self._heap, (due, seq, key.rel_path))

    def _retry_later(self, key: FileKey, delay_s: float, trigger: Trigger = Trigger.RETRY) -> None:
        """Schedule a retry unless the file is already waiting (a newer event re-armed it)."""
        with self._cond:
            if self._closed or key.rel_path in self._waiting:
                return
            now = time.monotonic()
            self._put(key, trigger, now + delay_s, now, time.time() + delay_s)
            self._cond.notify_all()

    def _events_lost(self, why: str) -> None:
        log.warning("v1: events may have been lost (%s): rescanning", why)
        with self._cond:
            self.events_lost += 1
            if not self._closed and not self._requests:
                self._requests.append(_BulkRequest(Trigger.WATCHER))
                self._cond.notify_all()

    # --- the bulk phase ---------------------------------------------------------------------

    def _run_bulk(self, conn: duckdb.DuckDBPyConnection, trigger: Trigger) -> BulkReport:
        """Index every changed file older than now with DuckDB reads: a job of the writer."""
        started_wall = time.time()
        t0_ns = time.time_ns()
        t0 = time.perf_counter()
        tracked = {
            str(path): (str(status), mtime_ns, size, message)
            for path, status, mtime_ns, size, message in conn.execute(
                "SELECT file_path, status, mtime_ns, size, error_message FROM file_index"
            ).fetchall()
        }
        with self._cond:
            waiting = set(self._waiting)
        seen: set[str] = set()
        bulk: list[tuple[FileKey, FileStamp]] = []
        later: list[FileKey] = []
        changed = already = 0
        for rel, mtime_ns, size in walk_files(self.root):
            key = classify(rel)
            if key is None:
                continue
            seen.add(rel)
            before = tracked.get(rel)
            if before is not None and not _needs_read(*before, mtime_ns, size):
                continue
            changed += 1
            if rel in waiting:
                already += 1  # debounced or handed over: the realtime path has it already
            elif mtime_ns >= t0_ns:
                later.append(key)
            else:
                bulk.append((key, FileStamp(mtime_ns, size)))
        gone = [
            key
            for path, (status, *_) in tracked.items()
            if status != "deleted"
            and path not in seen
            and path not in waiting
            and not is_source_path(path)  # another source's records: not ours to judge
            for key in [classify(path)]
            if key is not None
        ]
        self.submit(later, trigger)
        totals: Counter[str] = Counter()
        chunk = max(1, self.config.bulk_chunk_files)
        for i in range(0, len(bulk), chunk):
            totals.update(self._bulk_chunk(conn, bulk[i : i + chunk], [], trigger))
        for i in range(0, len(gone), chunk):
            totals.update(self._bulk_chunk(conn, [], gone[i : i + chunk], trigger))
        report = BulkReport(
            trigger=str(trigger),
            started_at=started_wall,
            duration_ms=(time.perf_counter() - t0) * 1000,
            files_seen=len(seen),
            changed=changed + len(gone),
            bulk_files=len(bulk),
            to_realtime=len(later) + already,
            read=totals["read"],
            fallback=totals["fallback"],
            indexed=totals[FileStatus.INDEXED],
            errors=totals[FileStatus.ERROR],
            pending=totals[FileStatus.PENDING],
            deleted=totals[FileStatus.DELETED],
            skipped=totals[FileStatus.SKIPPED],
        )
        with self._cond:
            self._last_bulk = report
            self.bulk_files_read += report.read
        log.info(
            "v1 bulk (%s): %d files seen, %d read (%d one by one), %d left to realtime, "
            "%d deleted in %.0f ms",
            trigger,
            report.files_seen,
            report.read,
            report.fallback,
            report.to_realtime,
            report.deleted,
            report.duration_ms,
        )
        return report

    def _bulk_chunk(
        self,
        conn: duckdb.DuckDBPyConnection,
        files: Sequence[tuple[FileKey, FileStamp]],
        gone: Sequence[FileKey],
        trigger: Trigger,
    ) -> Counter[str]:
        """Read, parse and write one chunk with autocommitted statements; return its counts."""
        tracker = FileTracker(conn, self.version)
        started = time.monotonic()
        cfg = self.config.processor
        prior = tracker.lookup([k.rel_path for k, _ in files] + [k.rel_path for k in gone])
        wanted = [
            os.path.join(self.root, k.rel_path)
            for k, s in files
            if k.kind is not FileKind.SKIPPED and s.size <= cfg.max_file_bytes
        ]
        blobs = _read_blobs(conn, wanted)
        reads: list[FileRead] = []
        counts: Counter[str] = Counter()
        for key, stamp in files:
            if key.kind is FileKind.SKIPPED:
                reads.append(FileRead(key, FileStatus.SKIPPED, stamp))
                continue
            counts["read"] += 1
            blob = blobs.get(os.path.join(self.root, key.rel_path))
            read = _from_blob(key, stamp, blob, cfg) if blob is not None else None
            if read is None:
                counts["fallback"] += 1
                read = read_file(self.root, key, cfg, _attempts(prior.get(key.rel_path)))
            reads.append(read)
        reads.extend(FileRead(key, FileStatus.DELETED) for key in gone)
        kept = apply_reads(conn, tracker, reads, prior)
        counts.update(str(r.status) for r in kept)
        self._commit_log(conn, str(trigger), reads, kept, started, 0.0, ())
        for read in reads:
            if read.retry_in_s is not None:
                self._retry_later(read.key, read.retry_in_s)
        return counts

    # --- the worker thread ------------------------------------------------------------------

    def _work_loop(self) -> None:
        """Take due files and rescan requests one at a time; the writer runs each (and
        checkpoints when idle)."""
        assert self.writer is not None
        writer = self.writer
        try:
            while True:
                job = self._take_job()
                if job is None:
                    return
                if isinstance(job, _BulkRequest):
                    self._run_request(job)
                else:
                    writer.run(partial(self._process_one, waiting=job))
        except WriterFailed:
            return  # the writer said why
        except Exception as exc:  # a bug, not a file's fault: record it and stop writing
            log.exception("v1 worker stopped")
            self._fatal = f"the v1 worker stopped: {_first_line(exc)}"
        finally:
            with self._cond:
                self._busy = False

    def _take_job(self) -> _Job | None:
        """Block until there is a job; None tells the worker to end."""
        with self._cond:
            self._busy = False
            while True:
                if self.fatal is not None or self._halt:
                    return None
                if self._requests:
                    self._busy = True
                    return self._requests.popleft()
                now = time.monotonic()
                waiting = self._pop_due(now, everything=self._draining)
                if waiting is not None:
                    self._busy = True
                    return waiting
                if self._draining:
                    return None
                timeout = 0.5
                if self._heap:
                    timeout = min(timeout, self._heap[0][0] - now)
                self._cond.wait(max(timeout, 0.001))

    def _pop_due(self, now: float, everything: bool) -> _Waiting | None:
        while self._heap:
            due, seq, path = self._heap[0]
            waiting = self._waiting.get(path)
            if waiting is None or waiting.seq != seq:
                heapq.heappop(self._heap)  # superseded by a later event
                continue
            if not everything and due > now:
                return None
            heapq.heappop(self._heap)
            del self._waiting[path]
            return waiting
        return None

    def _run_request(self, request: _BulkRequest) -> None:
        try:
            assert self.writer is not None
            request.report = self.writer.run(partial(self._run_bulk, trigger=request.trigger))
        except duckdb.Error as exc:
            with self._cond:
                self.db_errors += 1
            request.error = exc
            log.error("v1 rescan failed: %s", _first_line(exc))
        finally:
            request.done.set()

    def _process_one(self, conn: duckdb.DuckDBPyConnection, waiting: _Waiting) -> None:
        """The legacy per-file path: read, look up, then a few autocommitted statements."""
        tracker = FileTracker(conn, self.version)
        key = waiting.key
        started = time.monotonic()
        queue_wait_ms = max(0.0, started - waiting.due) * 1000
        try:
            prior = tracker.lookup([key.rel_path])
            read = read_file(
                self.root, key, self.config.processor, _attempts(prior.get(key.rel_path))
            )
            kept = apply_reads(conn, tracker, [read], prior)
            self._commit_log(
                conn,
                str(waiting.trigger),
                [read],
                kept,
                started,
                queue_wait_ms,
                (waiting.event_at,),
            )
        except duckdb.Error as exc:
            self._file_failed(waiting, exc)
            return
        with self._cond:
            self.realtime_files += 1
        if read.status is FileStatus.ERROR:
            log.warning("error: %s: %s", key.rel_path, read.message)
        if read.retry_in_s is not None and not self._draining:
            self._retry_later(key, read.retry_in_s)

    def _file_failed(self, waiting: _Waiting, exc: duckdb.Error) -> None:
        text = _first_line(exc)
        with self._cond:
            self.db_errors += 1
        assert self.writer is not None
        if self.writer.check_invalidated(exc):
            return
        log.error("v1: %s not written, retrying: %s", waiting.key.rel_path, text)
        if not self._draining:
            self._retry_later(waiting.key, self.config.db_retry_s, waiting.trigger)

    def _commit_log(
        self,
        conn: duckdb.DuckDBPyConnection,
        trigger: str,
        reads: Sequence[FileRead],
        kept: Sequence[FileRead],
        started: float,
        queue_wait_ms: float,
        event_at: Sequence[float],
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
        now = time.monotonic()
        with self._cond:
            for waiting in self._waiting.values():
                waiting.due, waiting.seq = now, next(self._seq)
                heapq.heappush(self._heap, (now, waiting.seq, waiting.key.rel_path))
            self._cond.notify_all()

    def rescan(self) -> BulkReport | None:
        """Run the bulk phase again over the files changed since (stamp != file_index).

        Runs on the worker while it is alive, so only one thread ever writes; waits for it.
        """
        worker = self._worker
        on_worker = worker is threading.current_thread()  # e.g. from an on_batch callback
        if worker is not None and worker.is_alive() and not on_worker:
            request = _BulkRequest(Trigger.MANUAL)
            with self._cond:
                self._requests.append(request)
                self._cond.notify_all()
            while not request.done.wait(0.1):
                if not worker.is_alive():
                    break
            if request.error is not None:
                raise request.error
            if request.done.is_set():
                return request.report
        if self.writer is None or self.writer.is_closed or self._closed:
            return None  # not started, or stopped: a stopped indexer writes nothing
        return self.writer.run(partial(self._run_bulk, trigger=Trigger.MANUAL))

    def is_idle(self, settle_s: float = 0.0) -> bool:
        with self._cond:
            if self._waiting or self._busy or self._requests:
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


def _needs_read(
    status: str, mtime_ns: object, size: object, message: object, disk_mtime_ns: int, disk_size: int
) -> bool:
    """True when the disk disagrees with the row (compared with !=) or the row awaits a retry;
    v1 retries every pending row at once, since no retry survives a bulk pass."""
    if status == "deleted" or mtime_ns != disk_mtime_ns or size != min(disk_size, _MAX_INT32):
        return True
    return needs_retry(status, None if message is None else str(message))


def _from_blob(
    key: FileKey, stamp: FileStamp, blob: tuple[bytes, int], config: ProcessorConfig
) -> FileRead | None:
    """The read of bytes DuckDB returned, or None when read_file must decide (see module doc)."""
    data, mtime_us = blob
    if len(data) != stamp.size or mtime_us != stamp.mtime_ns // 1000:
        return None  # changed since the scan
    result = parse(key, data, config.max_file_bytes)
    if not isinstance(result, ParsedFile):
        return None
    return FileRead(key, FileStatus.INDEXED, stamp, content_hash(data), result)


def _attempts(before: TrackedFile | None) -> int:
    return before.attempts if before is not None else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_blobs(conn: duckdb.DuckDBPyConnection, paths: list[str]) -> dict[str, tuple[bytes, int]]:
    """Return path -> (bytes, mtime in µs) as DuckDB read them; missing files are absent."""
    if not paths:
        return {}
    try:
        rows = conn.execute(
            "SELECT filename, content, epoch_us(last_modified) FROM read_blob(?)", [paths]
        ).fetchall()
    except duckdb.Error as exc:
        # One unreadable file fails the whole call: read this chunk file by file instead.
        log.warning("v1 bulk: read_blob failed, reading one by one: %s", _first_line(exc))
        return {}
    return {str(name): (bytes(data), int(mtime_us)) for name, data, mtime_us in rows}


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CHECKPOINT")
