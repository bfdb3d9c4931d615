from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from indexer.kinds import TABLES
from indexer.store import schema as schema_module
from indexer.store.database import open_database
from indexer.store.schema import SCHEMA_VERSION, migrate, schema_version


def _legacy_database(path: Path) -> None:
    """A database as the v1-era tracker left it: file_index without status, with rows."""
    conn = duckdb.connect(str(path))
    conn.execute(
        """CREATE TABLE file_index (
            file_path VARCHAR PRIMARY KEY, file_type VARCHAR NOT NULL, mtime DOUBLE NOT NULL,
            size INTEGER NOT NULL, record_id VARCHAR,
            indexed_at TIMESTAMP DEFAULT current_timestamp, error_message VARCHAR)"""
    )
    conn.execute("CREATE INDEX idx_file_index_type ON file_index(file_type)")
    conn.executemany(
        "INSERT INTO file_index (file_path, file_type, mtime, size, record_id) "
        "VALUES (?, ?, ?, ?, ?)",
        [(f"part/msg_1/prt_{i}.json", "part", 1.5 + i, 100 + i, f"prt_{i}") for i in range(50)],
    )
    conn.close()


def test_migration_adds_status_keeps_rows_and_is_idempotent(db_path: Path) -> None:
    _legacy_database(db_path)
    conn = open_database(db_path)
    assert schema_version(conn) == 1
    assert migrate(conn) == SCHEMA_VERSION
    rows = conn.execute("SELECT file_path, status, size FROM file_index ORDER BY size").fetchall()
    assert len(rows) == 50
    assert {r[1] for r in rows} == {"indexed"}
    assert rows[0] == ("part/msg_1/prt_0.json", "indexed", 100)
    indexes = {r[0] for r in conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    assert "idx_file_index_status" in indexes
    before = conn.execute("SELECT * FROM file_index ORDER BY file_path").fetchall()
    columns = conn.execute("SELECT count(*) FROM information_schema.columns").fetchone()
    conn.close()

    conn = open_database(db_path)
    assert migrate(conn) == SCHEMA_VERSION  # second run changes nothing
    assert conn.execute("SELECT * FROM file_index ORDER BY file_path").fetchall() == before
    assert conn.execute("SELECT count(*) FROM information_schema.columns").fetchone() == columns
    conn.close()


def schema_of(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """Every column (in its table's order), index, constraint and view of the database."""
    return {
        "columns": conn.execute(
            "SELECT table_name, column_name, data_type, column_default, is_nullable, "
            "ordinal_position FROM information_schema.columns ORDER BY ALL"
        ).fetchall(),
        "indexes": conn.execute("SELECT sql FROM duckdb_indexes() ORDER BY ALL").fetchall(),
        "constraints": conn.execute(
            "SELECT table_name, constraint_type, constraint_column_names "
            "FROM duckdb_constraints() ORDER BY ALL"
        ).fetchall(),
        "views": conn.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL"
        ).fetchall(),
    }


def test_a_new_database_takes_every_migration_in_one_transaction_to_the_same_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real = schema_module.transaction

    def counted(conn: duckdb.DuckDBPyConnection) -> Any:
        opened.append("transaction")
        return real(conn)

    monkeypatch.setattr(schema_module, "transaction", counted)
    new = open_database(tmp_path / "new.duckdb")
    assert migrate(new) == SCHEMA_VERSION
    assert len(opened) == 1
    step_by_step = tmp_path / "legacy.duckdb"
    _legacy_database(step_by_step)
    old = open_database(step_by_step)
    opened.clear()
    assert migrate(old) == SCHEMA_VERSION
    assert len(opened) == SCHEMA_VERSION - 1  # from version 1, one step at a time
    # The legacy database's own extra index and rows aside, the two schemas are one.
    old.execute("DROP INDEX idx_file_index_type")
    assert schema_of(new) == schema_of(old)


def test_new_database_has_every_table(index_db: duckdb.DuckDBPyConnection) -> None:
    tables = {
        r[0]
        for r in index_db.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    expected = {t.name for t in TABLES.values()} | {
        "file_index",
        "batch_log",
        "reconcile_log",
        "meta",
    }
    assert expected <= tables
    assert schema_version(index_db) == SCHEMA_VERSION


def test_second_process_gets_a_clear_refusal(db_path: Path) -> None:
    conn = open_database(db_path)
    migrate(conn)
    try:
        script = textwrap.dedent(
            f"""
            from indexer.store.database import DatabaseLocked, open_database
            try:
                open_database({str(db_path)!r})
            except DatabaseLocked as exc:
                print(exc)
            """
        )
        # No retry window: the holder stays until the end of the test (F16 tests the retry).
        env = {**os.environ, "OCINDEX_LOCK_WAIT_S": "0"}
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
        )
        assert out.returncode == 0, out.stderr
        line = out.stdout.strip()
        assert "in use by process" in line and "--db" in line and "\n" not in line
        # The CLI says the same in one line, exit code 1, no traceback.
        cli = subprocess.run(
            [sys.executable, "-m", "indexer", "status", "--db", str(db_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert cli.returncode == 1
        assert "Traceback" not in cli.stderr
        assert cli.stderr.startswith("ocindex: error: database") and cli.stderr.count("\n") == 1
    finally:
        conn.close()
