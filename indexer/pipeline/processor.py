"""The batch processor: reads a batch's files (and source records) outside any transaction, then
commits data rows, file_index rows and the batch_log row in ONE transaction, as a job of the
writer. Never commits anywhere but on the connection the writer hands it.

One file's outcome never affects another's: a file that cannot be read or parsed gets a status
and a reason, and the rest of its batch lands.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from indexer.kinds import FileKey, FileKind
from indexer.outcome import BatchResult, FileRead, FileStatus, with_backoff
from indexer.pipeline.accumulator import Batch, PendingEntry, SealReason
from indexer.pipeline.apply import apply_reads
from indexer.pipeline.batch_read import read_files
from indexer.pipeline.first_load import LoadedBatch
from indexer.pipeline.history import as_history, history_kinds, history_reason
from indexer.pipeline.read_pool import ReadPool
from indexer.pipeline.reader import ProcessorConfig, read_file
from indexer.sources.base import ChangeSource, PortableReader, owner_of
from indexer.store.database import transaction
from indexer.store.logs import append_batch, next_batch_id
from indexer.store.rows import insert_built
from indexer.store.schema import get_meta, set_meta
from indexer.store.tracking import FileTracker, TrackedFile

log = logging.getLogger(__name__)

_READ_HERE = (FileStatus.ERROR, FileStatus.PENDING)


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """A batch whose files were read and parsed, ready to commit."""

    batch: Batch
    entries: tuple[PendingEntry, ...]
    """The batch's entries, the newest of each key."""
    reads: tuple[FileRead, ...]
    read_ms: float
    """How long reading and parsing took (it may then wait for the writer)."""
    history: frozenset[FileKind] = frozenset()
    """The kinds a source held with authority when the batch was read."""
    authorities: tuple[str, ...] = ()


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
        pool: ReadPool | None = None,
    ) -> None:
        self.conn = conn
        self.pool = pool
        self.root = root
        self.version = indexer_version
        self.config = config or ProcessorConfig()
        self.sources = tuple(sources)
        self.tracker = FileTracker(
            conn, indexer_version, wall, sole_writer=True, asks_records=bool(self.sources)
        )
        self._monotonic = monotonic
        self._wall = wall
        self._next_id = next_batch_id(conn)
        self._history: frozenset[FileKind] = frozenset()

    def process(self, batch: Batch) -> BatchResult:
        """Read, parse and commit one batch in a single transaction; raise on database errors."""
        return self.commit(self.read(batch))

    def read(self, batch: Batch) -> ReadBatch:
        """Stat, read and parse every file (or source record) of the batch, outside any transaction."""
        started = self._monotonic()
        latest: dict[str, PendingEntry] = {}
        for entry in batch.entries:  # the newest entry of a key, in the place of its newest
            latest.pop(entry.key.rel_path, None)
            latest[entry.key.rel_path] = entry
        entries = tuple(latest.values())
        owned: dict[ChangeSource | None, list[FileKey]] = {}  # None: the JSON tree
        for e in entries:
            owned.setdefault(owner_of(e.key.rel_path, self.sources), []).append(e.key)
        tree = owned.pop(None, [])
        history, authorities = history_kinds(self.sources)
        stated: dict[str, FileRead] = {}
        if history:  # the tree's files of kinds a store now holds: their stamps are enough
            reason = history_reason(authorities)
            for key in tree:
                if key.kind in history:
                    read = read_file(self.root, key, self.config, 0, self._wall, reason)
                    stated[key.rel_path] = read
        found: dict[str, FileRead] = {}
        for source in self.sources:
            mine = owned.get(source)
            if mine:
                found.update(self._read_on_pool(mine, source.portable_reader()))
                rest = [k for k in mine if k.rel_path not in found]
                if rest:
                    found.update((r.key.rel_path, r) for r in source.read(rest))
        tree = [k for k in tree if k.rel_path not in stated]
        found.update(self._read_on_pool(tree))
        here = [k for k in tree if k.rel_path not in found]
        found.update(
            (r.key.rel_path, r) for r in read_files(self.root, here, self.config, self._wall)
        )
        # The stated files are history already: as_history would only build them again.
        found.update(
            (r.key.rel_path, r)
            for r in as_history(list(found.values()), history, self.sources, authorities)
        )
        reads = [stated.get(e.key.rel_path) or found[e.key.rel_path] for e in entries]
        read_ms = (self._monotonic() - started) * 1000
        return ReadBatch(batch, entries, tuple(reads), read_ms, history, tuple(authorities))

    def _read_on_pool(
        self, keys: list[FileKey], records: PortableReader | None = None
    ) -> dict[str, FileRead]:
        """The files (or a source's records) the worker processes read, when the batch is big
        enough for them. A file that failed is left to be read here: whether it settles depends
        on this process's clock (its first sight of a file dated in the future, the wall clock it
        was given), and a store that failed says so here."""
        if self.pool is None or not self.pool.wants(len(keys), records is not None):
            return {}
        reads = self.pool.read(keys, records) or ()
        return {r.key.rel_path: r for r in reads if r.status not in _READ_HERE}

    def commit(self, read: ReadBatch) -> BatchResult:
        """Write one read batch: data rows, file_index rows and its batch_log row, one transaction."""
        started = self._monotonic()
        prior, reads = self._prior(read)
        try:
            result = self._transaction(read, reads, prior, started, True)
        except duckdb.ConstraintException:
            # Another path owns one of these ids: replace by key for this batch. Or a row the
            # tracker's filter did not know is there (another writer): look up for real.
            if self.tracker.distrust_filter():
                prior, reads = self._prior(read)
            result = self._transaction(read, reads, prior, started, False)
        self._next_id += 1
        return result

    def commit_loaded(self, loaded: LoadedBatch) -> BatchResult:
        """Commit a first catch-up's batch (pipeline.first_load): its rows, its file_index rows
        and its batch_log row, one transaction; on any error nothing of it is written."""
        started = self._monotonic()
        files = len(loaded)
        with transaction(self.conn):
            for table, parts in loaded.rows:
                insert_built(self.conn, table, parts)
            self.tracker.record_new_indexed(
                loaded.paths,
                loaded.kinds,
                loaded.record_ids,
                loaded.mtimes_ns,
                loaded.sizes,
                loaded.hashes,
            )
            committed_at = self._wall()
            latency_ms = max(0.0, (committed_at - loaded.event_at) * 1000)
            result = BatchResult(
                batch_id=self._next_id,
                indexer_version=self.version,
                trigger=str(SealReason.CATCH_UP),
                files=files,
                indexed=files,
                errors=0,
                pending=0,
                deleted=0,
                skipped=0,
                dropped=0,
                by_kind=dict(Counter(loaded.kinds)),
                queue_wait_ms=(started - loaded.read_at) * 1000,
                processing_ms=loaded.read_ms + (self._monotonic() - started) * 1000,
                committed_at=committed_at,
                event_latency_ms=(latency_ms,) * files,
                reads=(),
            )
            append_batch(self.conn, result)
        self._next_id += 1
        return result

    def _prior(self, read: ReadBatch) -> tuple[dict[str, TrackedFile], list[FileRead]]:
        """The batch's file_index rows, and its reads with the retry backoff those rows give."""
        prior = self.tracker.lookup(e.key.rel_path for e in read.entries)
        attempts = {path: before.attempts for path, before in prior.items()}
        policy = self.config.retry
        return prior, [with_backoff(r, attempts.get(r.key.rel_path, 0), policy) for r in read.reads]

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
            if read.history and read.history != self._history:
                self._take_history(read)
            # Twins exist only with a second source: then one extra query per batch.
            twins = {"overlap": True} if self.sources else {}
            kept = apply_reads(self.conn, self.tracker, reads, prior, trust_prior, **twins)
            for source in self.sources:
                mine = [r for r in kept if r.key.rel_path.startswith(source.prefix)]
                if mine:
                    source.write_progress(self.conn, mine)
            result = BatchResult.of(
                batch_id=self._next_id,
                indexer_version=self.version,
                trigger=str(read.batch.reason),
                reads=reads,
                kept=kept,
                queue_wait_ms=(started - read.batch.sealed_at) * 1000 - read.read_ms,
                processing_ms=read.read_ms + (self._monotonic() - started) * 1000,
                committed_at=self._wall(),
                event_at=[e.event_at for e in read.entries],
            )
            append_batch(self.conn, result)
        self._history = read.history or self._history
        return result

    def _take_history(self, read: ReadBatch) -> None:
        """The first batch that sees a store hold these kinds has their JSON copies read again,
        once per index (recorded in meta, in this batch's transaction)."""
        label = ",".join(sorted(str(k) for k in read.history))
        if get_meta(self.conn, "history_kinds") == label:
            return
        marked = self.tracker.mark_kinds_for_reread(
            [str(k) for k in read.history], read.authorities, "the store now holds this kind"
        )
        set_meta(self.conn, "history_kinds", label)
        log.info("the store holds %s: %d JSON copies are read again as history", label, marked)
