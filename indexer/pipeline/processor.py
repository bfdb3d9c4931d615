"""The batch writer: reads and parses each file outside the transaction, then commits the data
rows, the file_index rows and a batch_log row in ONE transaction. The processor owns the write
connection; nothing else writes while it runs.

One file's outcome never affects another's: a file that cannot be read or parsed gets a status
and a reason, and the rest of its batch lands.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from indexer.kinds import TABLES, FileKey, FileKind, is_source_path
from indexer.outcome import (
    BatchResult,
    Failure,
    FailureReason,
    FileRead,
    FileStamp,
    FileStatus,
    Found,
    ParsedFile,
    RetryPolicy,
    Situation,
    decide,
    with_backoff,
)
from indexer.pipeline.accumulator import Batch, PendingEntry
from indexer.records import DEFAULT_MAX_FILE_BYTES, content_hash, parse, too_large
from indexer.sources.base import ChangeSource, owner_of
from indexer.store.database import sql_strings, transaction
from indexer.store.logs import append_batch, next_batch_id
from indexer.store.rows import delete_owned, write_parsed
from indexer.store.tracking import FileTracker, TrackedFile, TrackEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    settle_s: float = 2.0
    """A file modified this recently that does not parse is still being written: pending."""
    retry_base_s: float = 0.25
    retry_max_s: float = 5.0

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retry_base_s, self.retry_max_s, self.settle_s)


def read_file(
    root: Path,
    key: FileKey,
    config: ProcessorConfig,
    prior_attempts: int = 0,
    wall: Callable[[], float] = time.time,
) -> FileRead:
    """Stat, read, stat again and parse one file, and decide its status. Never raises OSError."""
    path = os.path.join(root, key.rel_path)
    situation = Situation(config.retry, prior_attempts)
    stamp: FileStamp | None = None
    try:
        before = os.stat(path)
        stamp = FileStamp(before.st_mtime_ns, before.st_size)
        if key.kind is FileKind.SKIPPED:
            return decided_read(key, Found.NOT_A_RECORD, situation, stamp)
        if before.st_size > config.max_file_bytes:
            failure = too_large(before.st_size, config.max_file_bytes)
            return _failed(key, failure, situation, stamp)
        with open(path, "rb") as fh:
            data = fh.read(config.max_file_bytes + 1)
        after = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return decided_read(key, Found.GONE, situation)
    except OSError as exc:
        # Keep the stamp when stat worked: the reconciler then sees no change, only a retry.
        return _failed(key, disk_failure(exc), situation, stamp)
    stamp = FileStamp(after.st_mtime_ns, after.st_size)
    if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size) or len(
        data
    ) != after.st_size:
        read = decided_read(key, Found.CHANGED_WHILE_READ, situation, stamp)
        return replace(read, message="changed while being read")
    digest = content_hash(data)
    result = parse(key, data, config.max_file_bytes)
    if isinstance(result, ParsedFile):
        return decided_read(key, Found.PARSED, situation, stamp, digest, result)
    age_s = wall() - after.st_mtime_ns / 1e9
    return _failed(key, result, replace(situation, age_s=age_s), stamp, digest)


def disk_failure(exc: OSError) -> Failure:
    """Why the disk refused a read: permissions, or any other I/O error."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    denied = exc.errno in (errno.EACCES, errno.EPERM)
    return Failure(FailureReason.UNREADABLE if denied else FailureReason.IO_ERROR, reason)


def decided_read(
    key: FileKey,
    found: Found,
    situation: Situation,
    stamp: FileStamp | None = None,
    digest: str | None = None,
    parsed: ParsedFile | None = None,
) -> FileRead:
    """The read of what a reader found, with the status and retry the one decision gives it."""
    status, retry_in_s = decide(found, situation)
    return FileRead(key, status, stamp, digest, parsed, retry_in_s=retry_in_s)


def _failed(
    key: FileKey,
    failure: Failure,
    situation: Situation,
    stamp: FileStamp | None,
    digest: str | None = None,
) -> FileRead:
    status, retry_in_s = decide(Found.FAILED, replace(situation, reason=failure.reason))
    return FileRead(key, status, stamp, digest, message=failure.describe(), retry_in_s=retry_in_s)


def apply_reads(
    conn: duckdb.DuckDBPyConnection,
    tracker: FileTracker,
    reads: Sequence[FileRead],
    prior: dict[str, TrackedFile],
    trust_prior: bool = True,
    overlap: bool = False,
) -> list[FileRead]:
    """Write the data rows and tracking rows for these reads; return the ones that were kept.

    A vanished file that was never tracked leaves no trace; a tracked one is marked deleted
    and its rows removed. With trust_prior, only files indexed before get their old rows
    deleted (a new file's rows are plain inserts, several times cheaper); a caller whose insert
    then hits a key another path owns retries with trust_prior=False.

    With overlap (a second source is configured), two paths may hold the same record: the
    JSON-to-SQLite migration copied the files. Then the newer copy (larger mtime_ns) writes the
    rows; an older one is tracked as indexed without touching them. See _resolve_twins.
    """
    kept = [r for r in reads if r.status is not FileStatus.DELETED or r.key.rel_path in prior]
    # A pending file was indexed before it was caught mid-write: its old rows are still there.
    owns_rows = {
        path
        for path, before in prior.items()
        if before.status in (FileStatus.INDEXED, FileStatus.PENDING)
    }
    twins = _resolve_twins(conn, kept, prior) if overlap else None

    def may_own_rows(read: FileRead) -> bool:
        return not trust_prior or read.key.rel_path in owns_rows

    def writes(read: FileRead) -> bool:
        if twins is not None and read.key.rel_path in twins.shadowed:
            return False
        if twins is not None and read.key.rel_path in twins.winners:
            return True  # its twin's rows may be the ones in place: rewrite even if unchanged
        return not _unchanged(read, prior.get(read.key.rel_path))

    changed = [r for r in kept if r.parsed is not None and writes(r)]
    parsed = [r.parsed for r in changed if r.parsed is not None]
    replace = {
        (p.table.name, p.owner_id) for r, p in zip(changed, parsed, strict=True) if may_own_rows(r)
    } | (twins.replace if twins is not None else set())
    write_parsed(conn, parsed, replace)
    gone: dict[FileKind, list[str]] = {}
    for r in kept:
        # A file that no longer parses keeps no stale rows: its old data is wrong now.
        stale = r.status in (FileStatus.DELETED, FileStatus.ERROR) and may_own_rows(r)
        if twins is not None and r.key.rel_path in twins.keep_rows:
            stale = False  # the rows in place are a newer twin's, not this file's
        if stale and r.key.kind in TABLES:
            gone.setdefault(r.key.kind, []).append(r.key.record_id)
    if twins is None:  # with twins, _resolve_twins already decided whose rows go
        gone = _not_held_elsewhere(conn, gone, changed, kept)
    for kind, owners in gone.items():
        delete_owned(conn, TABLES[kind], owners)
    if twins is not None and twins.reread:
        # The newest copy is gone: the next one down is read again (the reconciler retries
        # pending rows), in this transaction so a crash cannot lose the request.
        conn.execute(
            "UPDATE file_index SET status = 'pending', indexed_at = to_timestamp(0), "
            "error_message = 're-read: a newer copy of this record is gone' "
            f"WHERE file_path IN {sql_strings(sorted(twins.reread))}"
        )
    tracker.record(
        [TrackEntry(r.key, r.status, r.stamp, r.content_hash, r.message) for r in kept], prior
    )
    return kept


def _not_held_elsewhere(
    conn: duckdb.DuckDBPyConnection,
    gone: dict[FileKind, list[str]],
    written: Sequence[FileRead],
    reads: Sequence[FileRead],
) -> dict[FileKind, list[str]]:
    """Drop the records another path still holds (a moved file or folder): their rows stay."""
    if not gone:
        return gone
    held = {(str(r.key.kind), r.key.record_id) for r in written}
    leaving = [r.key.rel_path for r in reads if r.status in (FileStatus.DELETED, FileStatus.ERROR)]
    ids = sorted({i for owners in gone.values() for i in owners})
    held.update(
        (str(kind), str(record_id))
        for kind, record_id in conn.execute(
            "SELECT DISTINCT file_type, record_id FROM file_index "
            f"WHERE status IN ('indexed', 'pending') AND record_id IN {sql_strings(ids)} "
            f"AND file_path NOT IN {sql_strings(leaving)}"
        ).fetchall()
    )
    kept = {k: [i for i in v if (str(k), i) not in held] for k, v in gone.items()}
    return {k: v for k, v in kept.items() if v}


@dataclass(frozen=True, slots=True)
class _Twins:
    """What the copies of the same record (same kind and id, different paths) decide."""

    winners: frozenset[str]
    """Reads whose rows must be written: the newest copy, outranking every indexed twin."""
    shadowed: frozenset[str]
    """Reads an indexed twin outranks: tracked as indexed, their rows left alone."""
    replace: frozenset[tuple[str, str]]
    """(table, owner id) whose rows a winner replaces although they belong to a twin."""
    keep_rows: frozenset[str]
    """Deleted or unparsable reads whose record's rows are a twin's: not deleted."""
    reread: frozenset[str]
    """Older twins to read again because the newest copy was deleted or broke."""


def _rank(mtime_ns: int | None, path: str) -> tuple[int, bool, str]:
    # Newer wins; on a tie, the source row (the live store) over a file; then the path.
    return (-1 if mtime_ns is None else mtime_ns, is_source_path(path), path)


def _read_rank(read: FileRead) -> tuple[int, bool, str]:
    return _rank(read.stamp.mtime_ns if read.stamp else None, read.key.rel_path)


def _resolve_twins(
    conn: duckdb.DuckDBPyConnection, kept: Sequence[FileRead], prior: dict[str, TrackedFile]
) -> _Twins:
    """Compare each record of the batch with its other copies: the batch's own and those
    file_index holds as indexed (ONE query for the whole batch)."""
    groups: dict[tuple[str, str], list[FileRead]] = {}
    for r in kept:
        if r.key.kind in TABLES and r.key.record_id:
            groups.setdefault((str(r.key.kind), r.key.record_id), []).append(r)
    outside: dict[tuple[str, str], list[tuple[int, bool, str]]] = {}
    if groups:
        in_batch = {r.key.rel_path for r in kept}
        rows = conn.execute(
            "SELECT file_path, file_type, record_id, mtime_ns FROM file_index "
            "WHERE status = 'indexed' AND record_id IN "
            f"{sql_strings(sorted({rid for _, rid in groups}))}"
        ).fetchall()
        for path, kind, rid, mtime_ns in rows:
            if (str(kind), str(rid)) in groups and path not in in_batch:
                outside.setdefault((str(kind), str(rid)), []).append(_rank(mtime_ns, str(path)))
    winners: set[str] = set()
    shadowed: set[str] = set()
    replace: set[tuple[str, str]] = set()
    keep_rows: set[str] = set()
    reread: set[str] = set()
    for (kind, rid), reads in groups.items():
        others = outside.get((kind, rid), [])
        live = [r for r in reads if r.status is FileStatus.INDEXED and r.parsed is not None]
        stale = [r for r in reads if r.status in (FileStatus.DELETED, FileStatus.ERROR)]
        if not others and len(live) + len(stale) <= 1:
            continue  # one copy only: the usual rules
        best_other = max(others) if others else None
        best = max(live, key=_read_rank, default=None)
        if best is not None and (best_other is None or _read_rank(best) > best_other):
            winners.add(best.key.rel_path)
            shadowed.update(r.key.rel_path for r in live if r is not best)
            keep_rows.update(r.key.rel_path for r in stale)  # the winner's write replaces
            replace.add((TABLES[FileKind(kind)].name, rid))
            continue
        shadowed.update(r.key.rel_path for r in live)
        for r in stale:
            before = prior.get(r.key.rel_path)
            was = before.stamp.mtime_ns if before and before.stamp else None
            if best_other is not None and best_other > _rank(was, r.key.rel_path):
                keep_rows.add(r.key.rel_path)  # it never wrote the rows in place
            elif best_other is not None:
                reread.add(best_other[2])  # it did: delete them and read the next copy
    return _Twins(
        frozenset(winners),
        frozenset(shadowed),
        frozenset(replace),
        frozenset(keep_rows),
        frozenset(reread),
    )


def _unchanged(read: FileRead, before: TrackedFile | None) -> bool:
    return (
        before is not None
        and before.status is FileStatus.INDEXED
        and before.content_hash == read.content_hash
    )


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """A batch whose files were read and parsed, ready to commit."""

    batch: Batch
    entries: tuple[PendingEntry, ...]
    reads: tuple[FileRead, ...]
    read_ms: float
    """How long reading and parsing took (it may then wait for the writer)."""


class BatchProcessor:
    """read() touches only the filesystem and may run on a read-ahead thread; commit() runs on
    the one thread that owns the connection, in batch order."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        root: Path,
        indexer_version: str = "v2",
        config: ProcessorConfig | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sources: Sequence[ChangeSource] = (),
    ) -> None:
        self.conn = conn
        self.root = root
        self.version = indexer_version
        self.config = config or ProcessorConfig()
        self.sources = tuple(sources)
        self.tracker = FileTracker(conn, indexer_version, wall)
        self._monotonic = monotonic
        self._wall = wall
        self._next_id = next_batch_id(conn)

    def process(self, batch: Batch) -> BatchResult:
        """Read, parse and commit one batch in a single transaction; raise on database errors."""
        return self.commit(self.read(batch))

    def read(self, batch: Batch) -> ReadBatch:
        """Stat, read and parse every file (or source record) of the batch, outside any transaction."""
        started = self._monotonic()
        entries = _newest_per_key(batch.entries)
        by_source: dict[str, list[FileKey]] = {}
        for e in entries:
            source = owner_of(e.key.rel_path, self.sources)
            if source is not None:
                by_source.setdefault(source.prefix, []).append(e.key)
        found: dict[str, FileRead] = {}
        for source in self.sources:
            if source.prefix in by_source:
                found.update((r.key.rel_path, r) for r in source.read(by_source[source.prefix]))
        reads = tuple(
            found.get(e.key.rel_path) or read_file(self.root, e.key, self.config, 0, self._wall)
            for e in entries
        )
        return ReadBatch(batch, entries, reads, (self._monotonic() - started) * 1000)

    def commit(self, read: ReadBatch) -> BatchResult:
        """Write one read batch: data rows, file_index rows and its batch_log row, one transaction."""
        started = self._monotonic()
        prior = self.tracker.lookup(e.key.rel_path for e in read.entries)
        policy = self.config.retry
        reads = [with_backoff(r, _attempts(prior.get(r.key.rel_path)), policy) for r in read.reads]
        try:
            result = self._transaction(read, reads, prior, started, True)
        except duckdb.ConstraintException:
            # Another path owns one of these ids: replace by key for this batch.
            result = self._transaction(read, reads, prior, started, False)
        self._next_id += 1
        return result

    def _transaction(
        self,
        read: ReadBatch,
        reads: list[FileRead],
        prior: dict[str, TrackedFile],
        started: float,
        trust_prior: bool,
    ) -> BatchResult:
        """Commit one batch; its processing time is its read time plus its commit time."""
        with transaction(self.conn):
            # Twins exist only with a second source: then one extra query per batch.
            twins = {"overlap": True} if self.sources else {}
            kept = apply_reads(self.conn, self.tracker, reads, prior, trust_prior, **twins)
            for source in self.sources:
                mine = [r for r in kept if r.key.rel_path.startswith(source.prefix)]
                if mine:
                    source.write_progress(self.conn, mine)
            processing_ms = read.read_ms + (self._monotonic() - started) * 1000
            result = BatchResult.of(
                batch_id=self._next_id,
                indexer_version=self.version,
                trigger=str(read.batch.reason),
                reads=reads,
                kept=kept,
                queue_wait_ms=(started - read.batch.sealed_at) * 1000 - read.read_ms,
                processing_ms=processing_ms,
                committed_at=self._wall(),
                event_at=[e.event_at for e in read.entries],
            )
            append_batch(self.conn, result)
        return result


def _attempts(before: TrackedFile | None) -> int:
    return before.attempts if before is not None else 0


def _newest_per_key(entries: Sequence[PendingEntry]) -> tuple[PendingEntry, ...]:
    latest: dict[str, PendingEntry] = {}
    for entry in entries:
        latest.pop(entry.key.rel_path, None)
        latest[entry.key.rel_path] = entry
    return tuple(latest.values())
