"""Reads and parses a big batch's JSON files on worker processes, each sending back its files'
outcomes and their rows already built as Arrow columns. Never touches the database: the one
writer still commits every batch, in order.

A catch-up spends most of its time reading, parsing and building rows: one core's work under
the GIL, here spread over every core. Workers are plain subprocesses (never a fork of this
threaded process) that exit when their task pipe closes, so they end with this process however
it ends. A worker that cannot start, dies or fails says so once and the pool closes: the
caller reads the batch itself, so nothing is lost, only speed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pyarrow as pa

from indexer.config import child_env
from indexer.kinds import SPECS, FileKey, WireKey, to_wire
from indexer.outcome import BuiltRows, FileRead, FileStamp, FileStatus, ParsedFile
from indexer.pipeline.read_worker import Answer, Origin, Outcome
from indexer.pipeline.reader import ProcessorConfig
from indexer.sources.base import PortableReader

log = logging.getLogger(__name__)

FILES_PER_TASK = 500
"""The most files one worker reads per task: big enough that a task's round trip (about a
millisecond) is noise, small enough that a batch of 2,000 keeps two workers busy."""

_STATUS = {status.value: status for status in FileStatus}


@dataclass(frozen=True, slots=True)
class PoolConfig:
    workers: int = 0
    """Worker processes; 0 reads every batch on the reading thread."""
    min_files: int = 1000
    """A batch with fewer JSON files than this is read on the reading thread: below it the round
    trips cost more than they save (docs/benchmarks.md, "catch-up on every core")."""
    files: bool = False
    """JSON files too, not only a store's records. Off: on 2 cores, since the leaner reader,
    workers made a JSON catch-up 8-22% slower up to 50,000 files and gained nothing at 1M
    (docs/benchmarks.md, "a store beside the tree"); a store's records gain 15-23%."""
    first_load_workers: int = 0
    """Worker processes that read a big first catch-up loaded in bulk (pipeline.first_load),
    started for it when `workers` is 0; 0 reads it on the indexer's own thread."""


class PoolFailed(Exception):
    """A worker could not start, died, or failed a task."""


class _Worker:
    """One worker process and its two pipes; used by one thread at a time."""

    def __init__(self) -> None:
        task_r, task_w = os.pipe()
        answer_r, answer_w = os.pipe()
        env = child_env()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "indexer.pipeline.read_worker", str(task_r), str(answer_w)],
                pass_fds=(task_r, answer_w),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            os.close(task_w)
            os.close(answer_r)
            raise
        finally:
            os.close(task_r)  # the worker's ends: it holds its own copies
            os.close(answer_w)
        self.tasks = Connection(task_w, readable=False)
        self.answers = Connection(answer_r, writable=False)

    def run(
        self, tasks: Sequence[tuple[Origin, Sequence[WireKey], ProcessorConfig]]
    ) -> list[Answer]:
        answers: list[Answer] = []
        for task in tasks:
            try:
                self.tasks.send(task)
                verdict, answer = self.answers.recv()
            except (EOFError, OSError) as exc:
                code = self.process.poll()
                raise PoolFailed(f"worker {self.process.pid} exited ({code})") from exc
            if verdict != "ok":
                raise PoolFailed(f"worker {self.process.pid} failed a task:\n{answer}")
            answers.append(answer)
        return answers

    def stop(self) -> None:
        """Close its task pipe (it exits when it sees that) and reap it."""
        self.tasks.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.answers.close()


class ReadPool:
    """read() from one thread at a time (the reading thread); close() from any."""

    def __init__(self, root: Path, config: ProcessorConfig, pool: PoolConfig) -> None:
        self.root = root
        self.config = config
        self.pool = pool
        self._workers: list[_Worker] = []
        self._threads: ThreadPoolExecutor | None = None
        self._off = False
        self._lock = threading.Lock()
        self.batches = 0
        """Batches the workers read."""
        self.keys = 0
        """Files and records the workers read."""

    def wants(self, keys: int, records: bool = False) -> bool:
        """Whether a batch of this many JSON files (or a source's records) goes to the workers."""
        wanted = records or self.pool.files
        return wanted and self.pool.workers > 0 and keys >= self.pool.min_files and not self._off

    @property
    def serving(self) -> bool:
        """Whether read_wire may be asked: the pool has workers and was not closed."""
        return self.pool.workers > 0 and not self._off

    def read(
        self, keys: Sequence[FileKey], records: PortableReader | None = None
    ) -> list[FileRead] | None:
        """These files' reads (or, given a source's reader, its records'), in order; None when
        the pool cannot serve (the caller reads them)."""
        answers = self.read_wire([to_wire(k) for k in keys], records)
        if answers is None:
            return None
        reads: list[FileRead] = []
        done = 0
        for outcomes, tables in answers:
            reads.extend(_rebuild(keys[done + j], o, tables) for j, o in enumerate(outcomes))
            done += len(outcomes)
        return reads

    def read_wire(
        self, wire: Sequence[WireKey], records: PortableReader | None = None
    ) -> list[Answer] | None:
        """The workers' answers for these keys, in order (each answer's outcomes follow the
        previous one's); None when the pool cannot serve (the caller reads them)."""
        origin: Origin = os.fspath(self.root) if records is None else records
        # Every worker gets a share of a small batch; a big one goes in tasks of FILES_PER_TASK.
        size = max(1, min(FILES_PER_TASK, -(-len(wire) // self.pool.workers)))
        tasks = [(origin, wire[i : i + size], self.config) for i in range(0, len(wire), size)]
        try:
            workers, threads = self._running()
            n = len(workers)
            shares = [threads.submit(w.run, tasks[i::n]) for i, w in enumerate(workers)]
            wait(shares)  # every worker idle again before one that failed closes them all
            answered = [share.result() for share in shares]
        except (PoolFailed, OSError) as exc:
            self._give_up(exc)
            return None
        self.batches += 1
        self.keys += len(wire)
        # Task t went to worker t % n, as its (t // n)th.
        return [answered[t % n][t // n] for t in range(len(tasks))]

    @property
    def ready(self) -> bool:
        """Whether the workers are up and have answered: a read now never waits for a start."""
        return self._threads is not None and not self._off

    def warm(self) -> None:
        """Start the workers on a thread of their own, if they are not up (`ready` once they
        answer): a caller reads on its own thread meanwhile instead of waiting for them."""
        if self.serving and not self.ready:
            threading.Thread(target=self._warm, name="ocindex-read-pool-start", daemon=True).start()

    def _warm(self) -> None:
        try:
            self._running()
        except (PoolFailed, OSError) as exc:
            self._give_up(exc)

    def _running(self) -> tuple[list[_Worker], ThreadPoolExecutor]:
        """The workers, started by the first batch that wants them (or by warm())."""
        with self._lock:
            if self._off:
                raise PoolFailed("the pool is closed")
            if self._threads is None:
                while len(self._workers) < self.pool.workers:
                    self._workers.append(_Worker())
                for worker in self._workers:  # an empty task: answered once it has imported
                    worker.run([(os.fspath(self.root), (), self.config)])
                self._threads = ThreadPoolExecutor(self.pool.workers, "ocindex-read-pool")
            return list(self._workers), self._threads

    def _give_up(self, exc: Exception) -> None:
        log.warning("parallel reading is off, batches are read here: %s", exc)
        self.close()

    def close(self) -> None:
        """Stop the workers for good; safe to call twice and from any thread."""
        with self._lock:
            self._off = True
            workers, self._workers = self._workers, []
            threads, self._threads = self._threads, None
        for worker in workers:
            worker.stop()
        if threads is not None:
            threads.shutdown(wait=True)


def _rebuild(key: FileKey, outcome: Outcome, tables: dict[str, pa.Table]) -> FileRead:
    status, mtime_ns, size, digest, message, retry_in_s, owner, start, count = outcome
    stamp = FileStamp(mtime_ns, size) if mtime_ns is not None and size is not None else None
    parsed = None
    if owner is not None:
        built = BuiltRows(tables[str(key.kind)], start, count) if count else None
        parsed = ParsedFile(SPECS[key.kind].table, owner, (), built)
    return FileRead(key, _STATUS[status], stamp, digest, parsed, message, retry_in_s)
