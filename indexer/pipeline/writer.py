"""The one thread that writes the index. It owns the DuckDB connection: batches, migrations,
log rows, switch records and checkpoints are all jobs it runs, in the order they came.
Nothing else holds the connection; readers take a cursor of their own from `cursor()`.

When the connection is idle after writes, the writer checkpoints it (DuckDB's automatic
checkpoints inside commits cost 300-600 ms), and between jobs once the WAL has grown past
WAL_CHECKPOINT_BYTES (a catch-up is never idle). A database that DuckDB has invalidated (a disk
full during a checkpoint, an I/O error) is reopened with backoff, its real cause logged once and
shown in `condition`; jobs meanwhile still run, and their database calls fail with that cause.
When it cannot be reopened for `give_up_s`, `fatal` says why and every later job fails with
`WriterFailed`: the process then exits naming it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import duckdb

from indexer.store.database import open_database
from indexer.store.schema import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[duckdb.DuckDBPyConnection], T]

IDLE_CHECKPOINT_AFTER_S = 2.0
WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024
"""A WAL this big is checkpointed after the job that grew it: until a checkpoint, DuckDB keeps
what the WAL holds in memory too. A catch-up of 1M files peaked at 681 MB of RSS with DuckDB's
1 GB threshold alone, 530 MB with a 128 MB bound and 467 MB with this one, in the same time; a
64 MB WAL (about 20,000 files) takes ~0.4 s to checkpoint (docs/benchmarks.md, "Issue 14: the
walk on two cores, checkpoints in a catch-up")."""
FIRST_REOPEN_S = 1.0
LONGEST_REOPEN_S = 30.0
GIVE_UP_AFTER_S = 600.0
"""How long an invalidated database is tried again before the writer stops for good."""


class WriterFailed(RuntimeError):
    """The writer can write no more: the database needs a restart, or the writer was closed."""


@dataclass(slots=True)
class _Task:
    job: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any]
    writes: bool


class _LiveConnection:
    """Forwards to the writer's current connection, so what a job keeps (a processor, a
    tracker) keeps working after the database was reopened."""

    def __init__(self, writer: IndexWriter) -> None:
        self._writer = writer

    def __getattr__(self, name: str) -> Any:
        writer = self._writer
        if writer._conn_closed:  # between reopen attempts: the cause, not "already closed"
            raise duckdb.FatalException(writer.condition or "the database was invalidated")
        return getattr(writer._conn, name)


class IndexWriter:
    """submit(), run() and cursor() are safe from any thread; start() and close() from the one
    thread that controls the writer's life."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        *,
        idle_checkpoint_s: float = IDLE_CHECKPOINT_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
        path: Path | None = None,
        give_up_s: float | None = None,
        wal_checkpoint_bytes: int | None = None,
    ) -> None:
        self._conn = conn
        self._live = cast(duckdb.DuckDBPyConnection, _LiveConnection(self))
        self._path = path
        self._give_up_s = GIVE_UP_AFTER_S if give_up_s is None else give_up_s
        self._broken_since: float | None = None
        self._conn_closed = False
        self._next_reopen = 0.0
        self._reopen_step = FIRST_REOPEN_S
        self.condition: str | None = None
        """Why the database cannot be written right now (reopening it, or stopped); else None."""
        self.reopened = 0
        self.on_reopened: Callable[[], None] | None = None
        """Called on the writer thread after a reopen: what failed meanwhile must be found again."""
        self._idle_checkpoint_s = idle_checkpoint_s
        self._wal = path.with_name(path.name + ".wal") if path is not None else None
        self._wal_checkpoint_bytes = wal_checkpoint_bytes or WAL_CHECKPOINT_BYTES
        self._monotonic = monotonic
        self._tasks: queue.Queue[_Task | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fatal: str | None = None
        """Why the writer stopped writing for good (the database was invalidated); else None."""

    @classmethod
    def open(cls, path: Path | str, **options: Any) -> IndexWriter:
        """Open (creating if needed) and migrate the database at path; return a started writer
        (options: those of the constructor)."""
        writer = cls(open_database(path), path=Path(path), **options)
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
        try:
            self._conn.close()
        except duckdb.Error as exc:  # an invalidated database may refuse even that
            log.debug("closing the database: %s", exc)

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
        if self._conn_closed:
            raise WriterFailed(self.condition or "the database was invalidated")
        return self._conn.cursor()

    def _loop(self) -> None:
        dirty = False
        last_write = self._monotonic()
        while True:
            wait_s = None
            if dirty:
                wait_s = max(0.0, last_write + self._idle_checkpoint_s - self._monotonic())
            if self._broken_since is not None and self.fatal is None:
                wait_s = max(0.0, self._next_reopen - self._monotonic())
            try:
                task = self._tasks.get(timeout=wait_s)
            except queue.Empty:
                if self._broken_since is not None:
                    self._try_reopen()
                else:
                    self._checkpoint_quietly()
                dirty = False
                continue
            if task is None:
                return
            if self._execute(task) and task.writes:
                dirty = True
                last_write = self._monotonic()
                if self._wal_is_big():
                    self._checkpoint_quietly()
                    dirty = False

    def _execute(self, task: _Task) -> bool:
        if not task.future.set_running_or_notify_cancel():
            return False
        if self._broken_since is not None:
            self._try_reopen()  # still broken: the job fails on the connection, and says why
        if self.fatal is not None:
            task.future.set_exception(WriterFailed(self.fatal))
            return False
        try:
            result = task.job(self._live)
        except BaseException as exc:  # handed to whoever waits on the job
            if isinstance(exc, duckdb.Error):
                self.check_invalidated(exc)
            task.future.set_exception(exc)
            return False
        task.future.set_result(result)
        return True

    def check_invalidated(self, exc: duckdb.Error) -> bool:
        """Note that DuckDB invalidated the database (it is then reopened, or the writer stops
        for good); True if so. Jobs that handle their own database errors pass them here."""
        if not isinstance(exc, duckdb.FatalException) and "invalidated" not in str(exc).lower():
            return False
        if self.fatal is None and self._broken_since is None:
            cause = real_cause(exc)
            if self._path is None:
                self.fatal = self.condition = f"the database needs a restart: {cause}"
                log.error("writer stopped: %s", self.fatal)
                return True
            self._broken_since = self._monotonic()
            self._next_reopen = self._broken_since + FIRST_REOPEN_S
            self._reopen_step = FIRST_REOPEN_S
            self.condition = f"the database was invalidated ({cause}); reopening it"
            log.error(
                "database invalidated: %s; reopening it with backoff for up to %.0fs (a full "
                "disk: free some space)",
                cause,
                self._give_up_s,
            )
        return True

    def _try_reopen(self) -> None:
        """Reopen an invalidated database when its backoff is due; give up after give_up_s."""
        now = self._monotonic()
        if self._broken_since is None or self.fatal is not None or now < self._next_reopen:
            return
        assert self._path is not None
        with contextlib.suppress(duckdb.Error):  # an invalidated connection may refuse even that
            self._conn.close()
        self._conn_closed = True
        try:
            conn = open_database(self._path, wait_s=0.0)
            migrate(conn)
        except Exception as exc:
            if now - self._broken_since >= self._give_up_s:
                self.fatal = self.condition = (
                    f"the database cannot be reopened after {now - self._broken_since:.0f}s: "
                    f"{real_cause(exc)}"
                )
                log.error("writer stopped: %s", self.fatal)
                return
            log.debug("database not reopened yet: %s", real_cause(exc))
            self._reopen_step = min(self._reopen_step * 2, LONGEST_REOPEN_S)
            self._next_reopen = now + self._reopen_step
            return
        self._conn, self._conn_closed = conn, False
        log.warning("database reopened after %.1fs; committing again", now - self._broken_since)
        self._broken_since = None
        self.condition = None
        self.reopened += 1
        if self.on_reopened is not None:
            try:
                self.on_reopened()
            except Exception:  # a listener's bug must not stop the writer
                log.exception("on_reopened listener failed")

    def _wal_is_big(self) -> bool:
        try:
            return self._wal is not None and self._wal.stat().st_size >= self._wal_checkpoint_bytes
        except OSError:  # no WAL: nothing to checkpoint
            return False

    def _checkpoint_quietly(self) -> None:
        """A checkpoint no job asked for (idle, or a big WAL): a failure is logged, never raised."""
        try:
            _checkpoint(self._conn)
        except duckdb.Error as exc:
            if not self.check_invalidated(exc):
                log.debug("checkpoint skipped: %s", exc)
        except Exception:  # this path must never end the writer thread
            log.exception("checkpoint failed")


def real_cause(exc: BaseException) -> str:
    """The first line that names what went wrong: DuckDB's "Original error" when an error only
    says the database was invalidated before."""
    text = str(exc).strip()
    for line in text.splitlines():
        if line.startswith("Original error:"):
            return line.removeprefix("Original error:").strip().strip('"')
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.removeprefix("FATAL Error: ")


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CHECKPOINT")
