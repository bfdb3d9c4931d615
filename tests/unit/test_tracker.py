from __future__ import annotations

import duckdb
import pytest

from indexer.kinds import FileKey, classify
from indexer.outcome import FileStamp, FileStatus
from indexer.read_model import file_status_counts
from indexer.store import tracking
from indexer.store.tracking import FileTracker


def key(n: int) -> FileKey:
    k = classify(f"part/msg_1/prt_{n}.json")
    assert k is not None
    return k


def test_mark_forms_take_a_list_and_write_every_row(index_db: duckdb.DuckDBPyConnection) -> None:
    t = FileTracker(index_db, "v2")
    t.mark_indexed([(key(i), FileStamp(1000 + i, 10), f"h{i}") for i in range(100)])
    t.mark_error([(key(100), FileStamp(5, 1), "invalid_json: bad")])
    t.mark_pending([(key(101), FileStamp(6, 1), "empty: the file is empty")])
    t.mark_skipped([(classify("notes.txt"), FileStamp(1, 1))])  # type: ignore[list-item]
    counts = file_status_counts(index_db)
    assert counts == {"indexed": 100, "error": 1, "pending": 1, "deleted": 0, "skipped": 1}
    got = t.lookup([key(3).rel_path, key(100).rel_path])
    assert got[key(3).rel_path].stamp == FileStamp(1003, 10)
    assert got[key(3).rel_path].content_hash == "h3"
    assert got[key(3).rel_path].indexer_version == "v2"
    assert got[key(100).rel_path].error_message == "invalid_json: bad"


def test_attempts_count_consecutive_failures_and_reset_when_indexed(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    t = FileTracker(index_db, "v2")
    k = key(1)
    for _ in range(3):
        t.mark_pending([(k, FileStamp(1, 1), "empty")])
    assert t.lookup([k.rel_path])[k.rel_path].attempts == 3
    t.mark_indexed([(k, FileStamp(2, 2), "h")])
    row = t.lookup([k.rel_path])[k.rel_path]
    assert (row.status, row.attempts, row.error_message) == (FileStatus.INDEXED, 0, None)


def test_deleted_keeps_a_row_and_needs_indexing_compares_with_not_equal(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    t = FileTracker(index_db, "v2")
    t.mark_indexed([(key(1), FileStamp(200, 5), "a"), (key(2), FileStamp(200, 5), "b")])
    t.mark_deleted([key(2)])
    assert t.lookup([key(2).rel_path])[key(2).rel_path].status is FileStatus.DELETED
    # An older mtime is still a change: != not >.
    todo = t.needs_indexing(
        [(key(1), FileStamp(100, 5)), (key(2), FileStamp(200, 5)), (key(3), FileStamp(1, 1))]
    )
    assert [k.record_id for k in todo] == ["prt_1", "prt_2", "prt_3"]
    assert t.needs_indexing([(key(1), FileStamp(200, 5))]) == []


def test_marking_kinds_for_reread_leaves_other_kinds_other_sources_and_settled_rows(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    t = FileTracker(index_db, "v2")
    store = FileKey("sqlite:opencode.db:part/prt_9", key(9).kind, "prt_9")
    diff = classify("session_diff/ses_1.json")
    assert diff is not None
    t.mark_indexed([(key(1), FileStamp(1, 1), "a"), (store, FileStamp(1, 1), "s")])
    t.mark_indexed([(diff, FileStamp(1, 1), "d")])
    t.mark_error([(key(2), FileStamp(1, 1), "invalid_json: x")])
    t.mark_skipped([(key(3), FileStamp(1, 1))])
    t.mark_deleted([key(4)])
    marked = t.mark_kinds_for_reread(["part"], ["sqlite:opencode.db:"], "the store holds it")
    assert marked == 2
    rows = t.lookup([k.rel_path for k in (key(1), key(2), key(3), key(4), store, diff)])
    status = {path: (row.status, row.error_message) for path, row in rows.items()}
    reread = (FileStatus.PENDING, "re-read: the store holds it")
    assert status[key(1).rel_path] == status[key(2).rel_path] == reread
    assert status[key(3).rel_path][0] is FileStatus.SKIPPED
    assert status[key(4).rel_path][0] is FileStatus.DELETED
    assert status[store.rel_path][0] is status[diff.rel_path][0] is FileStatus.INDEXED


@pytest.mark.parametrize("rows_per_key", [0, 10**9], ids=["key-lookups", "join"])
def test_a_batch_is_looked_up_and_replaced_alike_by_join_or_key_lookups(
    index_db: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, rows_per_key: int
) -> None:
    """300 paths (enough to join): the outcome is the same whichever statement matches them."""
    monkeypatch.setattr(tracking, "_ROWS_PER_KEY", rows_per_key)
    t = FileTracker(index_db, "v2", now=lambda: 1_700_000_000.0)
    keys = [key(i) for i in range(300)]
    t.mark_indexed([(k, FileStamp(1000 + i, 10), f"h{i}") for i, k in enumerate(keys)])
    t.mark_pending([(k, FileStamp(2000, 20), "empty") for k in keys[:250]])
    t.mark_deleted(keys[250:260])
    rows = index_db.execute("SELECT count(*), count(DISTINCT file_path) FROM file_index").fetchall()
    assert rows == [(300, 300)]
    got = t.lookup([k.rel_path for k in keys] + ["part/msg_1/unknown.json"])
    assert len(got) == 300
    assert got[keys[0].rel_path].status is FileStatus.PENDING
    assert (got[keys[0].rel_path].attempts, got[keys[0].rel_path].stamp) == (1, FileStamp(2000, 20))
    gone = got[keys[255].rel_path]  # a deleted file keeps its last stamp and hash
    assert (gone.status, gone.stamp, gone.content_hash) == (
        FileStatus.DELETED,
        FileStamp(1255, 10),
        "h255",
    )
    assert got[keys[299].rel_path].status is FileStatus.INDEXED
    first = index_db.execute(
        "SELECT count(*) FROM file_index WHERE first_attempt_at IS NOT NULL"
    ).fetchall()
    assert first == [(250,)]


def test_a_tracker_filtering_from_an_empty_table_finds_every_row_it_recorded(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    t = FileTracker(index_db, "v2", sole_writer=True)
    assert t.lookup([key(1).rel_path]) == {}  # empty at the first lookup: filtering from now
    t.mark_indexed([(key(i), FileStamp(i, 1), "h") for i in range(2, 500)])
    t.mark_error([(key(1), FileStamp(7, 1), "invalid_json: bad")])
    found = t.lookup(key(i).rel_path for i in range(0, 600))
    assert sorted(found) == sorted(key(i).rel_path for i in range(1, 500))
    assert found[key(1).rel_path].status is FileStatus.ERROR
    # A row written past the tracker (another writer) is missed until the filter is distrusted.
    FileTracker(index_db, "v2").mark_indexed([(key(700), FileStamp(1, 1), "h")])
    assert t.lookup([key(700).rel_path]) == {}
    assert t.distrust_filter() and not t.distrust_filter()
    assert key(700).rel_path in t.lookup([key(700).rel_path])


def test_a_tracker_meeting_rows_at_its_first_lookup_never_filters(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    FileTracker(index_db, "v2").mark_indexed([(key(1), FileStamp(1, 1), "h")])
    t = FileTracker(index_db, "v2", sole_writer=True)
    assert key(1).rel_path in t.lookup([key(1).rel_path])
    FileTracker(index_db, "v2").mark_indexed([(key(2), FileStamp(1, 1), "h")])
    assert key(2).rel_path in t.lookup([key(2).rel_path])
    assert not t.distrust_filter()


def test_a_filtering_tracker_asks_only_about_the_records_it_recorded(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    t = FileTracker(index_db, "v2", sole_writer=True, asks_records=True)
    absent = [("part", f"prt_new{i}") for i in range(1_000)]
    assert t.records_maybe_tracked(absent) == []  # empty at the first question: filtering
    t.mark_indexed([(key(i), FileStamp(i, 1), "h") for i in range(300)])
    recorded = [(key(i).kind.value, key(i).record_id) for i in range(300)]
    assert t.records_maybe_tracked(recorded) == recorded
    assert len(t.records_maybe_tracked(absent)) < 10
    assert ("session", "prt_1") not in t.records_maybe_tracked([("session", "prt_1")])
    assert t.distrust_filter()
    assert t.records_maybe_tracked(absent[:3]) == absent[:3]  # not filtering: every record


@pytest.mark.parametrize("sole_writer", [False, True])
def test_a_tracker_not_keeping_records_asks_about_every_record(
    index_db: duckdb.DuckDBPyConnection, sole_writer: bool
) -> None:
    t = FileTracker(index_db, "v2", sole_writer=sole_writer)  # records not asked for
    t.mark_indexed([(key(1), FileStamp(1, 1), "h")])
    assert t.records_maybe_tracked([("part", "prt_x")]) == [("part", "prt_x")]
