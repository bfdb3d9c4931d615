"""The first catch-up of a JSON tree into an empty index, loaded in bulk: the walk's files are
read a batch at a time (on the read pool's workers when there are some), and each batch's clean
reads are committed column by column (data rows, file_index rows, one batch_log row) in one
transaction of the writer. No accumulator entry and no object per file in this process: at 1M
files those cost more than the database does (docs/benchmarks.md, "the first catch-up in bulk").

Everything else takes the regular way, through the accumulator, which decides it as always: a
file that did not read cleanly (pending, in error, skipped, gone, or indexed with a note), a file
of no indexed kind, and every file of a batch whose commit failed (a record another file holds,
a database error); what was committed stays. Used only where nothing else writes these paths
meanwhile: an empty index, no store beside the tree (its twins and history need the regular
way's decisions), before the watcher starts.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import duckdb

from indexer.kinds import SPECS, FileKey, FileKind, Table, WireKey, to_wire
from indexer.outcome import BuiltRows, FileStatus
from indexer.pipeline.read_pool import PoolConfig, ReadPool
from indexer.pipeline.read_worker import Answer, read_task
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.writer import IndexWriter, WriterFailed
from indexer.store.database import THREADS, set_threads

log = logging.getLogger(__name__)

MIN_FILES = 2_000
"""A first catch-up of fewer files goes the regular way, as every later change. From this many
the load in bulk, on workers started from the walk, is as fast or faster than the regular way
(alternated on the simulator's trees, 10 pairs each, first and second rounds, 2026-12-03):
2,578 files 0.231 / 0.211 s against 0.236 / 0.214 s; 3,625 files 0.245 / 0.231 s against
0.278 / 0.248 s; 6,334 files 0.325 / 0.315 s against 0.402 / 0.369 s (docs/benchmarks.md,
"the whole walk in C; bulk from 2,000 files")."""
BATCH_FILES = 5_000
"""A first catch-up in bulk commits this many files at a time: fewer commits and statements.
1M files, one run each: 40.8 s / 368 MB peak RSS at 2,000, 36.2 s / 458 MB at 5,000; before the
read ahead, 10,000 gained ~4 s more than 5,000 at 543-561 MB (docs/benchmarks.md, "the first
catch-up in bulk")."""
ON_WORKERS = MIN_FILES
"""A first catch-up of this many files or more is read on worker processes (PoolConfig's
first_load_workers), started from its walk once that has seen enough files for a load in bulk
(LoadWorkers): its first batches are read on the loading thread until they are up. A smaller one
is read on this process, unless the pool reads JSON files anyway. Since one worker forks the
others (read_pool.start_workers), workers win from a few thousand files (MIN_FILES's figures; at
10,180 files, on 2 cores, 0.40-0.59 s on workers against 0.47-0.63 s here, docs/benchmarks.md,
"one worker started, the others forked")."""

LAST_BATCH_FILES = 1_000
"""Toward its end a first catch-up's batches shrink, down to this size (batch_sizes): the last
commit, which no read overlaps, is short."""

_COMMITS_AHEAD = 2
"""Batches handed to the writer and not yet committed: one committing, one waiting."""
_INDEXED = FileStatus.INDEXED.value


@dataclass(frozen=True, slots=True)
class LoadedBatch:
    """A batch of files read for the first time and indexed cleanly, as columns."""

    paths: list[str]
    kinds: list[str]
    record_ids: list[str]
    mtimes_ns: list[int]
    sizes: list[int]
    hashes: list[str | None]
    rows: list[tuple[Table, list[BuiltRows]]]
    """Each table's rows, in the files' order."""
    event_at: float
    """Wall time the batch's files were submitted (their latency counts from it)."""
    read_at: float
    """Monotonic time its reads were done (its wait for the writer counts from it)."""
    read_ms: float

    def __len__(self) -> int:
        return len(self.paths)


Read = Callable[[list[WireKey]], Sequence[Answer]]
"""Reads files given as wire keys: the answers, whose outcomes follow the keys' order."""
Commit = Callable[[LoadedBatch, list[FileKey]], "Future[int]"]
"""Hands a loaded batch to the writer; its keys go the regular way if the commit fails."""


def load_first(
    chunks: Iterable[list[FileKey]],
    read: Read,
    commit: Commit,
    regular: Callable[[list[FileKey]], None],
    stopping: Callable[[], bool],
    batch_files: int,
    expected: int = 0,
    wall: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Load every key of `chunks` in batches of at most `batch_files` (`batch_sizes` of the
    `expected` count of keys, when given); keys it does not commit go to
    `regular`. Returns when every batch it handed the writer is committed (or failed); once
    `stopping()`, the keys left go to `regular` unread. Returns the files committed.

    One batch is read (on a thread of its own) while the one before is sorted and handed to the
    writer and the one after is classified: the readers never wait for this thread."""
    commits: deque[Future[int]] = deque()
    committed = 0
    keys_left = (key for chunk in chunks for key in chunk)
    sizes = batch_sizes(expected, batch_files)
    with ThreadPoolExecutor(1, "ocindex-first-load") as reader:
        ahead: _Reading | None = None
        while True:
            batch = list(itertools.islice(keys_left, next(sizes)))
            if batch and stopping():
                regular(batch)
                for rest in iter(lambda: list(itertools.islice(keys_left, batch_files)), []):
                    regular(rest)
                batch = []
            reading = _start_read(batch, read, reader, regular, wall, monotonic)
            if ahead is not None:
                done = _finish_read(ahead, regular, monotonic)
                if done is not None:
                    while len(commits) >= _COMMITS_AHEAD:
                        committed += _committed(commits.popleft())
                    commits.append(commit(*done))
            if reading is None and not batch:
                break
            ahead = reading
    while commits:
        committed += _committed(commits.popleft())
    return committed


def batch_sizes(expected: int, most: int, least: int | None = None) -> Iterator[int]:
    """Sizes of batches for `expected` keys: `most`, but never more than half of what is left
    until that is under twice `least` (the rest in one batch); then `most` for ever (the count
    was only expected)."""
    least, left = min(LAST_BATCH_FILES if least is None else least, most), expected
    while left > 0:
        n = min(most, max(least, -(-left // 2)))
        if left - n < least:
            n = min(left, most)
        yield n
        left -= n
    yield from itertools.repeat(most)


@dataclass(frozen=True, slots=True)
class _Reading:
    keys: list[FileKey]
    wire: list[WireKey]
    answers: Future[Sequence[Answer]]
    event_at: float
    started: float


def _start_read(
    batch: list[FileKey],
    read: Read,
    reader: ThreadPoolExecutor,
    regular: Callable[[list[FileKey]], None],
    wall: Callable[[], float],
    monotonic: Callable[[], float],
) -> _Reading | None:
    """The batch's read, started; its keys of no indexed kind go to `regular` unread."""
    keys = [k for k in batch if k.kind is not FileKind.SKIPPED]
    if len(keys) < len(batch):
        regular([k for k in batch if k.kind is FileKind.SKIPPED])
    if not keys:
        return None
    wire = [to_wire(k) for k in keys]
    return _Reading(keys, wire, reader.submit(read, wire), wall(), monotonic())


def _finish_read(
    reading: _Reading, regular: Callable[[list[FileKey]], None], monotonic: Callable[[], float]
) -> tuple[LoadedBatch, list[FileKey]] | None:
    """The batch's clean reads and their keys; every other key goes to `regular`."""
    try:
        answers = reading.answers.result()
    except Exception:  # a bug, not a file's fault: the regular way reads them and says so
        log.exception("first catch-up: a batch's read failed; it goes the regular way")
        regular(reading.keys)
        return None
    loaded, kept, others = _loaded(reading, answers, monotonic)
    if others:
        regular([reading.keys[i] for i in others])
    if loaded is None:
        return None
    return loaded, reading.keys if not others else [reading.keys[i] for i in kept]


class LoadWorkers:
    """The worker processes that read a first catch-up: the indexer's own read pool (`running`),
    or some started for it and closed after it. They start as the load starts, or before, from
    its walk, once that has seen enough files for a load in bulk; either way its first batches
    are read on the loading thread until they are up (ReadPool.warm)."""

    def __init__(
        self, root: Path, processor: ProcessorConfig, config: PoolConfig, running: ReadPool | None
    ) -> None:
        self._root, self._processor, self._config, self._running = root, processor, config, running
        self._pool: ReadPool | None = None

    def start(self, files: int) -> ReadPool | None:
        """The workers for a load of this many files, started if they are not; None: it is read
        on the loading thread. Not from two threads at once (the walk's call comes first)."""
        if self._pool is None and (files >= ON_WORKERS or self._config.files):
            self._pool = self._running
            if self._running is None and self._config.first_load_workers:
                workers = PoolConfig(self._config.first_load_workers)
                self._pool = ReadPool(self._root, self._processor, workers)
            if self._pool is not None:
                self._pool.warm()
        return self._pool

    def close(self) -> None:
        """Close the workers started for the load (never the indexer's own)."""
        pool, self._pool = self._pool, None
        if pool is not None and pool is not self._running:
            pool.close()


@contextmanager
def duckdb_yields_cores(writer: IndexWriter, workers: ReadPool | None) -> Iterator[None]:
    """While workers read a load, DuckDB commits it on one thread: the workers keep every core
    busy, and its second thread only took turns with them. On 20,106 files, 10 pairs
    alternated: 0.700 s against 0.740 s, 1.41 s of the indexer's CPU against 1.47 s
    (docs/benchmarks.md, "DuckDB on one thread while workers read a first catch-up"). Its
    threads are THREADS again after, for the reconciler's and the readers' queries (not the
    count it found: a live query that held it to one meanwhile would have left it there)."""
    held = False
    if workers is not None:
        try:
            writer.run(partial(set_threads, threads=1), writes=False)
            held = True
        except (duckdb.Error, WriterFailed) as exc:  # the load's own commits say what is wrong
            log.debug("first catch-up: DuckDB's threads left as they are: %s", exc)
    try:
        yield
    finally:
        if held:
            writer.submit(partial(set_threads, threads=THREADS), writes=False)


def reader(pool: ReadPool | None, root: Path, processor: ProcessorConfig) -> Read:
    """Reads on the pool's workers once they are up, else on the calling thread (without a
    pool, while its workers start, or once it failed). While they start, a batch is read here
    HERE_FILES at a time, and what is left of it goes to them as soon as they are up."""
    base = os.fspath(root)

    def read(wire: list[WireKey]) -> Sequence[Answer]:
        answers: list[Answer] = []
        done = 0
        while done < len(wire):
            if pool is not None and pool.ready:
                rest = pool.read_wire(wire[done:] if done else wire)
                if rest is not None:
                    return answers + rest
            step = HERE_FILES if pool is not None and pool.serving else len(wire)
            answers.append(read_task(base, wire[done : done + step], processor))
            done += step
        return answers

    return read


HERE_FILES = 500
"""While the workers start, the loading thread reads this many files of a batch at a time: they
take the rest of it within ~15 ms of being up, not once this thread has read the whole batch."""


def _committed(commit: Future[int]) -> int:
    """Files a commit wrote. A job that never ran (the writer stopped for good, which it says
    itself) wrote none."""
    try:
        return commit.result()
    except Exception as exc:
        log.debug("first catch-up: a batch was not committed: %s", exc)
        return 0


def _loaded(
    reading: _Reading, answers: Sequence[Answer], monotonic: Callable[[], float]
) -> tuple[LoadedBatch | None, list[int], list[int]]:
    """The batch's clean reads as columns, their places, and the places of the others."""
    wire = reading.wire
    others: list[int] = []
    kept: list[int] = []
    mtimes: list[int] = []
    sizes: list[int] = []
    hashes: list[str | None] = []
    rows: dict[int, tuple[Table, list[BuiltRows]]] = {}  # by id: kinds may share a table
    done = 0
    for outcomes, tables in answers:
        clean = True
        for j, (status, mtime_ns, size, digest, message, retry, *_) in enumerate(outcomes):
            if status != _INDEXED or message is not None or retry is not None:
                others.append(done + j)
                clean = False
                continue
            assert mtime_ns is not None and size is not None
            kept.append(done + j)
            mtimes.append(mtime_ns)
            sizes.append(size)
            hashes.append(digest)
        if clean:  # every file of the task is in: each of its tables whole
            for kind, table in tables.items():
                _rows_of(rows, kind).append(BuiltRows(table, 0, table.num_rows))
        else:  # the rows of the files that are in, file by file
            left_out = set(others)
            for j, (*_, start, count) in enumerate(outcomes):
                kind = wire[done + j][1]
                if count and done + j not in left_out:
                    _rows_of(rows, kind).append(BuiltRows(tables[kind], start, count))
        done += len(outcomes)
    if not kept:
        return None, kept, others
    read_at = monotonic()
    loaded = LoadedBatch(
        paths=[wire[i][0] for i in kept],
        kinds=[wire[i][1] for i in kept],
        record_ids=[wire[i][2] for i in kept],
        mtimes_ns=mtimes,
        sizes=sizes,
        hashes=hashes,
        rows=list(rows.values()),
        event_at=reading.event_at,
        read_at=read_at,
        read_ms=(read_at - reading.started) * 1000,
    )
    return loaded, kept, others


def _rows_of(rows: dict[int, tuple[Table, list[BuiltRows]]], kind: str) -> list[BuiltRows]:
    table = SPECS[FileKind(kind)].table
    return rows.setdefault(id(table), (table, []))[1]
