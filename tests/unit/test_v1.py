"""HybridIndexer (v1): a DuckDB-read bulk phase at start, then a debounced one-file-at-a-time path."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from indexer.legacy.v1 import HybridIndexer, V1Config
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.records import content_hash
from indexer.simulate import OpenCodeSimulator
from indexer.store.database import open_database
from tests.helpers import census, key_of, wait_until, write

FAST = V1Config(watch=False, debounce_ms=20)


def part(n: int, text: str = "hello") -> tuple[str, bytes]:
    doc = {"id": f"prt_{n}", "messageID": "msg_1", "sessionID": "ses_1", "type": "text"}
    return f"part/msg_1/prt_{n}.json", orjson.dumps({**doc, "text": text})


def rows(conn: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        return cursor.execute(sql, list(params)).fetchall()
    finally:
        cursor.close()


def indexed_at(conn: duckdb.DuckDBPyConnection) -> dict[str, object]:
    return {str(p): t for p, t in rows(conn, "SELECT file_path, indexed_at FROM file_index")}


def status_of(ix: HybridIndexer, rel: str) -> str | None:
    found = rows(ix.cursor(), "SELECT status FROM file_index WHERE file_path = ?", rel)
    return str(found[0][0]) if found else None


@pytest.fixture
def tree(storage_root: Path) -> dict[str, bytes]:
    """A few simulated sessions, all written (and settled) before the indexer starts."""
    sim = OpenCodeSimulator(storage_root, seed=3)
    sim.write_sessions(3)
    return sim.expected_files()


@pytest.fixture
def v1(storage_root: Path, db_path: Path) -> Iterator[HybridIndexer]:
    ix = HybridIndexer(storage_root, db_path, config=FAST)
    yield ix
    if ix.running:
        ix.stop()


def test_the_bulk_phase_indexes_an_existing_tree_with_v1_rows_and_disk_hashes(
    storage_root: Path, tree: dict[str, bytes], v1: HybridIndexer
) -> None:
    v1.start()
    assert census(v1.cursor(), storage_root) == []
    tracked = rows(
        v1.cursor(), "SELECT file_path, status, indexer_version, content_hash FROM file_index"
    )
    assert len(tracked) == len(tree) > 100
    for path, status, version, digest in tracked:
        assert (status, version) == ("indexed", "v1")
        assert digest == content_hash(tree[str(path)])
    bulk = v1.stats().bulk
    assert bulk is not None
    assert bulk.read == len(tree) and bulk.fallback == 0 and bulk.to_realtime == 0
    # A bulk chunk is one batch_log row: many files, trigger startup.
    logged = rows(
        v1.cursor(), "SELECT indexer_version, trigger, sum(files) FROM batch_log GROUP BY ALL"
    )
    assert logged == [("v1", "startup", len(tree))]


def test_a_file_created_after_start_is_indexed_by_the_realtime_path(
    storage_root: Path, tree: dict[str, bytes], db_path: Path
) -> None:
    ix = HybridIndexer(storage_root, db_path, config=V1Config(debounce_ms=50))
    ix.start()
    try:
        rel, data = part(1)
        write(storage_root, rel, data)
        assert wait_until(lambda: status_of(ix, rel) == "indexed", timeout_s=10)
        assert ix.wait_idle(5)  # its batch_log row follows the file_index row
        logged = rows(
            ix.cursor(),
            "SELECT indexer_version, files, indexed, trigger, len(event_latency_ms), "
            "event_latency_ms[1] FROM batch_log WHERE trigger = 'watcher'",
        )
        assert logged, "no realtime batch_log row"
        for row in logged:  # one row per processing; a late event may cause a second one
            assert row[:5] == ("v1", 1, 1, "watcher", 1)
            assert 50 <= float(row[5]) < 10_000  # the debounce is part of event→commit latency
        assert ix.stats().realtime_files == len(logged)
    finally:
        ix.stop()


def test_a_corrupt_file_is_an_error_with_a_reason_and_the_others_land(
    storage_root: Path, tree: dict[str, bytes], db_path: Path
) -> None:
    bad = "part/msg_1/prt_bad.json"
    write(storage_root, bad, part(9)[1][:15])  # torn, and it never completes
    config = V1Config(watch=False, debounce_ms=20, processor=ProcessorConfig(settle_s=0))
    ix = HybridIndexer(storage_root, db_path, config=config)
    ix.start()
    try:
        assert status_of(ix, bad) == "error"
        (err,) = ix.error_files()
        assert (err.rel_path, err.reason) == (bad, "invalid_json")
        bulk = ix.stats().bulk
        assert bulk is not None and bulk.fallback == 1
        # The realtime path classifies the same way.
        also_bad = "message/ses_1/msg_bad.json"
        write(storage_root, also_bad, b"\xff\xfe{")
        ix.submit([key_of(also_bad)])
        assert ix.wait_idle(10)
        assert status_of(ix, also_bad) == "error"
        assert census(ix.cursor(), storage_root) == []
    finally:
        ix.stop()


def test_flush_processes_debounced_files_at_once(storage_root: Path, db_path: Path) -> None:
    ix = HybridIndexer(storage_root, db_path, config=V1Config(watch=False, debounce_ms=60_000))
    ix.start()
    try:
        keys = []
        for n in range(3):
            rel, data = part(n)
            write(storage_root, rel, data)
            keys.append(key_of(rel))
        ix.submit(keys)
        assert {p.rel_path for p in ix.pending_files()} == {k.rel_path for k in keys}
        assert not ix.is_idle()
        ix.flush()
        assert ix.wait_idle(5)  # the debounce is a minute: only flush() can have done this
        assert [status_of(ix, k.rel_path) for k in keys] == ["indexed"] * 3
    finally:
        ix.stop()


def test_stop_without_flush_hands_back_what_was_pending(storage_root: Path, db_path: Path) -> None:
    ix = HybridIndexer(storage_root, db_path, config=V1Config(watch=False, debounce_ms=60_000))
    ix.start()
    keys = []
    for n in range(3):
        rel, data = part(n)
        write(storage_root, rel, data)
        keys.append(key_of(rel))
    ix.submit(keys)
    leftover = ix.stop(flush=False)
    assert sorted(e.key.rel_path for e in leftover) == sorted(k.rel_path for k in keys)
    conn = open_database(db_path)
    try:
        assert rows(conn, "SELECT count(*) FROM file_index") == [(0,)]
    finally:
        conn.close()
    # ...and v2 takes them over.
    v2 = UnifiedIndexerV2(storage_root, db_path, config=V2Config(watch=False))
    v2.start(handover=leftover)
    try:
        assert v2.wait_idle(10)
        assert rows(v2.cursor(), "SELECT count(*) FROM file_index WHERE status = 'indexed'") == [
            (3,)
        ]
    finally:
        v2.stop()


def test_handed_over_entries_are_processed_by_the_realtime_path(
    storage_root: Path, db_path: Path
) -> None:
    rel, data = part(1)
    write(storage_root, rel, data)
    v2 = UnifiedIndexerV2(storage_root, db_path, config=V2Config(watch=False))
    v2.start()
    assert v2.wait_idle(10)
    v2.submit([key_of(rel)])  # pending in v2's open batch when it stops
    leftover = v2.stop(flush=False)
    assert [e.key.rel_path for e in leftover] == [rel]
    write(storage_root, rel, part(1, "changed")[1])
    ix = HybridIndexer(storage_root, db_path, config=FAST)
    ix.start(handover=leftover)
    try:
        assert ix.wait_idle(10)
        assert rows(ix.cursor(), "SELECT text_preview FROM parts") == [("changed",)]
        assert rows(ix.cursor(), "SELECT trigger FROM batch_log WHERE indexer_version = 'v1'") == [
            ("handover",)
        ]
    finally:
        ix.stop()


def test_batch_log_gets_one_row_per_realtime_file(
    storage_root: Path, tree: dict[str, bytes], v1: HybridIndexer
) -> None:
    v1.start()
    keys = []
    for n in range(5):
        rel, data = part(n)
        write(storage_root, rel, data)
        keys.append(key_of(rel))
    v1.submit(keys, Trigger.MANUAL)
    assert v1.wait_idle(10)
    logged = rows(
        v1.cursor(),
        "SELECT indexer_version, files, indexed, len(event_latency_ms), queue_wait_ms >= 0, "
        "processing_ms > 0 FROM batch_log WHERE trigger = 'manual'",
    )
    assert logged == [("v1", 1, 1, 1, True, True)] * 5
    recent = v1.recent_batches(5)
    assert [b.files for b in recent] == [1] * 5 and {b.indexer_version for b in recent} == {"v1"}
    assert v1.reconciler_findings() == []


def test_a_restart_does_not_reread_unchanged_files(
    storage_root: Path, tree: dict[str, bytes], db_path: Path
) -> None:
    first = HybridIndexer(storage_root, db_path, config=FAST)
    first.start()
    first.stop()
    conn = open_database(db_path)
    before = indexed_at(conn)
    conn.close()
    changed, gone = sorted(p for p in tree if p.startswith("part/"))[:2]
    path = storage_root / changed
    doc = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps({**doc, "text": "rewritten while v1 was down"}))
    os.utime(path, ns=(time.time_ns() - 10**9,) * 2)  # older than the next start
    (storage_root / gone).unlink()

    second = HybridIndexer(storage_root, db_path, config=FAST)
    second.start()
    try:
        bulk = second.stats().bulk
        assert bulk is not None
        assert (bulk.read, bulk.deleted, bulk.to_realtime) == (1, 1, 0)
        assert second.stats().bulk_files_read == 1
        after = indexed_at(second.cursor())
        untouched = set(before) - {changed, gone}
        assert {p: after[p] for p in untouched} == {p: before[p] for p in untouched}
        assert after[changed] != before[changed]
        assert status_of(second, gone) == "deleted"
        assert census(second.cursor(), storage_root) == []
    finally:
        second.stop()


def test_rescan_reads_what_changed_since_without_a_watcher(
    storage_root: Path, tree: dict[str, bytes], v1: HybridIndexer
) -> None:
    v1.start()
    rel, data = part(1)
    write(storage_root, rel, data)
    os.utime(storage_root / rel, ns=(time.time_ns() - 10**9,) * 2)
    report = v1.rescan()
    assert report is not None
    assert (report.read, report.indexed, report.findings) == (1, 1, 1)
    assert status_of(v1, rel) == "indexed"
    again = v1.rescan()
    assert again is not None and again.read == 0


def test_a_file_caught_mid_write_is_pending_then_retried(storage_root: Path, db_path: Path) -> None:
    # Unsettled for 1.5 s: the first retry comes after the writer below has finished.
    config = V1Config(watch=False, debounce_ms=20, processor=ProcessorConfig(settle_s=1.5))
    ix = HybridIndexer(storage_root, db_path, config=config)
    ix.start()
    try:
        rel, data = part(1)
        write(storage_root, rel, data[:10])
        ix.submit([key_of(rel)])
        assert wait_until(lambda: status_of(ix, rel) == "pending", timeout_s=5)
        assert wait_until(lambda: [p.trigger for p in ix.pending_files()] == ["retry"])
        write(storage_root, rel, data)  # the writer finishes; no event reaches v1
        assert wait_until(lambda: status_of(ix, rel) == "indexed", timeout_s=10)
    finally:
        ix.stop()
