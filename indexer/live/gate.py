"""Admission of live queries, so a client looping heavy queries cannot take the writer's CPU:
queries on query threads of lowest priority holding DuckDB to one thread, and a bounded pause
after each. Never refuses a query and never runs one on the writer's connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import duckdb

from indexer.store.database import set_threads

T = TypeVar("T")

DUTY = 0.5
"""Share of the time live queries may run back to back: after a query of t seconds the next is
admitted t × (1 − DUTY) / DUTY seconds after it ended (t, at 0.5)."""
MAX_PAUSE_S = 5.0
"""The longest pause, whatever the query took."""
QUERY_THREADS = 1
"""DuckDB's threads while a live query runs (a setting of the whole database, restored after):
on 2 cores, a query on 2 threads slows the writer's batches 1.4-2× (docs/benchmarks.md)."""
QUERY_NICE = 19
"""The query threads' niceness (Linux: per thread); with DuckDB on one thread the whole query
runs on its calling thread, so the writer's threads come first."""
QUERY_WORKERS = 8
"""Queries running at once; a long one does not hold back a short one sent beside it."""


def pause_after(work_s: float, duty: float = DUTY, longest_s: float = MAX_PAUSE_S) -> float:
    """How long the next query waits after one that ran `work_s` seconds."""
    if duty >= 1.0:
        return 0.0
    return min(longest_s, max(0.0, work_s) * (1.0 - duty) / duty)


class QueryGate:
    """Runs live queries on its own threads; a query is admitted once the pause after the last
    one that ended is over. `clock` and `sleep` are injectable for tests."""

    def __init__(
        self,
        duty: float = DUTY,
        threads: int = QUERY_THREADS,
        nice: int = QUERY_NICE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._duty = duty
        self._threads = threads
        self._nice = nice
        self._clock = clock
        self._sleep = sleep
        self._next_at = float("-inf")
        self._lock = threading.Lock()
        self._running = 0
        self._former: int | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=QUERY_WORKERS,
            thread_name_prefix="ocindex-live-query",
            initializer=self._lower,
        )

    def run(self, cursor: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
        """`work()` (a query on `cursor`) on a query thread once admitted: its result or its
        exception. Waits for the pause after the last query that ended, and for a free thread
        when QUERY_WORKERS queries already run."""
        return self._pool.submit(self._admitted, cursor, work).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _admitted(self, cursor: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
        with self._lock:
            wait = self._next_at - self._clock()
        if wait > 0:
            self._sleep(wait)
        with self._lock:
            if self._running == 0:
                self._former = _hold_threads(cursor, self._threads)
            self._running += 1
        started = self._clock()
        try:
            return work()
        finally:
            ended = self._clock()
            with self._lock:
                self._next_at = max(self._next_at, ended + pause_after(ended - started, self._duty))
                self._running -= 1
                if self._running == 0 and self._former is not None:
                    with contextlib.suppress(duckdb.Error):
                        set_threads(cursor, self._former)
                    self._former = None

    def _lower(self) -> None:
        # Raising one's niceness needs no privilege; where it fails the query just runs as is.
        if self._nice > 0:
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)


def _hold_threads(cursor: duckdb.DuckDBPyConnection, threads: int) -> int | None:
    """Set the database's threads to `threads` (0: leave them); the former value if changed."""
    if threads <= 0:
        return None
    former = set_threads(cursor, threads)
    return former if former != threads else None
