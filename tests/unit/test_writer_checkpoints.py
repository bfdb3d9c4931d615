"""When the writer checkpoints: after an idle moment, and after the job that grew the WAL past its
bound, even with no idle moment (a catch-up). A real DuckDB file and its real WAL."""

from __future__ import annotations

from pathlib import Path

import duckdb

from indexer.pipeline.writer import IndexWriter
from tests.helpers import wait_until


def _grow(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS filler (n BIGINT, s VARCHAR)")
    conn.execute("INSERT INTO filler SELECT i, repeat('x', 100) FROM range(20000) t(i)")


def _wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_wal_past_its_bound_is_checkpointed_after_the_job_that_grew_it(tmp_path: Path) -> None:
    db = tmp_path / "index.duckdb"
    writer = IndexWriter.open(db, idle_checkpoint_s=3600, wal_checkpoint_bytes=256 * 1024)
    try:
        writer.run(_grow)
        # The checkpoint follows the job on the writer's thread: the next job runs after it.
        writer.run(lambda conn: None, writes=False)
        assert _wal_bytes(db) < 256 * 1024
        assert writer.run(lambda c: c.execute("SELECT count(*) FROM filler").fetchone()) == (20000,)
    finally:
        writer.close()


def test_below_its_bound_the_wal_waits_for_an_idle_moment(tmp_path: Path) -> None:
    db = tmp_path / "index.duckdb"
    clock = [0.0]  # the writer's idle time is this clock's: no race with the real one
    writer = IndexWriter.open(db, idle_checkpoint_s=3600, monotonic=lambda: clock[0])
    try:
        writer.run(_grow)
        writer.run(lambda conn: None, writes=False)
        grown = _wal_bytes(db)
        assert grown > 256 * 1024  # no checkpoint yet: 20,000 rows are in the WAL
        clock[0] += 3600
        writer.run(lambda conn: None, writes=False)  # wakes the writer: now it is idle
        assert wait_until(lambda: _wal_bytes(db) < grown, timeout_s=10)  # the idle one
    finally:
        writer.close()
