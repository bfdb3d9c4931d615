"""v1 and v2 write identical rows for the same input, so switching between them needs no re-index.

Each input is indexed by v1 into one DuckDB file and by v2 into another; every data table and
the file_index statuses and hashes must match row for row (indexer_version and times aside).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from indexer.kinds import DATA_TABLES, TABLES, classify
from indexer.legacy.v1 import HybridIndexer, V1Config
from indexer.pipeline.read_pool import PoolConfig
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.simulate import OpenCodeSimulator
from indexer.store.database import open_database
from tests.conftest import CORPUS, corpus_roots

# Freshly written faulty files must be 'error' at once for both, not 'pending' for a while.
PROCESSOR = ProcessorConfig(settle_s=0)
FILE_INDEX = (
    "SELECT file_path, file_type, status, content_hash, error_message, mtime_ns, size, "
    "record_id, attempts FROM file_index ORDER BY file_path"
)

Dump = dict[str, list[tuple[object, ...]]]


def dump(db: Path) -> Dump:
    conn = open_database(db, read_only=True)
    try:
        out = {
            t.name: conn.execute(
                f"SELECT * FROM {t.name} ORDER BY {', '.join(t.primary_key)}"
            ).fetchall()
            for t in DATA_TABLES
        }
        out["file_index"] = conn.execute(FILE_INDEX).fetchall()
        return out
    finally:
        conn.close()


def index_v1(root: Path, db: Path) -> Dump:
    ix = HybridIndexer(root, db, config=V1Config(watch=False, processor=PROCESSOR))
    ix.start()
    assert ix.wait_idle(30)
    ix.stop()
    return dump(db)


def index_v1_realtime(source: Path, root: Path, db: Path) -> Dump:
    """The per-file path alone: start on an empty root, copy the files in, submit each."""
    root.mkdir()
    ix = HybridIndexer(root, db, config=V1Config(watch=False, debounce_ms=0, processor=PROCESSOR))
    ix.start()
    shutil.copytree(source, root, dirs_exist_ok=True)
    keys = [classify(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file()]
    ix.submit([k for k in keys if k is not None])
    assert ix.wait_idle(60)
    assert ix.stats().realtime_files == len(keys)
    ix.stop()
    return dump(db)


def index_v2(root: Path, db: Path, pool: PoolConfig | None = None) -> Dump:
    config = V2Config(watch=False, processor=PROCESSOR, pool=pool or PoolConfig())
    ix = UnifiedIndexerV2(root, db, config=config)
    ix.start()
    assert ix.wait_idle(30, settle_s=0.2)
    ix.stop()
    return dump(db)


def assert_same(v1: Dump, v2: Dump) -> None:
    for name in v2:
        assert v1[name] == v2[name], f"{name} differs between v1 and v2"


def test_v1_and_v2_write_identical_rows_for_the_simulator_with_faults(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    report = OpenCodeSimulator(root, seed=11, faults=True).write_sessions(30)
    assert report.faults, "seed 11 should write a few faulty files"
    v1 = index_v1(root, tmp_path / "v1.duckdb")
    v2 = index_v2(root, tmp_path / "v2.duckdb")
    assert_same(v1, v2)
    assert len(v2["parts"]) > 1000 and len(v2["todos"]) > 0 and len(v2["session_diffs"]) > 0
    statuses = {row[2] for row in v2["file_index"]}
    assert "error" in statuses and statuses <= {"indexed", "error"}  # faults classified alike


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the real corpus is not present")
@pytest.mark.parametrize("source", corpus_roots(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_v1_and_v2_write_identical_rows_for_real_opencode_files(
    source: Path, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    shutil.copytree(source, root)  # never write into the shared corpus
    v2 = index_v2(root, tmp_path / "v2.duckdb")
    assert_same(index_v1(root, tmp_path / "v1.duckdb"), v2)
    realtime = index_v1_realtime(source, tmp_path / "storage-rt", tmp_path / "v1rt.duckdb")
    assert_same(realtime, v2)
    assert any(v2[t.name] for t in TABLES.values())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the real corpus is not present")
def test_v2_reading_on_worker_processes_writes_v1s_rows_for_real_opencode_files(
    tmp_path: Path,
) -> None:
    """Every corpus tree in one root, every batch read by the workers (catch-up mode)."""
    root = tmp_path / "storage"
    for source in corpus_roots():
        shutil.copytree(source, root, dirs_exist_ok=True)
    pooled = index_v2(
        root, tmp_path / "pool.duckdb", PoolConfig(workers=2, min_files=1, files=True)
    )
    assert_same(index_v1(root, tmp_path / "v1.duckdb"), pooled)
    assert len(pooled["parts"]) > 50


def test_both_read_the_same_database_after_a_switch(tmp_path: Path) -> None:
    """v1 then v2 on one database: v2 finds nothing to redo."""
    root = tmp_path / "storage"
    OpenCodeSimulator(root, seed=4).write_sessions(3)
    db = tmp_path / "index.duckdb"
    index_v1(root, db)
    conn = duckdb.connect(str(db))
    try:
        before = conn.execute("SELECT count(*) FROM batch_log").fetchone()
    finally:
        conn.close()
    index_v2(root, db)
    conn = duckdb.connect(str(db))
    try:
        after = conn.execute("SELECT count(*) FROM batch_log").fetchone()
        scans = conn.execute("SELECT new_files, modified_files FROM reconcile_log").fetchall()
    finally:
        conn.close()
    assert before == after  # v2's startup reconcile found no file to re-read
    assert scans == [(0, 0)]
