"""F6: corrupt, empty, non-UTF-8, wrong-top-level, id-less and oversized files mixed into a
batch of good ones.

One bad file never fails its batch: every good file of the same batch is indexed, and every bad
one ends 'error' with its reason class first in error_message. A bad file younger than settle_s
may be 'pending' first (it could still be mid-write), never 'error' before it settled.
"""

from __future__ import annotations

import functools
from pathlib import Path

import orjson
import pytest

import tests.helpers
from indexer.outcome import FileStatus
from indexer.pipeline.accumulator import AccumulatorConfig
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from indexer.records import parse
from tests.faults.support import (
    Outcomes,
    backdate,
    census_of,
    owned_rows,
    poll,
    reading,
    row,
    running_v2,
    settle,
    status_of,
    write_now,
)

MAX_BYTES = 4096
GOOD = 100

BAD: dict[str, tuple[bytes, str]] = {
    "session/global/ses_truncated.json": (
        b'{"id": "ses_truncated", "title": "cut',
        "invalid_json:",
    ),
    "session/global/ses_empty.json": (b"", "empty:"),
    "session/global/ses_blank.json": (b"  \n\t ", "empty:"),
    "message/ses_1/msg_latin1.json": (
        b'{"id": "msg_latin1", "role": "user", "x": "caf\xe9"}',
        "invalid_utf8:",
    ),
    "session/global/ses_array.json": (b'[{"id": "ses_array"}]', "not_object:"),
    "project/prj_scalar.json": (b"42", "not_object:"),
    "todo/ses_obj.json": (b'{"id": "t1", "content": "x"}', "not_array:"),
    "session_diff/ses_null.json": (b"null", "not_array:"),
    "project/prj_noid.json": (b'{"worktree": "/src"}', "missing_id:"),
    "part/msg_1/prt_huge.json": (
        orjson.dumps({"id": "prt_huge", "type": "text", "text": "x" * (2 * MAX_BYTES)}),
        "too_large:",
    ),
}


def good(i: int) -> tuple[str, bytes]:
    doc = {"id": f"ses_{i:03d}", "title": f"good {i}", "time": {"created": 1, "updated": 2}}
    return f"session/global/ses_{i:03d}.json", orjson.dumps(doc)


@pytest.fixture
def census_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judge files with the same size limit the indexer was given."""
    monkeypatch.setattr(tests.helpers, "parse", functools.partial(parse, max_file_bytes=MAX_BYTES))


def config(settle_s: float) -> V2Config:
    return V2Config(
        accumulator=AccumulatorConfig(max_files=GOOD + len(BAD) + 10),
        processor=ProcessorConfig(max_file_bytes=MAX_BYTES, settle_s=settle_s),
        reconciler=ReconcilerConfig(interval_s=3600),
    )


def test_settled_bad_files_in_one_batch_error_with_their_reason_and_good_ones_land(
    root: Path, db: Path, census_limit: None
) -> None:
    for i in range(GOOD):
        rel, data = good(i)
        write_now(root / rel, data)
        backdate(root / rel)
    for rel, (data, _) in BAD.items():
        write_now(root / rel, data)
        backdate(root / rel)
    outcomes = Outcomes()
    with running_v2(root, db, config(settle_s=0.2), outcomes) as v2:
        settle(v2)
    assert len(outcomes.batches) == 1, [b.files for b in outcomes.batches]
    batch = outcomes.batches[0]
    assert (batch.files, batch.indexed, batch.errors) == (GOOD + len(BAD), GOOD, len(BAD))
    with reading(db) as conn:
        for rel, (_, reason) in BAD.items():
            found = row(conn, rel)
            assert found is not None and found[0] == "error", (rel, found)
            assert found[1] is not None and found[1].startswith(reason), (rel, found)
            assert owned_rows(conn, rel) == 0, f"{rel}: a bad file left a data row"
    assert census_of(db, root) == []


def test_bad_files_arriving_live_are_pending_until_settled_then_error(
    root: Path, db: Path, census_limit: None
) -> None:
    outcomes = Outcomes()
    with running_v2(root, db, config(settle_s=1.5), outcomes) as v2:
        for i in range(GOOD):
            write_now(root / good(i)[0], good(i)[1])
            if i % 10 == 0:
                rel, (data, _) = list(BAD.items())[i // 10]
                write_now(root / rel, data)
        cursor = v2.cursor()
        poll(lambda: all(status_of(cursor, r) == "error" for r in BAD), 30, "every bad file error")
        cursor.close()
        settle(v2)
    for rel, (_, reason) in BAD.items():
        seen = outcomes.of(rel)
        assert seen[-1][0] is FileStatus.ERROR and (seen[-1][1] or "").startswith(reason), seen
        if reason != "too_large:":  # the only failure that cannot heal by itself
            assert seen[0][0] is FileStatus.PENDING, (rel, seen)
    assert census_of(db, root) == []


def test_a_fixed_file_gets_its_rows_and_a_file_that_turns_bad_settled_loses_them(
    root: Path, db: Path, census_limit: None
) -> None:
    turns_bad, fixed = "session/global/ses_000.json", "session/global/ses_truncated.json"
    write_now(root / turns_bad, good(0)[1])
    write_now(root / fixed, BAD[fixed][0])
    with running_v2(root, db, config(settle_s=0.0)) as v2:  # no settle window: no 'pending'
        cursor = v2.cursor()
        poll(lambda: status_of(cursor, turns_bad) == "indexed", 20, "indexed")
        poll(lambda: status_of(cursor, fixed) == "error", 20, "error")
        write_now(root / turns_bad, b'{"id": "ses_000", "title": ')
        write_now(root / fixed, b'{"id": "ses_truncated", "title": "whole"}')
        poll(lambda: status_of(cursor, turns_bad) == "error", 20, "error")
        poll(lambda: status_of(cursor, fixed) == "indexed", 20, "indexed once fixed")
        assert owned_rows(cursor, turns_bad) == 0
        assert owned_rows(cursor, fixed) == 1
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []


def test_a_good_file_that_turns_bad_through_pending_loses_its_rows(
    root: Path, db: Path, census_limit: None
) -> None:
    rel = "session/global/ses_000.json"
    write_now(root / rel, good(0)[1])
    with running_v2(root, db, config(settle_s=0.3)) as v2:
        cursor = v2.cursor()
        poll(lambda: status_of(cursor, rel) == "indexed", 20, "indexed")
        write_now(root / rel, b'{"id": "ses_000", "title": ')  # fresh: 'pending' first
        poll(lambda: status_of(cursor, rel) == "error", 20, "error after settling")
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []
