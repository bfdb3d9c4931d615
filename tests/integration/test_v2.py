"""UnifiedIndexerV2 end to end: real files, real watchdog, real DuckDB files."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import orjson
import pytest

from indexer.pipeline.accumulator import AccumulatorConfig
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.simulate import OpenCodeSimulator
from indexer.store.database import open_database
from tests.helpers import (
    DroppingWatcher,
    census,
    drop_half_the_events,
    kill_observer,
    wait_until,
    write,
)


def count(db: Path | duckdb.DuckDBPyConnection, sql: str) -> int:
    conn = db if isinstance(db, duckdb.DuckDBPyConnection) else open_database(db, read_only=True)
    try:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0
    finally:
        if conn is not db:
            conn.close()


def test_a_created_file_is_detected_batched_and_indexed(storage_root: Path, db_path: Path) -> None:
    v2 = UnifiedIndexerV2(storage_root, db_path)
    v2.start()
    try:
        write(
            storage_root,
            "session/global/ses_1.json",
            orjson.dumps({"id": "ses_1", "title": "hello"}),
        )
        cursor = v2.cursor()
        assert wait_until(
            lambda: count(cursor, "SELECT count(*) FROM sessions WHERE title = 'hello'") == 1, 10
        )
        # The row is visible at commit; the batch is counted just after, on the writer thread.
        assert wait_until(lambda: v2.stats().batches >= 1, 5)
        stats = v2.stats()
        assert stats.batches == 1
        assert stats.watcher is not None and stats.watcher.events >= 1
        cursor.close()
    finally:
        v2.stop()


def test_stop_processes_pending_files(storage_root: Path, db_path: Path) -> None:
    config = V2Config(accumulator=AccumulatorConfig(window_ms=60_000, max_files=1000, idle_ms=None))
    v2 = UnifiedIndexerV2(storage_root, db_path, config=config)
    v2.start()
    for i in range(30):
        write(storage_root, f"session/global/ses_{i}.json", orjson.dumps({"id": f"ses_{i}"}))
    assert wait_until(lambda: len(v2.pending_files(100)) == 30, 10)
    v2.stop()
    assert count(db_path, "SELECT count(*) FROM sessions") == 30
    assert count(db_path, "SELECT count(*) FROM file_index WHERE status = 'indexed'") == 30


def test_ten_thousand_files_with_rewrites_end_exactly_once_and_current(
    storage_root: Path, db_path: Path
) -> None:
    v2 = UnifiedIndexerV2(
        storage_root, db_path, config=V2Config(processor=ProcessorConfig(settle_s=1.0))
    )
    v2.start()
    sim = OpenCodeSimulator(storage_root, seed=21)
    writer = threading.Thread(target=sim.write_sessions, args=(100,))
    writer.start()
    writer.join()
    files = sim.expected_files()
    assert len(files) >= 10_000
    # How fast it catches up is the benchmark's figure (`ocindex bench`); here only that it does.
    assert v2.wait_idle(timeout_s=60, settle_s=0.3)
    v2.stop()
    conn = open_database(db_path, read_only=True)
    try:
        assert count(conn, "SELECT count(*) FROM file_index") == len(files)
        assert count(conn, "SELECT count(*) FROM file_index WHERE status = 'indexed'") == len(files)
        assert census(conn, storage_root) == []
    finally:
        conn.close()


def test_with_half_the_events_dropped_the_reconciler_finds_every_file(
    storage_root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_half_the_events(monkeypatch)
    config = V2Config(reconciler=ReconcilerConfig(interval_s=0.5))
    v2 = UnifiedIndexerV2(storage_root, db_path, config=config)
    v2.start()
    OpenCodeSimulator(storage_root, seed=5).write_sessions(10)
    assert v2.watcher is not None
    assert wait_until(
        lambda: (
            v2.watcher is not None
            and isinstance(v2.watcher, DroppingWatcher)
            and v2.watcher.dropped > 0
        ),
        5,
    )
    assert wait_until(lambda: v2.is_idle(settle_s=1.0), 20)
    assert v2.reconciler is not None
    assert v2.reconciler.get_stats().files_found_missing > 100
    v2.stop()
    conn = open_database(db_path, read_only=True)
    try:
        assert census(conn, storage_root) == []
    finally:
        conn.close()


def test_a_file_written_halfway_then_completed_is_never_error(
    storage_root: Path, db_path: Path
) -> None:
    v2 = UnifiedIndexerV2(storage_root, db_path)
    v2.start()
    rel = "part/msg_1/prt_1.json"
    full = orjson.dumps(
        {"id": "prt_1", "type": "text", "text": "done " * 200}, option=orjson.OPT_INDENT_2
    )
    path = write(storage_root, rel, full[: len(full) // 3])
    cursor = v2.cursor()
    statuses: list[str] = []

    def status() -> str | None:
        row = cursor.execute("SELECT status FROM file_index WHERE file_path = ?", [rel]).fetchone()
        if row:
            statuses.append(row[0])
        return None if row is None else str(row[0])

    assert wait_until(lambda: status() == "pending", 10)
    path.write_bytes(full)
    assert wait_until(lambda: status() == "indexed", 10)
    cursor.close()
    v2.stop()
    assert "error" not in statuses
    assert count(db_path, "SELECT count(*) FROM parts WHERE text_chars = 1000") == 1


def test_dead_observer_is_restarted_and_triggers_a_reconcile(
    storage_root: Path, db_path: Path
) -> None:
    v2 = UnifiedIndexerV2(
        storage_root, db_path, config=V2Config(reconciler=ReconcilerConfig(interval_s=3600))
    )
    v2.start()
    try:
        assert v2.watcher is not None and v2.reconciler is not None
        reconciler = v2.reconciler
        scans = reconciler.get_stats().scans_completed
        kill_observer(v2.watcher)
        write(storage_root, "session/global/ses_9.json", orjson.dumps({"id": "ses_9"}))
        assert wait_until(
            lambda: v2.watcher is not None and v2.watcher.get_stats().restarts == 1, 10
        )
        assert wait_until(lambda: reconciler.get_stats().scans_completed > scans, 10)
        assert wait_until(lambda: v2.is_idle(0.1), 10)
        assert count(v2.cursor(), "SELECT count(*) FROM sessions") == 1
    finally:
        v2.stop()


@pytest.mark.parametrize("run", range(1))
def test_overflow_in_watchdog_log_triggers_a_reconcile(
    storage_root: Path, db_path: Path, run: int
) -> None:
    import logging

    v2 = UnifiedIndexerV2(
        storage_root, db_path, config=V2Config(reconciler=ReconcilerConfig(interval_s=3600))
    )
    v2.start()
    try:
        assert v2.reconciler is not None and v2.watcher is not None
        reconciler = v2.reconciler
        scans = reconciler.get_stats().scans_completed
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        assert v2.watcher.get_stats().overflows == 1
        assert wait_until(lambda: reconciler.get_stats().scans_completed > scans, 10)
    finally:
        v2.stop()
