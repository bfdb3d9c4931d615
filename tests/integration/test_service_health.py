"""A real engine whose writer is between reopen attempts: the snapshot, the live status and the
metrics say why instead of failing. The invalidation itself is F24's (a real full disk); here
the writer is put in that state by hand, for speed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest
from prometheus_client import generate_latest

from indexer.live.host import ServiceHost
from indexer.metrics import PrometheusExporter
from indexer.pipeline.writer import WriterFailed
from indexer.service import IndexerService
from tests.helpers import wait_until, write

DISK_FULL = "the database was invalidated (IO Error: No space left on device); reopening it"


def test_a_writer_between_reopen_attempts_is_shown_not_raised(
    storage_root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(storage_root, "part/msg_1/prt_1.json", orjson.dumps({"id": "prt_1", "type": "text"}))
    exporter = PrometheusExporter(0)
    service = IndexerService(
        storage_root, db_path, cli_choice="v2", env={}, watch=False, exporter=exporter
    )
    service.start()
    try:
        assert wait_until(lambda: service.snapshot().totals.get("indexed", 0) == 1, 20)
        assert "index writer" not in service.snapshot().message
        writer = service._writer
        assert writer is not None

        def refused() -> duckdb.DuckDBPyConnection:
            raise WriterFailed(DISK_FULL)

        monkeypatch.setattr(writer, "cursor", refused)
        monkeypatch.setattr(writer, "condition", DISK_FULL)
        snapshot = service.snapshot()
        assert snapshot.message.startswith(f"index writer paused: {DISK_FULL} — retrying")
        assert snapshot.totals["indexed"] == 1  # the totals last read
        status = ServiceHost(service).live_status(60.0)
        report = status["report"]
        assert isinstance(report, dict)
        assert report["error"] == DISK_FULL
        assert report["live"]["condition"] == DISK_FULL
        assert report["live"]["unwatched_folders"] == 0
        assert "ocindex_writer_ok 0.0" in generate_latest(exporter.registry).decode()
        monkeypatch.undo()
        assert "ocindex_writer_ok 1.0" in generate_latest(exporter.registry).decode()
    finally:
        service.stop()
