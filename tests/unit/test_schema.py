from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from indexer.kinds import TABLES
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
