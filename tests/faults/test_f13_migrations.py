"""F13: migrations run twice, and a kill -9 at each point of a migration run.

Migrations are idempotent (a second run changes nothing, the ADD COLUMN defaults never clobber
existing values) and each step commits with its version record: a kill leaves either the old
schema or the new one, never a mix, and the next open + migrate finishes the job with every
row intact. The kill right before the closing CHECKPOINT leaves the DDL in the WAL, the part of
DuckDB's recovery most often reported broken: the reopen must replay it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import duckdb
import pytest

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from indexer.simulate import OpenCodeSimulator
from indexer.store.database import open_database
from indexer.store.schema import SCHEMA_VERSION, migrate, schema_version
from tests.faults.support import census_of, driver, reading, running_v2, settle, spawned, write_now
from tests.helpers import census

CONFIG = V2Config(
    processor=ProcessorConfig(settle_s=0.2), reconciler=ReconcilerConfig(interval_s=3600)
)
LEGACY_COLUMNS = "file_path, file_type, mtime, size, record_id, error_message"


def everything(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    tables = [
        r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    ]
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def legacy_database(db: Path, root: Path) -> list[tuple[object, ...]]:
    """A v1-era database (schema 1: file_index without status) describing the files on disk."""
    conn = duckdb.connect(str(db))
    conn.execute(
        """CREATE TABLE file_index (
            file_path VARCHAR PRIMARY KEY, file_type VARCHAR NOT NULL, mtime DOUBLE NOT NULL,
            size INTEGER NOT NULL, record_id VARCHAR,
            indexed_at TIMESTAMP DEFAULT current_timestamp, error_message VARCHAR)"""
    )
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).as_posix()
        st = path.stat()
        conn.execute(
            f"INSERT INTO file_index ({LEGACY_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
            [rel, rel.split("/")[0], st.st_mtime, st.st_size, path.stem],
        )
    rows = conn.execute(f"SELECT {LEGACY_COLUMNS} FROM file_index ORDER BY 1").fetchall()
    conn.close()
    return rows


def test_migrating_twice_changes_nothing_not_even_statuses(root: Path, db: Path) -> None:
    OpenCodeSimulator(root, seed=8, faults=True).write_sessions(3)
    write_now(root / "session/global/ses_bad.json", b'{"id": "ses_bad", ')  # an 'error' row
    with running_v2(root, db, CONFIG) as v2:
        settle(v2)
    with reading(db) as conn:
        before = everything(conn)
        assert census(conn, root) == []
    assert any(r[7] == "error" for r in before["file_index"])
    for _ in range(2):
        conn = open_database(db)
        try:
            assert migrate(conn) == SCHEMA_VERSION
            assert schema_version(conn) == SCHEMA_VERSION
            assert everything(conn) == before
        finally:
            conn.close()
    assert census_of(db, root) == []


KILL_POINTS = [
    # inside migration v's transaction: v rolled back, v-1 is what survives
    *((f"meta:{v}", v - 1) for v in range(2, SCHEMA_VERSION + 1)),
    ("checkpoint", SCHEMA_VERSION),  # all committed, the DDL only in the WAL
    ("after", SCHEMA_VERSION),  # right after migrate() returned
]


@pytest.mark.parametrize(("kill_at", "survives_as"), KILL_POINTS)
def test_kill_9_during_or_right_after_a_migration_then_reopen(
    root: Path, db: Path, kill_at: str, survives_as: int
) -> None:
    OpenCodeSimulator(root, seed=9).write_sessions(2)
    legacy = legacy_database(db, root)
    with spawned(driver({"mode": "migrate", "db": db, "kill_at": kill_at})) as child:
        assert child.wait(60) == -signal.SIGKILL, child.log()
    conn = open_database(db)
    try:
        assert schema_version(conn) == survives_as
        kept = conn.execute(f"SELECT {LEGACY_COLUMNS} FROM file_index ORDER BY 1").fetchall()
        assert kept == legacy
        assert migrate(conn) == SCHEMA_VERSION
        assert migrate(conn) == SCHEMA_VERSION
        rows = conn.execute(
            f"SELECT {LEGACY_COLUMNS}, status FROM file_index ORDER BY 1"
        ).fetchall()
        assert rows == [(*r, "indexed") for r in legacy]
    finally:
        conn.close()
    with running_v2(root, db, CONFIG) as v2:  # v2 takes the migrated database over
        settle(v2)
    assert census_of(db, root) == []
