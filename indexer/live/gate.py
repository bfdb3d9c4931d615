"""Admission of live queries, so a client looping heavy queries cannot take the writer's CPU:
one query at a time, on one query thread of lowered priority, each followed by a bounded pause.
Never refuses a query and never touches the writer's connection: it only delays and orders.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import duckdb

log = logging.getLogger(__name__)

T = TypeVar("T")

DUTY = float(os.environ.get("OCINDEX_X_DUTY", "0.5"))
"""Share of the time live queries may run back to back: after a query of t seconds the next is
admitted (t / DUTY - t) seconds after it ended."""
MAX_PAUSE_S = 5.0
"""The longest pause, whatever the query took."""
QUERY_NICE = int(os.environ.get("OCINDEX_X_NICE", "19"))
QUERY_THREADS = int(os.environ.get("OCINDEX_X_THREADS", "1"))


def pause_after(work_s: float, duty: float = DUTY, longest_s: float = MAX_PAUSE_S) -> float:
    """How long the next query waits after one that ran `work_s` seconds."""
    if duty >= 1.0:
        return 0.0
    return min(longest_s, max(0.0, work_s) * (1.0 - duty) / duty)


def _lower_priority() -> None:
    """Give the query thread the lowest CPU priority (Linux: setpriority on the thread id)."""
    if QUERY_NICE <= 0:
        return
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), QUERY_NICE)


class QueryGate:
    """Runs live queries one at a time on its own thread; after each, the next waits
    pause_after(its duration). `clock` and `sleep` are injectable for tests."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next_at = 0.0
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ocindex-live-query", initializer=_lower_priority
        )

    def run(self, cursor: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
        """`work()` on the query thread once admitted; its result or its exception."""
        return self._pool.submit(self._admitted, cursor, work).result()

    def _admitted(self, cursor: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
        wait = self._next_at - self._clock()
        if wait > 0:
            self._sleep(wait)
        threads = _held_to(cursor, QUERY_THREADS)
        started = self._clock()
        try:
            return work()
        finally:
            ended = self._clock()
            self._next_at = ended + pause_after(ended - started)
            if threads is not None:
                with contextlib.suppress(duckdb.Error):
                    cursor.execute(f"SET threads = {threads}")

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _held_to(cursor: duckdb.DuckDBPyConnection, threads: int) -> int | None:
    """Set the database's threads to `threads` (0: leave them); the former value, or None."""
    if threads <= 0:
        return None
    row = cursor.execute("SELECT current_setting('threads')").fetchone()
    former = int(row[0]) if row else 0
    if former == threads:
        return None
    cursor.execute(f"SET threads = {threads}")
    return former
