"""Reading on worker processes: the same reads and rows as reading on the indexer's thread, a
worker that dies or fails costs speed and nothing else, and no worker outlives its indexer."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from indexer.kinds import DATA_TABLES, TABLES, FileKey
from indexer.outcome import FileRead, FileStatus
from indexer.pipeline.accumulator import Batch, PendingEntry, SealReason, Trigger
from indexer.pipeline.processor import BatchProcessor
from indexer.pipeline.read_pool import PoolConfig, ReadPool
from indexer.pipeline.reader import ProcessorConfig, read_file
from indexer.scan import scan_tree
from indexer.simulate import OpenCodeSimulator, SqliteSimulator
from indexer.sources.sqlite import SqliteSource
from indexer.store.database import open_database
from indexer.store.rows import write_parsed
from tests.helpers import children_running, exited, wait_until, write

CONFIG = ProcessorConfig(settle_s=0)


def batch_of(root: Path) -> Batch:
    keys = [s.key for s in scan_tree(root)]
    entries = tuple(PendingEntry(k, Trigger.STARTUP, 0.0, 0.0) for k in keys)
    return Batch(1, SealReason.MAX_FILES, entries, time.monotonic())


@pytest.fixture
def faulty_tree(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    report = OpenCodeSimulator(root, seed=11, faults=True).write_sessions(12)
    assert report.faults
    write(root, "session/global/ses_zero.json", b"")  # empty
    write(root, "part/msg_x/prt_big.json", b'{"id": "prt_big", "n": 99999999999999999999}')
    return root


@pytest.fixture
def pool(faulty_tree: Path):  # type: ignore[no-untyped-def]
    p = ReadPool(faulty_tree, CONFIG, PoolConfig(workers=2, min_files=1, files=True))
    yield p
    p.close()


def test_workers_read_what_the_thread_reads_and_build_the_same_rows(
    faulty_tree: Path, pool: ReadPool
) -> None:
    keys = [e.key for e in batch_of(faulty_tree).entries]
    pooled = pool.read(keys)
    assert pooled is not None and pool.batches == 1
    assert_same_reads([read_file(faulty_tree, k, CONFIG) for k in keys], pooled, keys)
    assert {r.status for r in pooled} >= {FileStatus.INDEXED, FileStatus.ERROR}
    assert any(r.message and "out_of_range" in r.message for r in pooled)


@pytest.mark.parametrize("generation", ["1.2", "2.x"])
def test_workers_read_a_stores_records_as_the_source_does(tmp_path: Path, generation: str) -> None:
    root = tmp_path / "storage"
    with SqliteSimulator(root, seed=3, generation=generation) as sim:
        sim.write_sessions(4)
    conn = sqlite3.connect(sim.db_path)
    table = "session_message" if generation == "2.x" else "message"
    bad = conn.execute(f"SELECT id FROM {table} LIMIT 1").fetchone()[0]
    conn.execute(f"UPDATE {table} SET data = '[1, 2]' WHERE id = ?", [bad])  # not an object
    conn.commit()
    conn.close()
    source = SqliteSource(sim.db_path, root)
    stamps = source.stamps()
    assert stamps is not None
    keys = [source.key_for(path) for path in stamps.column("path").to_pylist()]
    keys.append(source.key_for(f"{source.prefix}{table}/msg_gone"))  # no such row
    wanted = [k for k in keys if k is not None]
    assert len(wanted) == len(keys) > 50
    pool = ReadPool(root, CONFIG, PoolConfig(workers=2, min_files=1))
    try:
        pooled = pool.read(wanted, source.portable_reader())
    finally:
        pool.close()
    here = {r.key.rel_path: r for r in source.read(wanted)}
    assert pooled is not None
    assert_same_reads([here[k.rel_path] for k in wanted], pooled, wanted)
    statuses = {r.status for r in pooled}
    assert statuses == {FileStatus.INDEXED, FileStatus.ERROR, FileStatus.DELETED}


def assert_same_reads(here: list[FileRead], pooled: list[FileRead], keys: list[FileKey]) -> None:
    assert [r.key for r in pooled] == keys
    for mine, theirs in zip(here, pooled, strict=True):
        assert (mine.status, mine.stamp, mine.content_hash, mine.message, mine.retry_in_s) == (
            theirs.status,
            theirs.stamp,
            theirs.content_hash,
            theirs.message,
            theirs.retry_in_s,
        )
        assert (mine.parsed is None) == (theirs.parsed is None)
        if mine.parsed is not None and theirs.parsed is not None:
            assert theirs.parsed.table is mine.parsed.table
            assert theirs.parsed.owner_id == mine.parsed.owner_id
            assert theirs.parsed.rows == mine.parsed.rows


def test_rows_built_by_workers_and_here_land_in_file_order_the_later_file_winning(
    faulty_tree: Path, pool: ReadPool, index_db: duckdb.DuckDBPyConnection
) -> None:
    """A batch may mix both (a store's records are built here): the last file of a key wins."""
    write(faulty_tree, "session/global/ses_twin.json", b'{"id": "ses_twin", "title": "old"}')
    write(faulty_tree, "session/other/ses_twin.json", b'{"id": "ses_twin", "title": "new"}')
    keys = [e.key for e in batch_of(faulty_tree).entries]
    pooled = {r.key.rel_path: r for r in pool.read(keys) or ()}
    here = {k.rel_path: read_file(faulty_tree, k, CONFIG) for k in keys}
    old, new = "session/global/ses_twin.json", "session/other/ses_twin.json"
    for first, second in ((pooled[old], here[new]), (here[old], pooled[new])):
        parsed = [r.parsed for r in (first, second) if r.parsed is not None]
        index_db.execute("DELETE FROM sessions")
        write_parsed(index_db, parsed)
        assert index_db.execute("SELECT id, title FROM sessions").fetchall() == [
            ("ses_twin", "new")
        ]
    everything = [here[k.rel_path] if i % 3 else pooled[k.rel_path] for i, k in enumerate(keys)]
    write_parsed(index_db, [r.parsed for r in everything if r.parsed is not None])
    mixed = {
        t.name: index_db.execute(f"SELECT * FROM {t.name} ORDER BY ALL").fetchall()
        for t in DATA_TABLES
    }
    for t in DATA_TABLES:
        index_db.execute(f"DELETE FROM {t.name}")
    write_parsed(index_db, [here[k.rel_path].parsed for k in keys if here[k.rel_path].parsed])
    alone = {
        t.name: index_db.execute(f"SELECT * FROM {t.name} ORDER BY ALL").fetchall()
        for t in DATA_TABLES
    }
    assert mixed == alone and len(alone["parts"]) > 100


def test_a_worker_that_dies_costs_speed_and_nothing_else(
    faulty_tree: Path,
    pool: ReadPool,
    index_db: duckdb.DuckDBPyConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor = BatchProcessor(index_db, faulty_tree, config=CONFIG, pool=pool)
    batch = batch_of(faulty_tree)
    first = processor.read(batch)
    assert pool.batches == 1
    for worker in pool._workers:  # the process started and the one it forked
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
    started = pool._workers[0].process
    assert started is not None and started.wait() == -signal.SIGKILL
    with caplog.at_level(logging.WARNING):
        second = processor.read(batch)
    assert "parallel reading is off" in caplog.text and "exited (-9)" in caplog.text
    assert not pool.wants(len(batch)) and pool.batches == 1
    assert [r.content_hash for r in second.reads] == [r.content_hash for r in first.reads]
    assert [r.status for r in second.reads] == [r.status for r in first.reads]
    result = processor.commit(second)
    assert result.indexed == sum(r.status is FileStatus.INDEXED for r in first.reads) > 0


def test_one_process_is_started_and_forks_the_other_workers_and_none_outlives_the_pool(
    faulty_tree: Path, pool: ReadPool
) -> None:
    batch = batch_of(faulty_tree)
    assert pool.read([e.key for e in batch.entries]) is not None
    workers = pool._workers
    started = workers[0].process
    assert started is not None and all(w.process is None for w in workers[1:])
    pids = [w.pid for w in workers]
    assert pids[0] == started.pid and len(set(pids)) == len(pids) == 2
    # It forked with one thread (no jemalloc thread of pyarrow's), and still has one.
    assert os.listdir(f"/proc/{started.pid}/task") == [str(started.pid)]
    # The one started is this process's child; the one it forked is its child, not ours.
    assert children_running(os.getpid(), "indexer.pipeline.read_worker") == [started.pid]
    assert children_running(started.pid, "indexer.pipeline.read_worker") == pids[1:]
    pool.close()
    assert all(exited(pid) for pid in pids if pid is not None)
    assert children_running(os.getpid(), "indexer.pipeline.read_worker") == []


def test_a_task_a_worker_cannot_do_turns_the_pool_off_and_the_batch_is_read_here(
    faulty_tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A value no worker can use (here a size limit that is not a number) fails the task in
    the worker; the caller reads the batch itself, where the same value gives each file's
    own error."""
    broken = replace(CONFIG, max_file_bytes=None)  # type: ignore[arg-type]
    pool = ReadPool(faulty_tree, broken, PoolConfig(workers=1, min_files=1, files=True))
    try:
        with caplog.at_level(logging.WARNING):
            assert pool.read([e.key for e in batch_of(faulty_tree).entries]) is None
        assert "failed a task" in caplog.text and "TypeError" in caplog.text
        assert not pool.wants(10_000)
    finally:
        pool.close()


def test_small_batches_are_read_here_and_a_closed_pool_starts_nothing(faulty_tree: Path) -> None:
    pool = ReadPool(faulty_tree, CONFIG, PoolConfig(workers=2, min_files=500, files=True))
    assert not pool.wants(499) and pool.wants(500)
    pool.close()
    assert not pool.wants(500) and pool.read([]) is None and pool._workers == []


def test_by_default_the_workers_read_a_stores_records_and_not_json_files(faulty_tree: Path) -> None:
    pool = ReadPool(faulty_tree, CONFIG, PoolConfig(workers=2, min_files=500))
    assert pool.wants(500, records=True) and not pool.wants(500, records=False)
    assert not pool.wants(499, records=True)
    pool.close()


@pytest.mark.parametrize("store", [False, True], ids=["files", "files-and-a-store"])
def test_v2_with_workers_indexes_exactly_what_v2_without_them_does(
    faulty_tree: Path, tmp_path: Path, store: bool
) -> None:
    from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config

    db_path = tmp_path / "opencode.db"
    if store:  # OpenCode 2.x beside the tree: its records ride the same pool
        with SqliteSimulator(tmp_path / "unused", seed=4, db_path=db_path, generation="2.x") as s:
            s.write_sessions(3)
    dumps = []
    for workers in (0, 2):
        db = tmp_path / f"w{workers}.duckdb"
        pool = PoolConfig(workers, min_files=1, files=True)
        config = V2Config(watch=False, processor=CONFIG, pool=pool)
        sources = [SqliteSource(db_path, faulty_tree)] if store else []
        ix = UnifiedIndexerV2(faulty_tree, db, config=config, sources=sources)
        ix.start()
        assert ix.wait_idle(60, settle_s=0.2)
        used = ix._pool.keys if ix._pool is not None else 0
        ix.stop()
        conn = open_database(db, read_only=True)
        try:
            dumps.append(
                {
                    t.name: conn.execute(f"SELECT * FROM {t.name} ORDER BY ALL").fetchall()
                    for t in TABLES.values()
                }
                | {
                    "file_index": conn.execute(
                        "SELECT file_path, file_type, status, content_hash, error_message, "
                        "mtime_ns, size, record_id, attempts FROM file_index ORDER BY file_path"
                    ).fetchall()
                }
            )
        finally:
            conn.close()
        # With workers, every file and record read went to them (history is only stat'ed).
        read = [row for row in dumps[-1]["file_index"] if row[2] != "skipped"]
        assert used >= len(read) if workers else used == 0
    assert dumps[0] == dumps[1]
    from_store = [row for row in dumps[1]["file_index"] if row[0].startswith("sqlite:")]
    statuses = {row[2] for row in dumps[1]["file_index"]}
    if store:  # the store holds sessions: the JSON files are history
        assert len(from_store) > 50 and {"indexed", "skipped"} <= statuses
    else:
        assert not from_store and "error" in statuses


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_worker_outlives_an_index_killed_with_sigkill(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    for i in range(12_000):  # small parts, quick to write: the workers live for a second or more
        doc = b'{"id": "prt_%05d", "messageID": "msg_%03d", "type": "text", "text": "t"}'
        write(root, f"part/msg_{i // 100:03d}/prt_{i:05d}.json", doc % (i, i // 100))
    env = dict(os.environ, OCINDEX_READ_WORKERS="2", OCINDEX_READ_FILES_ON_WORKERS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "indexer",
            "index",
            "--indexer",
            "v2",
            "--storage",
            str(root),
            "--db",
            str(tmp_path / "index.duckdb"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers: list[int] = []

        def started() -> bool:
            # The process the pool started, and the one it forked.
            for first in children_running(proc.pid, "indexer.pipeline.read_worker"):
                workers[:] = [first, *children_running(first, "indexer.pipeline.read_worker")]
            return len(workers) == 2 or proc.poll() is not None

        assert wait_until(started, 60, step_s=0.005), "no worker seen before the end"
        assert len(workers) == 2, workers
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_until(lambda: all(exited(w) for w in workers), 20), workers
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
