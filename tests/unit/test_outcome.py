"""The one decision: what a reader found, its age and its earlier attempts mean one status and
one retry delay, whoever the reader is."""

from __future__ import annotations

import pytest

from indexer.outcome import (
    FailureReason,
    FileStatus,
    Found,
    RetryPolicy,
    Situation,
    decide,
    needs_retry,
    needs_retry_sql,
    next_attempts,
)

POLICY = RetryPolicy(base_s=0.25, max_s=5.0, settle_s=2.0)
R = FailureReason


@pytest.mark.parametrize(
    ("found", "reason", "age_s", "attempts", "status", "retry_in_s"),
    [
        (Found.PARSED, None, 0.1, 3, FileStatus.INDEXED, None),
        (Found.NOT_A_RECORD, None, None, 0, FileStatus.SKIPPED, None),
        (Found.GONE, None, None, 0, FileStatus.DELETED, None),
        (Found.CHANGED_WHILE_READ, None, 0.0, 0, FileStatus.PENDING, 0.25),
        (Found.CHANGED_WHILE_READ, None, 0.0, 2, FileStatus.PENDING, 1.0),
        (Found.CHANGED_WHILE_READ, None, 0.0, 40, FileStatus.PENDING, 5.0),
        # young and possibly mid-write: pending until it settles
        (Found.FAILED, R.INVALID_JSON, 0.5, 0, FileStatus.PENDING, 1.55),
        (Found.FAILED, R.EMPTY, 1.9, 3, FileStatus.PENDING, 2.0),
        (Found.FAILED, R.INVALID_UTF8, 0.0, 0, FileStatus.PENDING, 2.05),
        # settled: an error
        (Found.FAILED, R.INVALID_JSON, 2.0, 0, FileStatus.ERROR, None),
        (Found.FAILED, R.NOT_OBJECT, 30.0, 0, FileStatus.ERROR, None),
        # a size limit or the disk never heal by waiting
        (Found.FAILED, R.TOO_LARGE, 0.0, 0, FileStatus.ERROR, None),
        (Found.FAILED, R.UNREADABLE, 0.0, 0, FileStatus.ERROR, None),
        (Found.FAILED, R.IO_ERROR, 0.0, 0, FileStatus.ERROR, None),
        # a committed database row has no age: it never heals by itself
        (Found.FAILED, R.INVALID_JSON, None, 0, FileStatus.ERROR, None),
        (Found.STORE_BUSY, None, None, 0, FileStatus.PENDING, 1.0),
        (Found.STORE_UNAVAILABLE, None, None, 0, FileStatus.PENDING, None),
    ],
)
def test_decide_maps_what_was_found_to_one_status_and_retry(
    found: Found,
    reason: FailureReason | None,
    age_s: float | None,
    attempts: int,
    status: FileStatus,
    retry_in_s: float | None,
) -> None:
    got_status, got_retry = decide(found, Situation(POLICY, attempts, reason, age_s))
    assert got_status is status
    assert got_retry == (None if retry_in_s is None else pytest.approx(retry_in_s))


def test_every_found_value_has_a_decision() -> None:
    for found in Found:
        decide(found, Situation(POLICY, 0, R.EMPTY, 100.0))


@pytest.mark.parametrize(
    ("before", "before_attempts", "status", "expected"),
    [
        (None, 0, FileStatus.PENDING, 1),
        (FileStatus.PENDING, 3, FileStatus.PENDING, 4),
        (FileStatus.ERROR, 2, FileStatus.PENDING, 3),
        (FileStatus.INDEXED, 7, FileStatus.ERROR, 1),
        (FileStatus.PENDING, 3, FileStatus.INDEXED, 0),
        (FileStatus.ERROR, 3, FileStatus.DELETED, 0),
    ],
)
def test_attempts_count_consecutive_pending_or_error_outcomes(
    before: FileStatus | None, before_attempts: int, status: FileStatus, expected: int
) -> None:
    assert next_attempts(before, before_attempts, status) == expected


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("pending", None, True),
        ("error", "unreadable: Permission denied", True),
        ("error", "io_error: Input/output error", True),
        ("error", "invalid_json: unexpected end", False),
        ("error", None, False),
        ("indexed", None, False),
        ("skipped", None, False),
        ("deleted", None, False),
    ],
)
def test_needs_retry_and_its_sql_twin_agree(
    status: str, message: str | None, expected: bool
) -> None:
    import duckdb

    assert needs_retry(status, message) is expected
    conn = duckdb.connect()
    conn.execute("CREATE TABLE file_index (status VARCHAR, error_message VARCHAR)")
    conn.execute("INSERT INTO file_index VALUES (?, ?)", [status, message])
    row = conn.execute(f"SELECT {needs_retry_sql('f')} FROM file_index f").fetchone()
    assert row is not None and bool(row[0]) is expected


def test_disk_errors_are_the_failures_the_reconciler_retries() -> None:
    assert {r for r in FailureReason if r.is_retried_by_reconciler} == {R.UNREADABLE, R.IO_ERROR}
    assert not any(r.may_be_unsettled for r in (R.UNREADABLE, R.IO_ERROR, R.TOO_LARGE))
