"""Admission of live queries: on low-priority threads holding DuckDB to one thread, each
followed by a pause proportional to its work and bounded; on a real DuckDB file.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from indexer.live.gate import MAX_PAUSE_S, QueryGate, pause_after
from indexer.store.database import open_database


class FakeClock:
    """A monotonic clock that moves only when a query works or the gate sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = open_database(tmp_path / "index.duckdb")
    yield connection
    connection.close()


def threads_of(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.execute("SELECT current_setting('threads')").fetchone()
    assert row is not None
    return int(row[0])


def test_pause_after_is_proportional_to_the_work_and_bounded() -> None:
    assert pause_after(0.4, duty=0.5) == pytest.approx(0.4)
    assert pause_after(0.4, duty=0.25) == pytest.approx(1.2)
    assert pause_after(60.0, duty=0.5) == MAX_PAUSE_S
    assert pause_after(3.0, duty=1.0) == 0.0


def test_gate_pauses_the_next_query_after_a_long_one(conn: duckdb.DuckDBPyConnection) -> None:
    clock = FakeClock()
    gate = QueryGate(duty=0.5, clock=clock, sleep=clock.sleep)
    cursor = conn.cursor()

    def work(seconds: float) -> str:
        clock.now += seconds
        return "done"

    try:
        assert gate.run(cursor, lambda: work(0.8)) == "done"
        assert clock.slept == []
        assert gate.run(cursor, lambda: work(0.1)) == "done"
        assert clock.slept == [pytest.approx(0.8)]
        clock.now += 5.0  # a client that comes back later is admitted at once
        gate.run(cursor, lambda: work(0.1))
        assert clock.slept == [pytest.approx(0.8)]
    finally:
        gate.close()
        cursor.close()


def test_gate_holds_duckdb_to_one_thread_only_while_a_query_runs(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    gate = QueryGate()
    cursor = conn.cursor()
    before = threads_of(conn)
    try:
        assert before > 1
        assert gate.run(cursor, lambda: threads_of(conn)) == 1
        assert threads_of(conn) == before
    finally:
        gate.close()
        cursor.close()


def test_gate_restores_the_threads_when_a_query_fails(conn: duckdb.DuckDBPyConnection) -> None:
    gate = QueryGate()
    cursor = conn.cursor()
    before = threads_of(conn)

    def failing() -> None:
        cursor.execute("SELECT * FROM no_such_table")

    try:
        with pytest.raises(duckdb.CatalogException):
            gate.run(cursor, failing)
        assert threads_of(conn) == before
    finally:
        gate.close()
        cursor.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_gate_runs_queries_on_threads_of_lowest_priority(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    gate = QueryGate()
    cursor = conn.cursor()

    def where() -> tuple[int, int]:
        native = threading.get_native_id()
        return native, os.getpriority(os.PRIO_PROCESS, native)

    try:
        for native, nice in (gate.run(cursor, where), gate.run(cursor, where)):
            assert native != threading.get_native_id()
            assert nice == 19
    finally:
        gate.close()
        cursor.close()


def test_gate_lets_a_short_query_run_beside_a_long_one_and_restores_threads_after_both(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    gate = QueryGate()
    long_cursor, short_cursor = conn.cursor(), conn.cursor()
    before = threads_of(conn)
    started, release = threading.Event(), threading.Event()

    def long_query() -> int:
        started.set()
        assert release.wait(30)
        return threads_of(long_cursor)

    results: list[int] = []
    waiter = threading.Thread(target=lambda: results.append(gate.run(long_cursor, long_query)))
    try:
        waiter.start()
        assert started.wait(30)
        assert gate.run(short_cursor, lambda: threads_of(short_cursor)) == 1
        assert threads_of(conn) == 1, "the long query still runs: DuckDB stays on one thread"
        release.set()
        waiter.join(30)
        assert results == [1]
        assert threads_of(conn) == before
    finally:
        release.set()
        waiter.join(30)
        gate.close()
        long_cursor.close()
        short_cursor.close()
