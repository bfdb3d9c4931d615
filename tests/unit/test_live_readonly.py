"""What a live query may run: DuckDB's parser decides, a READ ONLY transaction backs it, and a
timeout or a row limit ends it; on a real DuckDB file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from indexer.live.readonly import (
    QueryError,
    Refused,
    TimedOut,
    check_read_only,
    run_read,
)
from indexer.store.database import open_database

WRITES = [
    "INSERT INTO items VALUES ('x', 'new')",
    "UPDATE items SET status = 'error'",
    "DELETE FROM items",
    "CREATE TABLE t (a INT)",
    "CREATE VIEW v AS SELECT 1",
    "CREATE OR REPLACE MACRO m() AS 1",
    "DROP TABLE items",
    "ALTER TABLE items ADD COLUMN x INT",
    "ATTACH ':memory:' AS other",
    "DETACH other",
    "COPY items TO '/tmp/ocindex-copy.csv'",
    "COPY (SELECT 1) TO '/tmp/ocindex-copy.csv'",
    "COPY items FROM '/tmp/ocindex-copy.csv'",
    "EXPORT DATABASE '/tmp/ocindex-export'",
    "IMPORT DATABASE '/tmp/ocindex-export'",
    "PRAGMA enable_profiling",
    "PRAGMA table_info('items')",
    "SET threads = 1",
    "RESET threads",
    "USE memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "COMMIT",
    "CALL enable_logging()",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "MERGE INTO items USING items AS s ON true WHEN MATCHED THEN DELETE",
    "CREATE SECRET (TYPE s3)",
    "SELECT 1; DELETE FROM items",
]
READS = [
    "SELECT count(*) FROM items",
    "WITH f AS (SELECT * FROM items) SELECT count(*) FROM f",
    "FROM items",
    "TABLE items",
    "VALUES (1, 'a')",
    "DESCRIBE items",
    "SHOW TABLES",
    "SUMMARIZE items",
    "EXPLAIN SELECT * FROM items",
    "EXPLAIN ANALYZE SELECT count(*) FROM items",
    "SELECT * FROM duckdb_tables()",
]


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = open_database(tmp_path / "index.duckdb")
    conn.execute("CREATE TABLE items (id VARCHAR PRIMARY KEY, status VARCHAR)")
    conn.execute("INSERT INTO items SELECT 'f' || i, 'indexed' FROM range(5) t(i)")
    yield conn
    conn.close()


def fingerprint(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    """The tables, their columns, the rows and a setting: what a write would change."""
    return [
        *conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns ORDER BY ALL"
        ).fetchall(),
        *conn.execute("SELECT * FROM items ORDER BY id").fetchall(),
        *conn.execute("SELECT current_setting('threads')").fetchall(),
    ]


@pytest.mark.parametrize("sql", WRITES)
def test_run_read_refuses_a_statement_that_is_not_a_read_and_changes_nothing(
    conn: duckdb.DuckDBPyConnection, sql: str
) -> None:
    before = fingerprint(conn)
    cursor = conn.cursor()
    with pytest.raises(Refused) as caught:
        run_read(cursor, sql)
    cursor.close()
    assert str(caught.value).startswith("refused: ")
    assert "\n" not in str(caught.value)
    assert fingerprint(conn) == before


@pytest.mark.parametrize("sql", READS)
def test_run_read_accepts_every_documented_read(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    cursor = conn.cursor()
    result = run_read(cursor, sql)
    cursor.close()
    assert result.table.num_rows >= 1
    assert not result.truncated


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE DELETE FROM items",
        "EXPLAIN ANALYZE INSERT INTO items VALUES ('x', 'new')",
        "SELECT nextval('batch_seq')",
    ],
)
def test_a_write_the_parser_calls_a_read_is_refused_by_the_read_only_transaction(
    conn: duckdb.DuckDBPyConnection, sql: str
) -> None:
    conn.execute("CREATE SEQUENCE IF NOT EXISTS batch_seq")
    before = fingerprint(conn)
    cursor = conn.cursor()
    with pytest.raises(Refused, match="refused: the statement writes"):
        run_read(cursor, sql)
    cursor.close()
    assert fingerprint(conn) == before


def test_check_read_only_names_the_refused_statement_type() -> None:
    with pytest.raises(Refused, match="refused: INSERT statements"):
        check_read_only("insert into t values (1)")
    with pytest.raises(Refused, match="one statement per query, got 2"):
        check_read_only("select 1; select 2")


@pytest.mark.parametrize("sql", ["", "  ;  ", "selec 1"])
def test_run_read_fails_in_one_line_on_no_statement_or_a_syntax_error(
    conn: duckdb.DuckDBPyConnection, sql: str
) -> None:
    with pytest.raises(QueryError) as caught:
        run_read(conn.cursor(), sql)
    assert not isinstance(caught.value, Refused)
    assert "\n" not in str(caught.value)


def test_run_read_cuts_the_result_at_the_limit_and_says_so(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    cut = run_read(conn.cursor(), "SELECT * FROM range(20000)", limit=10_001)
    assert cut.table.num_rows == 10_001 and cut.truncated
    whole = run_read(conn.cursor(), "SELECT * FROM range(20000)", limit=20_000)
    assert whole.table.num_rows == 20_000 and not whole.truncated


def test_run_read_interrupts_a_query_past_its_timeout_and_the_cursor_reads_again(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    cursor = conn.cursor()
    with pytest.raises(TimedOut, match=r"query stopped after 0\.3s \(--timeout\)"):
        run_read(cursor, "SELECT count(*) FROM range(1000000000000)", timeout_s=0.3)
    assert run_read(cursor, "SELECT count(*) FROM items").table.to_pylist() == [{"count_star()": 5}]


def test_run_read_stops_a_query_whose_client_left(conn: duckdb.DuckDBPyConnection) -> None:
    left = threading.Event()
    threading.Timer(0.2, left.set).start()
    with pytest.raises(QueryError, match="its client left"):
        run_read(
            conn.cursor(),
            "SELECT count(*) FROM range(1000000000000)",
            timeout_s=600,
            cancelled=left.is_set,
        )


def test_a_query_does_not_hold_back_a_commit_on_the_writers_connection(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    """A read transaction open on a cursor while the connection commits and checkpoints."""
    cursor = conn.cursor()
    running = threading.Event()
    result: list[object] = []

    def slow() -> None:
        running.set()
        try:
            run_read(cursor, "SELECT count(*) FROM range(1000000000000)", timeout_s=5)
        except TimedOut as exc:
            result.append(exc)

    reader = threading.Thread(target=slow)
    reader.start()
    assert running.wait(5)
    conn.execute("INSERT INTO items VALUES ('during', 'new')")
    conn.execute("CHECKPOINT")
    assert reader.is_alive(), "the commit waited for the query"
    reader.join(30)
    assert len(result) == 1
    assert conn.execute("SELECT count(*) FROM items").fetchall() == [(6,)]
