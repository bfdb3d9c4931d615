"""The one thread that writes the index. It owns the DuckDB connection: batches, migrations,
log rows, switch records and checkpoints are all jobs it runs, in the order they came.
Nothing else holds the connection; readers take a cursor of their own from `cursor()`.

When the connection is idle after writes, the writer checkpoints it (DuckDB's automatic
checkpoints inside commits cost 300-600 ms). A database that DuckDB has invalidated makes the
writer fail every later job with `WriterFailed`, and says why once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from indexer.store.database import open_database
from indexer.store.schema import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[duckdb.DuckDBPyConnection], T]

IDLE_CHECKPOINT_AFTER_S = 2.0


class WriterFailed(RuntimeError):
    """The writer can write no more: the database needs a restart, or the writer was closed."""


@dataclass(slots=True)
class _Task:
    job: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any]
    writes: bool


class IndexWriter:
    """submit(), run() and cursor() are safe from any thread; start() and close() from the one
    thread that controls the writer's life."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        *,
        idle_checkpoint_s: float = IDLE_CHECKPOINT_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._idle_checkpoint_s = idle_checkpoint_s
        self._monotonic = monotonic
        self._tasks: queue.Queue[_Task | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fatal: str | None = None
        """Why the writer stopped writing for good (the database was invalidated); else None."""

    @classmethod
    def open(cls, path: Path | str) -> IndexWriter:
        """Open (creating if needed) and migrate the database at path; return a started writer."""
        writer = cls(open_database(path))
        writer.start()
        try:
            writer.run(migrate)
        except BaseException:
            writer.close(checkpoint=False)
            raise
        return writer

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="ocindex-writer", daemon=True)
        self._thread.start()

    def close(self, checkpoint: bool = True, timeout_s: float = 60.0) -> None:
        """Run what was submitted, checkpoint, stop the thread and close the connection."""
        if self._closed:
            return
        if checkpoint and self.fatal is None and self._thread is not None:
            try:
                self.checkpoint(timeout_s)
            except (duckdb.Error, WriterFailed) as exc:
                log.warning("checkpoint at close failed: %s", exc)
        self._closed = True
        if self._thread is not None:
            self._tasks.put(None)
            self._thread.join(timeout_s)
            self._thread = None
        self._conn.close()

    @property
    def is_closed(self) -> bool:
        return self._closed

    def submit(self, job: Job[T], *, writes: bool = True) -> Future[T]:
        """Queue a job to run on the writer thread with the connection; its result or exception
        arrives in the future. `writes=False` for jobs that only read (no checkpoint follows)."""
        future: Future[T] = Future()
        task = _Task(job, future, writes)
        if self._closed or self._thread is None:
            future.set_exception(WriterFailed("the index writer is not running"))
        elif threading.current_thread() is self._thread:
            self._execute(task)  # a job that submits another: run it in place, in order
        else:
            self._tasks.put(task)
        return future

    def run(self, job: Job[T], timeout_s: float | None = None, *, writes: bool = True) -> T:
        """Run a job on the writer thread and return its result (or raise its exception)."""
        return self.submit(job, writes=writes).result(timeout_s)

    def checkpoint(self, timeout_s: float | None = None) -> None:
        self.run(_checkpoint, timeout_s)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for another thread's reads; it never sees the writer's open transaction."""
        return self._conn.cursor()

    def _loop(self) -> None:
        dirty = False
        last_write = self._monotonic()
        while True:
            wait_s = None
            if dirty:
                wait_s = max(0.0, last_write + self._idle_checkpoint_s - self._monotonic())
            try:
                task = self._tasks.get(timeout=wait_s)
            except queue.Empty:
                self._idle_checkpoint()
                dirty = False
                continue
            if task is None:
                return
            if self._execute(task) and task.writes:
                dirty = True
                last_write = self._monotonic()

    def _execute(self, task: _Task) -> bool:
        if not task.future.set_running_or_notify_cancel():
            return False
        if self.fatal is not None:
            task.future.set_exception(WriterFailed(self.fatal))
            return False
        try:
            result = task.job(self._conn)
        except BaseException as exc:  # handed to whoever waits on the job
            if isinstance(exc, duckdb.Error):
                self.check_invalidated(exc)
            task.future.set_exception(exc)
            return False
        task.future.set_result(result)
        return True

    def check_invalidated(self, exc: duckdb.Error) -> bool:
        """Stop writing for good when DuckDB says the database was invalidated; True if so.
        Jobs that handle their own database errors pass them here."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "invalidated" not in text.lower():
            return False
        if self.fatal is None:
            self.fatal = f"the database needs a restart: {text}"
            log.error("writer stopped: %s", self.fatal)
        return True

    def _idle_checkpoint(self) -> None:
        try:
            _checkpoint(self._conn)
        except duckdb.Error as exc:
            log.debug("idle checkpoint skipped: %s", exc)


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CHECKPOINT")
