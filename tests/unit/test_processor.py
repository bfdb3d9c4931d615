from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from indexer.outcome import FileStatus
from indexer.pipeline.accumulator import Batch, PendingEntry, SealReason, Trigger
from indexer.pipeline.processor import BatchProcessor
from indexer.pipeline.reader import ProcessorConfig
from indexer.store.tracking import FileTracker
from tests.helpers import before_each_read, hash_of, key_of, write


def batch_of(*rels: str) -> Batch:
    now = time.monotonic()
    entries = tuple(PendingEntry(key_of(r), Trigger.WATCHER, now, time.time()) for r in rels)
    return Batch(1, SealReason.WINDOW, entries, now)


def session(i: int) -> bytes:
    return orjson.dumps(
        {
            "id": f"ses_{i}",
            "projectID": "global",
            "title": f"t{i}",
            "time": {"created": 1, "updated": 2},
        },
        option=orjson.OPT_INDENT_2,
    )


def make_old(path: Path) -> None:
    """Give a file an mtime well in the past, so it counts as settled."""
    os.utime(path, (time.time() - 3600, time.time() - 3600))


@pytest.fixture
def processor(index_db: duckdb.DuckDBPyConnection, storage_root: Path) -> BatchProcessor:
    return BatchProcessor(index_db, storage_root, "v2", ProcessorConfig(settle_s=2.0))


def count(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_hundred_session_files_go_in_one_transaction(
    processor: BatchProcessor,
    storage_root: Path,
    index_db: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rels = [f"session/global/ses_{i}.json" for i in range(100)]
    for i, rel in enumerate(rels):
        write(storage_root, rel, session(i))

    # A failure after the data rows are written must leave nothing behind: one transaction.
    def boom(*_: object) -> None:
        raise duckdb.ConstraintException("injected")

    with monkeypatch.context() as m:
        m.setattr(FileTracker, "record", boom)
        with pytest.raises(duckdb.Error):
            processor.process(batch_of(*rels))
    assert count(index_db, "SELECT count(*) FROM sessions") == 0
    assert count(index_db, "SELECT count(*) FROM batch_log") == 0

    result = processor.process(batch_of(*rels))
    assert (result.files, result.indexed, result.errors) == (100, 100, 0)
    assert count(index_db, "SELECT count(*) FROM sessions") == 100
    assert count(index_db, "SELECT count(*) FROM file_index WHERE status = 'indexed'") == 100
    assert (
        count(index_db, "SELECT count(*) FROM batch_log WHERE files = 100 AND indexed = 100") == 1
    )


def test_mixed_batch_is_grouped_by_kind(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    files = {
        "project/global.json": {"id": "global", "worktree": "/w"},
        "session/global/ses_1.json": {"id": "ses_1"},
        "message/ses_1/msg_1.json": {"id": "msg_1", "role": "user"},
        "message/ses_1/msg_2.json": {"id": "msg_2", "role": "assistant", "cost": 0.5},
        "part/msg_2/prt_1.json": {"id": "prt_1", "type": "text", "text": "hi"},
        "todo/ses_1.json": [{"content": "a", "status": "pending"}, {"content": "b"}],
        "session_diff/ses_1.json": [{"file": "x.py", "additions": 3, "deletions": 1}],
        "notes.txt": "plain",
    }
    for rel, doc in files.items():
        write(storage_root, rel, doc.encode() if isinstance(doc, str) else orjson.dumps(doc))
    result = processor.process(batch_of(*files))
    assert result.by_kind == {
        "project": 1,
        "session": 1,
        "message": 2,
        "part": 1,
        "todo": 1,
        "session_diff": 1,
        "skipped": 1,
    }
    assert (result.indexed, result.skipped, result.errors) == (7, 1, 0)
    assert count(index_db, "SELECT count(*) FROM messages") == 2
    assert count(index_db, "SELECT count(*) FROM todos") == 2
    assert count(index_db, "SELECT count(*) FROM session_diffs") == 1


def test_corrupt_file_is_error_with_reason_while_the_others_land(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    good = [f"session/global/ses_{i}.json" for i in range(5)]
    for i, rel in enumerate(good):
        write(storage_root, rel, session(i))
    bad = write(storage_root, "session/global/ses_bad.json", b'{"id": "ses_bad", "title": ')
    make_old(bad)
    result = processor.process(batch_of(*good, "session/global/ses_bad.json"))
    assert (result.indexed, result.errors, result.pending) == (5, 1, 0)
    status, message = index_db.execute(
        "SELECT status, error_message FROM file_index WHERE file_path = 'session/global/ses_bad.json'"
    ).fetchone()  # type: ignore[misc]
    assert status == "error" and message.startswith("invalid_json:") and "byte" in message
    assert count(index_db, "SELECT count(*) FROM sessions") == 5


def test_half_written_file_is_pending_then_indexed_with_final_content(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    rel = "session/global/ses_1.json"
    full = session(1)
    write(storage_root, rel, full[: len(full) // 2])  # fresh mtime: still being written
    first = processor.process(batch_of(rel))
    assert (first.pending, first.errors) == (1, 0)
    assert first.retries and first.retries[0][1] > 0
    write(storage_root, rel, full)
    second = processor.process(batch_of(rel))
    assert second.indexed == 1
    row = index_db.execute(
        "SELECT status, content_hash, attempts FROM file_index WHERE file_path = ?", [rel]
    ).fetchone()
    assert row == ("indexed", hash_of(full), 0)


def test_settled_unparsable_file_becomes_error_only_after_settling(
    processor: BatchProcessor, storage_root: Path
) -> None:
    rel = "session/global/ses_1.json"
    path = write(storage_root, rel, b"")
    assert processor.process(batch_of(rel)).pending == 1
    make_old(path)
    result = processor.process(batch_of(rel))
    assert result.errors == 1 and result.reads[0].message == "empty: the file is empty"


def test_vanished_file_is_deleted_if_indexed_before_otherwise_dropped(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    rel = "session/global/ses_1.json"
    path = write(storage_root, rel, session(1))
    processor.process(batch_of(rel))
    path.unlink()
    result = processor.process(batch_of(rel, "session/global/ses_never.json"))
    assert (result.deleted, result.dropped) == (1, 1)
    assert count(index_db, "SELECT count(*) FROM sessions") == 0
    statuses = index_db.execute("SELECT file_path, status FROM file_index").fetchall()
    assert statuses == [(rel, "deleted")]


def test_a_fifo_named_like_a_record_is_never_opened_and_its_batch_lands(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    fifo = "session/global/ses_fifo.json"
    (storage_root / "session" / "global").mkdir(parents=True, exist_ok=True)
    os.mkfifo(storage_root / fifo)  # opening it for reading would wait for a writer, forever
    rel = "session/global/ses_1.json"
    write(storage_root, rel, session(1))
    result = processor.process(batch_of(fifo, rel))
    assert result.indexed == 1 and result.dropped == 1  # no file, as the scan sees it
    by_path = {r.key.rel_path: r for r in result.reads}
    assert (by_path[fifo].message or "").startswith("not a regular file")
    assert index_db.execute("SELECT file_path FROM file_index").fetchall() == [(rel,)]


def test_a_fifo_held_by_a_writer_swapped_in_after_the_stat_is_a_change_and_its_batch_lands(
    processor: BatchProcessor,
    storage_root: Path,
    index_db: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The narrowest window, made certain: between the reader's lstat and its read the file
    becomes a fifo that a writer holds open, so the non-blocking read has nothing to return."""
    swapped, rel = "session/global/ses_swapped.json", "session/global/ses_1.json"
    write(storage_root, swapped, session(2))
    write(storage_root, rel, session(1))
    held: list[int] = []

    def swap(path: str) -> None:
        if path.endswith(swapped) and not held:
            os.remove(path)
            os.mkfifo(path)
            held.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # so a writer may open
            held.append(os.open(path, os.O_WRONLY))

    before_each_read(monkeypatch, swap)
    try:
        result = processor.process(batch_of(swapped, rel))
    finally:
        for fd in held:
            os.close(fd)
    assert held, "the swapped file was never read"
    assert result.indexed == 1 and result.pending == 1 and result.errors == 0
    by_path = {r.key.rel_path: r for r in result.reads}
    assert by_path[swapped].message == "changed while being read"  # read again, never waited on
    assert count(index_db, "SELECT count(*) FROM sessions") == 1


def test_file_that_stopped_parsing_loses_its_stale_rows(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    rel = "todo/ses_1.json"
    write(storage_root, rel, orjson.dumps([{"content": "a"}, {"content": "b"}]))
    processor.process(batch_of(rel))
    assert count(index_db, "SELECT count(*) FROM todos") == 2
    write(storage_root, rel, orjson.dumps([{"content": "a"}]))  # the array shrank
    processor.process(batch_of(rel))
    assert count(index_db, "SELECT count(*) FROM todos") == 1
    make_old(write(storage_root, rel, b'{"not": "an array"}'))
    result = processor.process(batch_of(rel))
    assert result.reads[0].status is FileStatus.ERROR
    assert result.reads[0].message is not None and result.reads[0].message.startswith("not_array")
    assert count(index_db, "SELECT count(*) FROM todos") == 0


def test_too_large_file_is_error_without_being_read(
    index_db: duckdb.DuckDBPyConnection, storage_root: Path
) -> None:
    small = BatchProcessor(index_db, storage_root, "v2", ProcessorConfig(max_file_bytes=100))
    rel = "part/msg_1/prt_1.json"
    write(storage_root, rel, orjson.dumps({"id": "prt_1", "type": "text", "text": "x" * 500}))
    result = small.process(batch_of(rel))
    assert result.errors == 1 and result.reads[0].message.startswith("too_large")  # type: ignore[union-attr]


def test_batch_log_records_counts_and_latencies(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    rels = [f"session/global/ses_{i}.json" for i in range(3)]
    for i, rel in enumerate(rels):
        write(storage_root, rel, session(i))
    processor.process(batch_of(*rels))
    row = index_db.execute(
        "SELECT indexer_version, trigger, files, indexed, processing_ms >= 0, "
        "len(event_latency_ms) FROM batch_log"
    ).fetchone()
    assert row == ("v2", "window", 3, 3, True, 3)


def test_two_paths_with_the_same_id_keep_one_row_and_the_batch_lands(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    # A session that moved project folders: both files claim ses_1.
    write(storage_root, "session/p1/ses_1.json", session(1))
    processor.process(batch_of("session/p1/ses_1.json"))
    write(storage_root, "session/p2/ses_1.json", session(1).replace(b'"t1"', b'"moved"'))
    write(storage_root, "session/p2/ses_2.json", session(2))
    result = processor.process(batch_of("session/p2/ses_1.json", "session/p2/ses_2.json"))
    assert result.indexed == 2
    rows = index_db.execute("SELECT id, project_id, title FROM sessions ORDER BY id").fetchall()
    assert rows == [("ses_1", "p2", "moved"), ("ses_2", "p2", "t2")]


def test_a_row_another_writer_added_behind_the_trackers_filter_is_replaced_not_failed(
    processor: BatchProcessor, storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    for i in range(3):
        make_old(write(storage_root, f"session/global/ses_{i}.json", session(i)))
    processor.process(batch_of("session/global/ses_0.json"))  # an empty index: filtering
    # Another writer records ses_1 (the filter cannot know it), then the processor meets it.
    FileTracker(index_db, "v2").mark_error([(key_of("session/global/ses_1.json"), None, "x")])
    processor.process(batch_of("session/global/ses_1.json", "session/global/ses_2.json"))
    assert count(index_db, "SELECT count(*) FROM file_index WHERE status = 'indexed'") == 3
    assert count(index_db, "SELECT count(*) FROM sessions") == 3
    assert not processor.tracker.distrust_filter()  # the conflict turned it off
