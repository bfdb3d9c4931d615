"""The reconciler at any tree size: stamps gathered and findings submitted in chunks, and a
report that counts every finding but names a bounded number."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from indexer.kinds import FileKey
from indexer.listing import STAMPS
from indexer.pipeline import reconciler as reconciler_module
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.reconciler import Reconciler, disk_table
from indexer.scan import walk_columns, walk_files
from tests.helpers import write


def populate(root: Path, n: int) -> None:
    for i in range(n):
        doc = orjson.dumps({"id": f"prt_{i}", "type": "text"})
        write(root, f"part/msg_{i // 10}/prt_{i:05d}.json", doc)


def test_disk_table_holds_every_row_of_every_chunk() -> None:
    rows = [(f"part/msg_1/prt_{i}.json", i * 1000, i) for i in range(10)]
    chunks = [rows[:4], rows[4:8], rows[8:]]
    table = disk_table(
        pa.RecordBatch.from_pylist(
            [dict(zip(STAMPS.names, row, strict=True)) for row in chunk], schema=STAMPS
        )
        for chunk in chunks
    )
    assert table.num_rows == 10 and table.to_batches()[0].num_rows == 4
    assert list(zip(*table.to_pydict().values(), strict=True)) == rows
    assert disk_table(iter(())).num_rows == 0


def test_walk_columns_yields_chunks_of_whole_folders_and_every_file(storage_root: Path) -> None:
    populate(storage_root, 25)  # folders of 10, 10 and 5 files
    chunks = list(walk_columns(storage_root, chunk_rows=12))
    assert [chunk.num_rows for chunk in chunks] == [20, 5]
    walked = {tuple(row.values()) for chunk in chunks for row in chunk.to_pylist()}
    assert walked == set(walk_files(storage_root)) and len(walked) == 25


def test_a_scan_submits_its_findings_in_chunks_and_reports_every_one(
    storage_root: Path, index_db: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciler_module, "CHUNK_ROWS", 10)
    monkeypatch.setattr(reconciler_module, "SUBMIT_ROWS", 10)
    monkeypatch.setattr(reconciler_module, "REPORT_PATHS_KEPT", 7)
    populate(storage_root, 25)
    calls: list[list[FileKey]] = []

    def submit(keys: list[FileKey], trigger: Trigger) -> None:
        calls.append(keys)

    report = Reconciler(storage_root, index_db.cursor, submit, set).scan_now()
    assert [len(keys) for keys in calls] == [10, 10, 5]
    assert len({k.rel_path for keys in calls for k in keys}) == 25
    assert report.files_seen == 25
    assert report.counts == (25, 0, 0, 0) and report.findings == 25
    assert len(report.new) == 7  # named: a bounded number; counted: all of them
