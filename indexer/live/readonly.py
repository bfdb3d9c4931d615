"""Running one user query on a cursor of the index, read-only by construction: DuckDB's parser
decides what a statement is, and every query runs in a READ ONLY transaction that is rolled back.
Never runs a statement its parser calls anything but SELECT or EXPLAIN, and never commits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

READS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
"""The statement types accepted. DuckDB reports WITH, FROM-first queries, VALUES, TABLE,
DESCRIBE, SHOW and SUMMARIZE as SELECT; EXPLAIN [ANALYZE] as EXPLAIN (an EXPLAIN ANALYZE of a write
reaches the READ ONLY transaction, which refuses it)."""
DEFAULT_LIMIT = 100_000
DEFAULT_TIMEOUT_S = 30.0
BATCH_ROWS = 8_192
CANCEL_POLL_S = 0.1
"""How often a running query checks whether its client left."""


class QueryError(Exception):
    """A query could not run; the message is one line for the user."""

    kind = "failed"


class Refused(QueryError):
    """The query is not a single statement that only reads."""

    kind = "refused"


class TimedOut(QueryError):
    """The query ran past its timeout and was interrupted."""

    kind = "timeout"


ERRORS: dict[str, type[QueryError]] = {e.kind: e for e in (QueryError, Refused, TimedOut)}


@dataclass(frozen=True, slots=True)
class QueryResult:
    table: pa.Table
    truncated: bool
    """More rows than the limit: `table` holds the first `limit`."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def check_read_only(sql: str) -> str:
    """The one statement in `sql`, if DuckDB's parser says it only reads; else Refused."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    except ValueError as exc:  # a statement type the Python enum does not know
        raise Refused(f"refused: a statement DuckDB cannot classify ({first_line(exc)})") from None
    if not statements:
        raise QueryError("no statement to run")
    if len(statements) > 1:
        raise Refused(f"refused: one statement per query, got {len(statements)}")
    kind = statements[0].type
    if kind not in READS:
        raise Refused(
            f"refused: {kind.name} statements change the index or the session; "
            "only SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN are accepted"
        )
    return sql


def run_read(
    cursor: duckdb.DuckDBPyConnection,
    sql: str,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cancelled: Callable[[], bool] = lambda: False,
) -> QueryResult:
    """Run a read-only query on `cursor` (which the caller owns and closes): at most `limit`
    rows, interrupted after `timeout_s` or once `cancelled()` (the client left), inside a
    READ ONLY transaction that is rolled back."""
    check_read_only(sql)
    done = threading.Event()
    deadline = time.monotonic() + timeout_s
    watch = threading.Thread(
        target=_interrupt_when,
        args=(cursor, done, deadline, cancelled),
        name="ocindex-query-timeout",
        daemon=True,
    )
    batches: list[pa.RecordBatch] = []
    rows = 0
    truncated = False
    cursor.execute("BEGIN TRANSACTION READ ONLY")
    watch.start()
    try:
        reader = cursor.sql(sql).to_arrow_reader(BATCH_ROWS)
        schema = reader.schema
        try:
            for batch in reader:
                if rows + batch.num_rows > limit:
                    batches.append(batch.slice(0, limit - rows))
                    truncated = True
                    break
                batches.append(batch)
                rows += batch.num_rows
        finally:
            reader.close()
    except duckdb.InterruptException:
        if time.monotonic() < deadline:
            raise QueryError("query stopped: its client left") from None
        raise TimedOut(f"query stopped after {timeout_s:g}s (--timeout)") from None
    except duckdb.TransactionException as exc:
        raise Refused(f"refused: the statement writes ({first_line(exc)})") from None
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    finally:
        done.set()
        watch.join()
        # An interrupted or failed transaction may have ended already.
        with contextlib.suppress(duckdb.Error):
            cursor.execute("ROLLBACK")
    return QueryResult(pa.Table.from_batches(batches, schema), truncated)


def _interrupt_when(
    cursor: duckdb.DuckDBPyConnection,
    done: threading.Event,
    deadline: float,
    cancelled: Callable[[], bool],
) -> None:
    """Interrupt the cursor's query at the deadline or once cancelled, unless it is done."""
    while not done.wait(min(CANCEL_POLL_S, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline or cancelled():
            cursor.interrupt()
            return
