"""F21: the writer meets an exception that is not DuckDB's (a bug, a value nothing can store).

The batch is rolled back and committed again file by file: its neighbours land at once, the
file that fails waits with a doubling backoff, the cause is logged once, and the writer keeps
committing everything that comes after. When the cause goes away the file lands too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from indexer.pipeline import processor as processor_module
from indexer.pipeline.accumulator import AccumulatorConfig
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import census_of, poll, running_v2, settle, status_of, write_now

POISON = "part/msg_1/prt_poison.json"


def part(pid: str) -> bytes:
    return orjson.dumps({"id": pid, "type": "text", "text": f"hello from {pid}"})


class PoisonedApply:
    """apply_reads that raises a non-DuckDB error whenever the poison file is in the call."""

    def __init__(self) -> None:
        self.original = processor_module.apply_reads
        self.raising = True
        self.raised = 0

    def __call__(self, conn: Any, tracker: Any, reads: Any, prior: Any, *args: Any) -> Any:
        if self.raising and any(r.key.rel_path == POISON for r in reads):
            self.raised += 1
            raise RuntimeError("a bug the tests planted")
        return self.original(conn, tracker, reads, prior, *args)


def test_a_non_duckdb_error_fails_one_file_not_its_batch_nor_the_writer(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    poisoned = PoisonedApply()
    monkeypatch.setattr(processor_module, "apply_reads", poisoned)
    # A wide window: the poison and its neighbours share one batch.
    config = V2Config(
        accumulator=AccumulatorConfig(window_ms=300, max_files=100, idle_ms=None),
        processor=ProcessorConfig(settle_s=0.2),
    )
    neighbours = [f"part/msg_1/prt_{i}.json" for i in range(5)]
    with caplog.at_level(logging.ERROR), running_v2(root, db, config) as v2:
        for rel in [*neighbours, POISON]:
            write_now(root / rel, part(Path(rel).stem))
        cursor = v2.cursor()
        try:
            poll(
                lambda: all(status_of(cursor, rel) == "indexed" for rel in neighbours),
                20,
                "the neighbours of the poisoned file indexed",
            )
            poll(lambda: poisoned.raised >= 2, 20, "the poisoned file retried")
            assert status_of(cursor, POISON) != "indexed"
            # The writer is alive: a file written now lands while the poison keeps failing.
            write_now(root / "part/msg_2/prt_later.json", part("prt_later"))
            poll(
                lambda: status_of(cursor, "part/msg_2/prt_later.json") == "indexed",
                20,
                "a later file indexed",
            )
            poisoned.raising = False  # the cause goes away: the file lands on its next retry
            poll(lambda: status_of(cursor, POISON) == "indexed", 30, "the poisoned file indexed")
        finally:
            cursor.close()
        settle(v2)
        stats = v2.stats()
        assert stats.fatal is None and stats.db_errors >= 1
    causes = [r for r in caplog.records if "a bug the tests planted" in r.getMessage()]
    assert len(causes) == 1, [r.getMessage() for r in causes]  # logged once, not per retry
    assert census_of(db, root) == []
