"""A session of reads on a database's index, for a command that runs many: one connection to the
live process that holds it, else one read-only open of the file; and one read on the index of
the engine a dashboard shows, in this process or attached. Never writes the index: every
read goes through indexer.live.readonly (READ ONLY, rolled back), here or in the live process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import duckdb
import pyarrow as pa

from indexer.live.client import LiveClient, reach
from indexer.live.readonly import (
    DEFAULT_LIMIT,
    DEFAULT_TIMEOUT_S,
    QueryError,
    QueryResult,
    run_read,
)

MAX_ROWS = 100_000_000
"""The live endpoint's largest row limit; a read that passes it is an error, never cut short."""


class Reader(Protocol):
    """Read-only SQL on the index, whole results."""

    live_pid: int | None
    """The ocindex process that answers, or None when the file is read directly."""

    def read(self, sql: str) -> pa.Table: ...


class _LiveReader:
    def __init__(self, client: LiveClient, timeout_s: float) -> None:
        self.live_pid: int | None = client.pid
        self._client = client
        self._timeout_s = timeout_s

    def read(self, sql: str) -> pa.Table:
        return _whole(self._client.query(sql, MAX_ROWS, self._timeout_s))


class _FileReader:
    def __init__(self, cursor: duckdb.DuckDBPyConnection, timeout_s: float) -> None:
        self.live_pid: int | None = None
        self._cursor = cursor
        self._timeout_s = timeout_s

    def read(self, sql: str) -> pa.Table:
        return _whole(run_read(self._cursor, sql, MAX_ROWS, self._timeout_s))


def _whole(result: QueryResult) -> pa.Table:
    if result.truncated:
        raise QueryError(f"a read of the index passed {MAX_ROWS} rows")
    return result.table


@contextlib.contextmanager
def reading(db: Path, timeout_s: float) -> Iterator[Reader]:
    """The index at `db`, found as `ocindex query` finds it: through the live process that holds
    it, else the file opened read-only (waiting for a brief holder as open_database does).
    Raises QueryError when there is no database."""
    from indexer.store.database import open_database

    client = reach(db)
    if client is not None:
        try:
            yield _LiveReader(client, timeout_s)
        finally:
            client.close()
        return
    if not db.exists():
        raise QueryError(f"no database at {db}; run `ocindex index --db {db}` first")
    conn = open_database(db, read_only=True)
    try:
        cursor = conn.cursor()
        try:
            yield _FileReader(cursor, timeout_s)
        finally:
            cursor.close()
    finally:
        conn.close()


@runtime_checkable
class Queries(Protocol):
    """An engine in another process, read through its live endpoint (RemoteService)."""

    def query(self, sql: str, limit: int = ..., timeout_s: float = ...) -> QueryResult: ...


class HasCursor(Protocol):
    """An engine in this process (IndexerService)."""

    def cursor(self) -> duckdb.DuckDBPyConnection: ...


def query_engine(
    engine: Queries | HasCursor,
    sql: str,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """A read-only query on the index of the engine a dashboard shows, whichever process runs
    it: through the live endpoint when attached, else on a cursor of the engine's own."""
    if isinstance(engine, Queries):
        return engine.query(sql, limit, timeout_s)
    cursor = engine.cursor()
    try:
        return run_read(cursor, sql, limit, timeout_s)
    finally:
        cursor.close()
