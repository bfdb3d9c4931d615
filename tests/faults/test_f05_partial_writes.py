"""F5: files written partly (a prefix), completed later in place, as OpenCode's non-atomic
writes look to a reader.

A torn file younger than settle_s is 'pending', never 'error'; once completed it is indexed
exactly with the final bytes. That holds for new files, for files that were indexed before
(their old rows must give way to the final ones), and across a restart.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from indexer.outcome import FileStatus
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import (
    Outcomes,
    census_of,
    poll,
    row,
    running_v2,
    settle,
    status_of,
    write_now,
)
from tests.helpers import hash_of

FILES: dict[str, bytes] = {
    "part/msg_1/prt_1.json": orjson.dumps(
        {"id": "prt_1", "type": "text", "text": "done " * 300}, option=orjson.OPT_INDENT_2
    ),
    "message/ses_1/msg_1.json": orjson.dumps(
        {"id": "msg_1", "role": "assistant", "cost": 0.5, "time": {"created": 1, "completed": 2}}
    ),
    "todo/ses_1.json": orjson.dumps(
        [{"id": str(i), "content": f"step {i}", "status": "pending"} for i in range(4)]
    ),
    "session_diff/ses_1.json": orjson.dumps(
        [{"file": f"src/f{i}.py", "additions": i, "deletions": 0} for i in range(3)]
    ),
    # Cut inside a multi-byte character: the prefix is not even valid UTF-8.
    "session/global/ses_1.json": orjson.dumps({"id": "ses_1", "title": "café " * 50}),
}


def prefix(rel: str, data: bytes) -> bytes:
    if rel.startswith("session/"):
        return data[: data.index("é".encode()) + 1]
    return data[: len(data) // 2]


CONFIG = V2Config(
    processor=ProcessorConfig(settle_s=2.0),  # the completion lands well inside the window
    reconciler=ReconcilerConfig(interval_s=3600),
)


def test_prefixes_completed_later_are_pending_then_indexed_never_error(
    root: Path, db: Path
) -> None:
    outcomes = Outcomes()
    with running_v2(root, db, CONFIG, outcomes) as v2:
        for rel, data in FILES.items():
            write_now(root / rel, prefix(rel, data))
        cursor = v2.cursor()
        poll(lambda: all(status_of(cursor, r) == "pending" for r in FILES), 20, "all pending")
        for rel, data in FILES.items():
            write_now(root / rel, data)
        poll(
            lambda: all(row(cursor, r) == ("indexed", None, hash_of(d)) for r, d in FILES.items()),
            20,
            "all indexed with their final hash",
        )
        cursor.close()
        settle(v2)
    for rel in FILES:
        seen = [status for status, _ in outcomes.of(rel)]
        assert FileStatus.ERROR not in seen, (rel, outcomes.of(rel))
        assert seen[0] is FileStatus.PENDING and seen[-1] is FileStatus.INDEXED, (rel, seen)
    assert census_of(db, root) == []


def test_a_prefix_left_pending_at_stop_is_completed_offline_then_indexed_at_restart(
    root: Path, db: Path
) -> None:
    rel, data = "part/msg_1/prt_1.json", FILES["part/msg_1/prt_1.json"]
    with running_v2(root, db, CONFIG) as v2:
        write_now(root / rel, prefix(rel, data))
        cursor = v2.cursor()
        poll(lambda: status_of(cursor, rel) == "pending", 20, "pending")
        cursor.close()
    write_now(root / rel, data)  # completed while nothing runs
    outcomes = Outcomes()
    with running_v2(root, db, CONFIG, outcomes) as v2:
        settle(v2)
    assert [s for s, _ in outcomes.of(rel)] == [FileStatus.INDEXED]
    assert census_of(db, root) == []


def test_an_indexed_array_file_caught_torn_then_completed_keeps_no_stale_rows(
    root: Path, db: Path
) -> None:
    rel = "session_diff/ses_1.json"
    before = orjson.dumps([{"file": "a.py", "additions": 1}, {"file": "b.py", "additions": 2}])
    after = orjson.dumps([{"file": "c.py", "additions": 3}])
    with running_v2(root, db, CONFIG) as v2:
        write_now(root / rel, before)
        cursor = v2.cursor()
        poll(lambda: row(cursor, rel) == ("indexed", None, hash_of(before)), 20, "indexed")
        write_now(root / rel, after[:10])  # OpenCode rewrites in place: a reader sees a prefix
        poll(lambda: status_of(cursor, rel) == "pending", 20, "pending")
        write_now(root / rel, after)
        poll(lambda: row(cursor, rel) == ("indexed", None, hash_of(after)), 20, "re-indexed")
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []
