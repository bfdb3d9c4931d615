"""F14: the same file changed three times inside one batch window.

The accumulator keeps one key per path, and the processor dedupes a batch newest-wins before
its upserts (DuckDB silently keeps the first of two duplicate keys in one statement): the file
is read once, and the index holds the third version only.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from indexer.outcome import FileStatus
from indexer.pipeline.accumulator import AccumulatorConfig, Batch, PendingEntry, SealReason, Trigger
from indexer.pipeline.processor import BatchProcessor
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from indexer.store.database import open_database
from indexer.store.schema import migrate
from tests.faults.support import Outcomes, census_of, poll, row, running_v2, settle, write_now
from tests.helpers import census, hash_of, key_of

PART = "part/msg_1/prt_1.json"
TODO = "todo/ses_1.json"


def part_v(n: int) -> bytes:
    status = ("pending", "running", "running", "completed")[n]
    return orjson.dumps(
        {"id": "prt_1", "type": "tool", "tool": "bash", "state": {"status": status}, "pad": "x" * n}
    )


def todo_v(n: int) -> bytes:
    items = (3, 1, 4, 2)[n]  # shrinks, grows, shrinks: no stale position may survive
    return orjson.dumps(
        [{"id": str(i), "content": f"v{n} step {i}", "status": "pending"} for i in range(items)]
    )


def test_three_writes_inside_one_window_make_one_read_of_the_newest(root: Path, db: Path) -> None:
    config = V2Config(
        accumulator=AccumulatorConfig(window_ms=1000, idle_ms=None),
        processor=ProcessorConfig(settle_s=0.3),
        reconciler=ReconcilerConfig(interval_s=3600),
    )
    write_now(root / PART, part_v(0))
    write_now(root / TODO, todo_v(0))
    outcomes = Outcomes()
    with running_v2(root, db, config, outcomes) as v2:
        settle(v2)  # version 0 is indexed
        assert [len(outcomes.batches_with(rel)) for rel in (PART, TODO)] == [1, 1]
        for n in (1, 2, 3):  # three changes, microseconds apart, in one 1 s window
            write_now(root / PART, part_v(n))
            write_now(root / TODO, todo_v(n))
        cursor = v2.cursor()
        poll(
            lambda: (
                row(cursor, PART) == ("indexed", None, hash_of(part_v(3)))
                and row(cursor, TODO) == ("indexed", None, hash_of(todo_v(3)))
            ),
            20,
            "the third versions",
        )
        tool_status = cursor.execute("SELECT tool_status FROM parts WHERE id = 'prt_1'").fetchall()
        todos = cursor.execute("SELECT position, content FROM todos ORDER BY position").fetchall()
        cursor.close()
        settle(v2)
    assert tool_status == [("completed",)]
    assert todos == [(0, "v3 step 0"), (1, "v3 step 1")]
    for rel in (PART, TODO):
        assert len(outcomes.batches_with(rel)) == 2, f"{rel}: the three changes took >1 batch"
        assert outcomes.of(rel) == [(FileStatus.INDEXED, None)] * 2
    assert census_of(db, root) == []


def test_a_batch_holding_one_key_three_times_writes_it_once(root: Path, db: Path) -> None:
    """Below the accumulator: a batch that does carry three entries of one path."""
    conn = open_database(db)
    try:
        migrate(conn)
        processor = BatchProcessor(conn, root, "v2", ProcessorConfig(settle_s=0.0))
        write_now(root / TODO, todo_v(3))
        now = time.monotonic()
        entries = tuple(
            PendingEntry(key_of(TODO), trigger, now + i, time.time())
            for i, trigger in enumerate((Trigger.WATCHER, Trigger.RECONCILER, Trigger.RETRY))
        )
        result = processor.process(Batch(1, SealReason.WINDOW, entries, now))
        assert (result.files, result.indexed) == (1, 1)
        assert conn.execute("SELECT count(*) FROM todos").fetchone() == (2,)
        assert census(conn, root) == []
    finally:
        conn.close()
