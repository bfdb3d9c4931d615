from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from indexer.outcome import FileStamp
from indexer.pipeline.accumulator import AccumulatorConfig, FileBatchAccumulator, Trigger
from indexer.pipeline.reconciler import Reconciler, ReconcilerConfig
from indexer.scan import scan_tree
from indexer.store.tracking import FileTracker
from tests.helpers import key_of, write


@pytest.fixture
def acc():  # type: ignore[no-untyped-def]
    a = FileBatchAccumulator(AccumulatorConfig(window_ms=60_000, max_files=100_000, idle_ms=None))
    yield a
    a.stop(timeout_s=1)


def populate(root: Path, n: int) -> None:
    for i in range(n):
        write(
            root,
            f"part/msg_{i // 100}/prt_{i:05d}.json",
            orjson.dumps({"id": f"prt_{i}", "type": "text"}),
        )


def index_all(conn: duckdb.DuckDBPyConnection, root: Path, skip: int = 0) -> None:
    stats = list(scan_tree(root))
    FileTracker(conn, "v2").mark_indexed([(s.key, s.stamp, "h") for s in stats[skip:]])


def test_thousand_on_disk_with_950_indexed_finds_50(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    populate(storage_root, 1000)
    index_all(index_db, storage_root, skip=50)
    rec = Reconciler(storage_root, index_db.cursor, acc.add_many, acc.pending_paths)
    report = rec.scan_now()  # immediate: returns with the findings already submitted
    assert (len(report.new), len(report.modified), len(report.deleted)) == (50, 0, 0)
    assert report.files_seen == 1000
    assert acc.get_stats().pending_files == 50
    assert rec.get_stats().scans_completed == 1
    assert rec.get_stats().files_found_missing == 50


def test_an_older_mtime_is_a_modification_not_equal_not_greater(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    path = write(storage_root, "session/global/ses_1.json", b'{"id": "ses_1"}')
    os.utime(path, ns=(100, 100))
    FileTracker(index_db, "v2").mark_indexed(
        [(key_of("session/global/ses_1.json"), FileStamp(200, path.stat().st_size), "h")]
    )
    report = Reconciler(storage_root, index_db.cursor, acc.add_many, acc.pending_paths).scan_now()
    assert report.modified == ("session/global/ses_1.json",)


def test_the_reconciler_finds_a_file_deleted_while_stopped(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    populate(storage_root, 10)
    index_all(index_db, storage_root)
    (storage_root / "part/msg_0/prt_00003.json").unlink()
    report = Reconciler(storage_root, index_db.cursor, acc.add_many, acc.pending_paths).scan_now()
    assert report.deleted == ("part/msg_0/prt_00003.json",) and not report.new


def test_error_rows_are_retried_only_when_the_file_changed_and_skipped_once(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    bad = write(storage_root, "session/global/ses_1.json", b"{")
    notes = write(storage_root, "notes.md", b"hello")
    tracker = FileTracker(index_db, "v2")
    st = bad.stat()
    tracker.mark_error(
        [
            (
                key_of("session/global/ses_1.json"),
                FileStamp(st.st_mtime_ns, st.st_size),
                "invalid_json: x",
            )
        ]
    )
    nst = notes.stat()
    tracker.mark_skipped([(key_of("notes.md"), FileStamp(nst.st_mtime_ns, nst.st_size))])
    rec = Reconciler(storage_root, index_db.cursor, acc.add_many, acc.pending_paths)
    assert rec.scan_now().findings == 0  # unchanged error and skipped rows are not re-queued
    bad.write_bytes(b'{"id": "ses_1"}')
    assert rec.scan_now().modified == ("session/global/ses_1.json",)


def test_unreadable_errors_and_stale_pending_rows_are_retried(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    a = write(storage_root, "session/global/ses_a.json", b"{}")
    b = write(storage_root, "session/global/ses_b.json", b"")
    tracker = FileTracker(index_db, "v2", now=lambda: time.time() - 60)
    sa, sb = a.stat(), b.stat()
    tracker.mark_error(
        [
            (
                key_of("session/global/ses_a.json"),
                FileStamp(sa.st_mtime_ns, sa.st_size),
                "unreadable: Permission denied",
            )
        ]
    )
    tracker.mark_pending(
        [(key_of("session/global/ses_b.json"), FileStamp(sb.st_mtime_ns, sb.st_size), "empty")]
    )
    report = Reconciler(storage_root, index_db.cursor, acc.add_many, acc.pending_paths).scan_now()
    assert sorted(report.retried) == ["session/global/ses_a.json", "session/global/ses_b.json"]


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles", "UTC"])
def test_a_pending_row_waits_its_retry_delay_whatever_the_database_time_zone(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator, zone: str
) -> None:
    index_db.execute(f"SET GLOBAL TimeZone = '{zone}'")
    fresh = write(storage_root, "session/global/ses_fresh.json", b"")
    old = write(storage_root, "session/global/ses_old.json", b"")
    for path, age_s in ((fresh, 1.0), (old, 60.0)):
        st = path.stat()
        FileTracker(index_db, "v2", now=lambda age=age_s: time.time() - age).mark_pending(
            [
                (
                    key_of(f"session/global/{path.name}"),
                    FileStamp(st.st_mtime_ns, st.st_size),
                    "empty",
                )
            ]
        )
    config = ReconcilerConfig(pending_retry_after_s=30.0)
    rec = Reconciler(storage_root, index_db.cursor, acc.add_many, acc.pending_paths, config)
    assert list(rec.scan_now().retried) == ["session/global/ses_old.json"]


def test_stop_returns_within_five_seconds(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    rec = Reconciler(
        storage_root,
        index_db.cursor,
        acc.add_many,
        acc.pending_paths,
        ReconcilerConfig(interval_s=3600),
    )
    rec.start()
    t0 = time.monotonic()
    rec.stop()
    assert time.monotonic() - t0 < 5


def test_request_scan_wakes_the_loop(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    from tests.helpers import wait_until

    rec = Reconciler(
        storage_root,
        index_db.cursor,
        acc.add_many,
        acc.pending_paths,
        ReconcilerConfig(interval_s=3600),
    )
    rec.start()
    try:
        rec.request_scan()
        assert wait_until(lambda: rec.get_stats().scans_completed == 1, 5)
    finally:
        rec.stop()


def test_catches_count_only_what_events_should_have_brought(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, acc: FileBatchAccumulator
) -> None:
    from indexer.pipeline.accumulator import Trigger

    populate(storage_root, 20)
    for path in storage_root.rglob("*.json"):
        os.utime(path, (time.time() - 60, time.time() - 60))  # older than the catch grace
    rec = Reconciler(storage_root, index_db.cursor, acc.add_many, acc.pending_paths)
    assert rec.scan_now(Trigger.STARTUP).catches == 0  # nothing could have sent events then
    # The same 20 are now pending in the accumulator: in flight, so no catch either.
    assert rec.scan_now().catches == 0
    other = FileBatchAccumulator(AccumulatorConfig(window_ms=60_000, idle_ms=None))
    try:
        missed = Reconciler(storage_root, index_db.cursor, other.add_many, set)
        assert missed.scan_now().catches == 20
    finally:
        other.stop(timeout_s=1)


def test_a_first_catch_up_submits_every_file_once_as_new_without_a_diff(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    populate(storage_root, 4_500)
    write(storage_root, ".hidden/prt_x.json", b"{}")  # ignored, as by the diff
    (storage_root / "part" / "link.json").symlink_to(storage_root / "part")  # recorded, skipped
    submitted: list[str] = []
    rec = Reconciler(
        storage_root,
        index_db.cursor,
        lambda keys, _: submitted.extend(k.rel_path for k in keys),
        set,
    )
    report = rec.scan_now(Trigger.STARTUP)
    assert len(submitted) == len(set(submitted)) == 4_501 == len(report.new) == report.files_seen
    assert "part/link.json" in submitted and report.catches == 0


def test_a_later_scan_of_an_empty_index_still_diffs_and_counts_catches(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    """Only the start skips the diff: a scan on the interval keeps it (and its catches)."""
    populate(storage_root, 30)
    old = time.time() - 3600
    for path in storage_root.rglob("*.json"):
        os.utime(path, (old, old))
    submitted: list[int] = []
    rec = Reconciler(
        storage_root, index_db.cursor, lambda keys, _: submitted.append(len(keys)), set
    )
    report = rec.scan_now(Trigger.RECONCILER)
    assert submitted == [30] and report.catches == 30
