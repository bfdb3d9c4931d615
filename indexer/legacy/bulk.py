"""v1's bulk phase: the walk, the choice of changed files, their DuckDB reads in chunks, one write.
Never runs off the writer thread nor opens a transaction: each chunk is autocommitted statements.

A file is changed when its stamp differs from file_index (compared with !=) or its row waits for
a retry (outcome.needs_retry). Changed files older than the start time are read by DuckDB
(`read_blob(?)` with a list of paths) and parsed by the same record parser as v2; a file that
does not parse cleanly, changed since the walk, is too large or was not returned is read again
by processor.read_file, so both indexers classify it alike. Newer files go to the realtime path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from indexer.kinds import FileKey, FileKind, classify, is_source_path
from indexer.outcome import (
    BatchResult,
    FileRead,
    FileStamp,
    FileStatus,
    Found,
    ParsedFile,
    Situation,
    needs_retry,
)
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.apply import apply_reads
from indexer.pipeline.reader import ProcessorConfig, decided_read, read_file
from indexer.records import content_hash, parse
from indexer.scan import walk_files
from indexer.store.tracking import FileTracker

log = logging.getLogger(__name__)

_MAX_INT32 = 2**31 - 1

LogBatch = Callable[
    [duckdb.DuckDBPyConnection, str, Sequence[FileRead], Sequence[FileRead], float], BatchResult
]
"""Appends a batch's batch_log row and publishes it: (conn, trigger, reads, kept, started)."""


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


@dataclass(slots=True)
class BulkRequest:
    """A rescan asked of the worker; whoever asked waits on done."""

    trigger: Trigger
    done: threading.Event = field(default_factory=threading.Event)
    report: BulkReport | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _Changed:
    """What the walk found that file_index does not agree with."""

    files_seen: int
    bulk: tuple[tuple[FileKey, FileStamp], ...]
    later: tuple[FileKey, ...]
    already: int
    """Changed files the realtime path holds already (debounced or handed over)."""
    gone: tuple[FileKey, ...]

    @property
    def changed(self) -> int:
        return len(self.bulk) + len(self.later) + self.already + len(self.gone)


class BulkLoader:
    """run() is a writer job; the callables reach the indexer's realtime path (thread-safe)."""

    def __init__(
        self,
        root: Path,
        version: str,
        config: ProcessorConfig,
        chunk_files: int,
        *,
        waiting: Callable[[], set[str]],
        to_realtime: Callable[[list[FileKey], Trigger], None],
        retry_later: Callable[[FileKey, float], None],
        log_batch: LogBatch,
    ) -> None:
        self.root = root
        self.version = version
        self.config = config
        self.chunk_files = max(1, chunk_files)
        self._waiting = waiting
        self._to_realtime = to_realtime
        self._retry_later = retry_later
        self._log_batch = log_batch

    def run(
        self,
        conn: duckdb.DuckDBPyConnection,
        trigger: Trigger,
        stopping: Callable[[], bool] = lambda: False,
    ) -> BulkReport:
        """Index every changed file older than now with DuckDB reads, a chunk at a time until
        stopping() (the rest is found again by the next run)."""
        started_wall = time.time()
        t0_ns = time.time_ns()
        t0 = time.perf_counter()
        found = self._changed(conn, t0_ns)
        self._to_realtime(list(found.later), trigger)
        totals: Counter[str] = Counter()
        chunk = self.chunk_files
        for i in range(0, len(found.bulk), chunk):
            if stopping():
                break
            totals.update(self._chunk(conn, found.bulk[i : i + chunk], (), trigger))
        for i in range(0, len(found.gone), chunk):
            if stopping():
                break
            totals.update(self._chunk(conn, (), found.gone[i : i + chunk], trigger))
        report = BulkReport(
            trigger=str(trigger),
            started_at=started_wall,
            duration_ms=(time.perf_counter() - t0) * 1000,
            files_seen=found.files_seen,
            changed=found.changed,
            bulk_files=len(found.bulk),
            to_realtime=len(found.later) + found.already,
            read=totals["read"],
            fallback=totals["fallback"],
            indexed=totals[FileStatus.INDEXED],
            errors=totals[FileStatus.ERROR],
            pending=totals[FileStatus.PENDING],
            deleted=totals[FileStatus.DELETED],
            skipped=totals[FileStatus.SKIPPED],
        )
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

    def _changed(self, conn: duckdb.DuckDBPyConnection, t0_ns: int) -> _Changed:
        """Walk the tree and sort the files file_index disagrees with by who reads them."""
        tracked = {
            str(path): (str(status), mtime_ns, size, message)
            for path, status, mtime_ns, size, message in conn.execute(
                "SELECT file_path, status, mtime_ns, size, error_message FROM file_index"
            ).fetchall()
        }
        waiting = self._waiting()
        seen: set[str] = set()
        bulk: list[tuple[FileKey, FileStamp]] = []
        later: list[FileKey] = []
        already = 0
        for rel, mtime_ns, size in walk_files(self.root):
            key = classify(rel)
            if key is None:
                continue
            seen.add(rel)
            before = tracked.get(rel)
            if before is not None and not _needs_read(*before, mtime_ns, size):
                continue
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
        return _Changed(len(seen), tuple(bulk), tuple(later), already, tuple(gone))

    def _chunk(
        self,
        conn: duckdb.DuckDBPyConnection,
        files: Sequence[tuple[FileKey, FileStamp]],
        gone: Sequence[FileKey],
        trigger: Trigger,
    ) -> Counter[str]:
        """Read, parse and write one chunk with autocommitted statements; return its counts."""
        tracker = FileTracker(conn, self.version)
        started = time.monotonic()
        cfg = self.config
        situation = Situation(cfg.retry)
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
                reads.append(decided_read(key, Found.NOT_A_RECORD, situation, stamp))
                continue
            counts["read"] += 1
            blob = blobs.get(os.path.join(self.root, key.rel_path))
            read = _from_blob(key, stamp, blob, situation, cfg) if blob is not None else None
            if read is None:
                counts["fallback"] += 1
                before = prior.get(key.rel_path)
                read = read_file(self.root, key, cfg, before.attempts if before else 0)
            reads.append(read)
        reads.extend(decided_read(key, Found.GONE, situation) for key in gone)
        kept = apply_reads(conn, tracker, reads, prior)
        counts.update(str(r.status) for r in kept)
        self._log_batch(conn, str(trigger), reads, kept, started)
        for read in reads:
            if read.retry_in_s is not None:
                self._retry_later(read.key, read.retry_in_s)
        return counts


def _needs_read(
    status: str, mtime_ns: object, size: object, message: object, disk_mtime_ns: int, disk_size: int
) -> bool:
    """True when the disk disagrees with the row (compared with !=) or the row awaits a retry;
    v1 retries every pending row at once, since no retry survives a bulk pass."""
    if status == "deleted" or mtime_ns != disk_mtime_ns or size != min(disk_size, _MAX_INT32):
        return True
    return needs_retry(status, None if message is None else str(message))


def _from_blob(
    key: FileKey,
    stamp: FileStamp,
    blob: tuple[bytes, int],
    situation: Situation,
    config: ProcessorConfig,
) -> FileRead | None:
    """The read of bytes DuckDB returned, or None when read_file must decide (see module doc)."""
    data, mtime_us = blob
    if len(data) != stamp.size or mtime_us != stamp.mtime_ns // 1000:
        return None  # changed since the walk
    result = parse(key, data, config.max_file_bytes)
    if not isinstance(result, ParsedFile):
        return None
    return decided_read(key, Found.PARSED, situation, stamp, content_hash(data), result)


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
        log.warning("v1 bulk: read_blob failed, reading one by one: %s", first_line(exc))
        return {}
    return {str(name): (bytes(data), int(mtime_us)) for name, data, mtime_us in rows}


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (DuckDB's errors run to several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
