"""Reads and parses a big batch's JSON files on worker processes, each sending back its files'
outcomes and their rows already built as Arrow columns. Never touches the database: the one
writer still commits every batch, in order.

A catch-up spends most of its time reading, parsing and building rows: one core's work under
the GIL, here spread over every core. Workers are never a fork of this threaded process: one
plain subprocess is started, and once it has imported what it needs (~0.13 s of CPU, with a
single thread) it forks the others, a millisecond each instead of another import. Each exits
when its task pipe closes, so they end with this process however it ends. A worker that cannot
start, dies or fails says so once and the pool closes: the caller reads the batch itself, so
nothing is lost, only speed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pyarrow as pa

from indexer.arrow_memory import CHOSEN_BY_USER, reusing_backend
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
    """One worker process's two pipes; used by one thread at a time. The pool starts one process
    (`process`), which forks the others (start_workers)."""

    def __init__(
        self, tasks: Connection, answers: Connection, process: subprocess.Popen[bytes] | None
    ):
        self.tasks = tasks
        self.answers = answers
        self.process = process
        self.pid: int | None = None
        """Said by the worker once it is up (hello)."""

    def hello(self) -> None:
        """Wait for the worker's pid: it has imported what it needs, and serves."""
        try:
            self.pid = self.answers.recv()
        except (EOFError, OSError) as exc:
            raise PoolFailed(f"a worker exited before it started{self._code()}") from exc

    def run(
        self, tasks: Sequence[tuple[Origin, Sequence[WireKey], ProcessorConfig]]
    ) -> list[Answer]:
        answers: list[Answer] = []
        for task in tasks:
            try:
                self.tasks.send(task)
                verdict, answer = self.answers.recv()
            except (EOFError, OSError) as exc:
                raise PoolFailed(f"worker {self.pid} exited{self._code()}") from exc
            if verdict != "ok":
                raise PoolFailed(f"worker {self.pid} failed a task:\n{answer}")
            answers.append(answer)
        return answers

    def _code(self) -> str:
        code = self.process.poll() if self.process is not None else None
        return f" ({code})" if code is not None else ""

    def finish(self, deadline: float) -> None:
        """See it end once its task pipe is closed (it exits when it sees that); killed if it
        has not by the deadline (monotonic). A forked one ends its answer pipe as it exits; the
        one started is reaped here, once it has seen the ones it forked end."""
        if self.process is None:
            try:
                while self.answers.poll(max(0.0, deadline - time.monotonic())):
                    self.answers.recv()  # an answer nobody waits for: drained, so it can exit
            except (EOFError, OSError):
                pass  # it exited
            else:
                if self.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
        else:
            try:
                self.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.answers.close()


_STOP_WAIT_S = 10.0
"""How long a stopping worker may take to exit before it is killed."""


def _worker_env() -> dict[str, str]:
    """The workers' environment: this process's, with Arrow's allocator chosen before they load
    pyarrow (indexer.arrow_memory) and no thread of jemalloc's, so that the process started has
    one thread when it forks the others."""
    env = child_env()
    if not env.get(CHOSEN_BY_USER):
        env[CHOSEN_BY_USER] = reusing_backend()
    conf = [env.get(_JEMALLOC_CONF, ""), "background_thread:false"]
    env[_JEMALLOC_CONF] = ",".join(c for c in conf if c)
    return env


_JEMALLOC_CONF = "JE_ARROW_MALLOC_CONF"


def start_workers(count: int) -> list[_Worker]:
    """Start `count` workers: one process, which forks the others once it has imported (that
    import is ~0.13 s of CPU a process; a fork of a process that has no thread, a millisecond)."""
    ends = [(os.pipe(), os.pipe()) for _ in range(count)]
    theirs = [fd for (task_r, _), (_, answer_w) in ends for fd in (task_r, answer_w)]
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "indexer.pipeline.read_worker", *map(str, theirs)],
            pass_fds=theirs,
            stdin=subprocess.DEVNULL,
            env=_worker_env(),
        )
    except OSError:
        for (_, task_w), (answer_r, _) in ends:
            os.close(task_w)
            os.close(answer_r)
        raise
    finally:
        for fd in theirs:  # the workers' ends: they hold their own copies
            os.close(fd)
    return [
        _Worker(
            Connection(task_w, readable=False),
            Connection(answer_r, writable=False),
            process if i == 0 else None,
        )
        for i, ((_, task_w), (answer_r, _)) in enumerate(ends)
    ]


def stop_workers(workers: Sequence[_Worker]) -> None:
    """End the workers start_workers started: killed if they have not exited within
    _STOP_WAIT_S."""
    for worker in workers:  # each sees its end at once: the first waits for those it forked
        worker.tasks.close()
    deadline = time.monotonic() + _STOP_WAIT_S
    for worker in reversed(workers):
        worker.finish(deadline)


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
                if not self._workers:
                    self._workers = start_workers(self.pool.workers)
                for worker in self._workers:
                    worker.hello()
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
        stop_workers(workers)
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
