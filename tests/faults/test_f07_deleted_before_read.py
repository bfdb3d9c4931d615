"""F7: a file deleted between its event and its read.

A vanished file that was never indexed leaves no row at all; one that was indexed is marked
'deleted' and its data rows go. Never an 'error', never a crash, never a row for a file that
is gone unless it says 'deleted'.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from indexer.outcome import FileStatus
from indexer.pipeline.accumulator import AccumulatorConfig
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import (
    Outcomes,
    census_of,
    owned_rows,
    poll,
    row,
    running_v2,
    settle,
    status_of,
    write_now,
)
from tests.helpers import before_each_read

NEW = "part/msg_1/prt_new.json"
OLD = "part/msg_1/prt_old.json"


def part(pid: str, text: str) -> bytes:
    return orjson.dumps({"id": pid, "type": "text", "text": text})


def slow_batches(settle_s: float = 2.0) -> V2Config:
    """A long batch window: a delete lands while the key waits in the open batch."""
    return V2Config(
        accumulator=AccumulatorConfig(window_ms=1000, idle_ms=None),
        processor=ProcessorConfig(settle_s=settle_s),
        reconciler=ReconcilerConfig(interval_s=3600),
    )


def test_deleted_while_its_key_waits_in_the_open_batch(root: Path, db: Path) -> None:
    write_now(root / OLD, part("prt_old", "indexed at startup"))
    outcomes = Outcomes()
    with running_v2(root, db, slow_batches(), outcomes) as v2:
        settle(v2)
        assert v2.cursor() is not None and v2.accumulator is not None
        acc = v2.accumulator
        write_now(root / NEW, part("prt_new", "never read"))
        write_now(root / OLD, part("prt_old", "rewritten, then gone"))
        poll(lambda: {NEW, OLD} <= acc.pending_paths(), 10, "both keys in the open batch")
        os.remove(root / NEW)
        os.remove(root / OLD)
        cursor = v2.cursor()
        poll(lambda: status_of(cursor, OLD) == "deleted", 20, "the indexed file marked deleted")
        assert row(cursor, NEW) is None, "a file never indexed left a row"
        assert owned_rows(cursor, OLD) == 0
        cursor.close()
        settle(v2)
    assert outcomes.of(NEW) and {s for s, _ in outcomes.of(NEW)} == {FileStatus.DELETED}
    assert all(s is not FileStatus.ERROR for s, _ in outcomes.of(OLD))
    assert census_of(db, root) == []


def test_deleted_between_the_stat_and_the_open(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrowest window, made certain: the file vanishes as the reader opens it."""
    write_now(root / OLD, part("prt_old", "indexed at startup"))
    victims = {str(root / NEW), str(root / OLD)}
    vanished: list[str] = []

    def delete(path: str) -> None:
        if path in victims and os.path.exists(path):
            os.remove(path)
            vanished.append(path)

    outcomes = Outcomes()
    config = V2Config(reconciler=ReconcilerConfig(interval_s=3600))
    with running_v2(root, db, config, outcomes) as v2:
        settle(v2)
        before_each_read(monkeypatch, delete)
        write_now(root / NEW, part("prt_new", "gone before it is read"))
        write_now(root / OLD, part("prt_old", "rewritten, gone before it is read"))
        cursor = v2.cursor()
        poll(lambda: len(vanished) == 2, 20, "the reader to open both files")
        poll(lambda: status_of(cursor, OLD) == "deleted", 20, "the indexed file marked deleted")
        assert row(cursor, NEW) is None
        cursor.close()
        settle(v2)
    assert all(s is not FileStatus.ERROR for s, _ in outcomes.of(NEW) + outcomes.of(OLD))
    assert census_of(db, root) == []


def test_an_indexed_file_caught_torn_then_deleted_leaves_no_rows(root: Path, db: Path) -> None:
    data = part("prt_old", "indexed, then torn, then deleted")
    write_now(root / OLD, data)
    config = V2Config(
        processor=ProcessorConfig(settle_s=2.0), reconciler=ReconcilerConfig(interval_s=3600)
    )
    with running_v2(root, db, config) as v2:
        settle(v2)
        write_now(root / OLD, data[:12])  # a reader catches the rewrite half done: pending
        cursor = v2.cursor()
        poll(lambda: status_of(cursor, OLD) == "pending", 20, "pending")
        os.remove(root / OLD)  # the session is deleted before the rewrite completes
        poll(lambda: status_of(cursor, OLD) == "deleted", 20, "deleted")
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []
