"""The progress line of a catch-up (indexer.cli.progress): `ocindex run` and the dashboard show
it while their engine starts, since a first catch-up is loaded inside start() (a million files
took 15 s of a blank terminal). A real engine on a simulated tree."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from indexer.cli.progress import Progress
from indexer.facade import IndexerStats
from indexer.service import IndexerService
from indexer.simulate import OpenCodeSimulator


def test_the_progress_line_follows_the_engine_as_it_starts_and_says_nothing_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "storage"
    OpenCodeSimulator(root, seed=3).write_sessions(3)
    files = sum(1 for _ in root.rglob("*.json"))
    service = IndexerService(root, tmp_path / "index.duckdb", cli_choice="v2", env={}, watch=False)
    seen: list[IndexerStats | None] = []

    def stats() -> IndexerStats | None:
        seen.append(service.indexer_stats())
        return seen[-1]

    progress = Progress(enabled=True)
    progress.show(service.indexer_stats(), 1.0)  # no indexer yet: nothing to say
    assert capsys.readouterr().err == ""
    try:
        with progress.meanwhile(stats, time.monotonic()):
            service.start()
            assert service.current is not None and service.current.wait_idle(30)
        progress.done()
    finally:
        service.stop()
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith(f"indexing: {files:,} files done, 0 pending"), err
    assert err.endswith("\n")  # the line is ended for whatever prints next
    assert seen[-1] is not None and seen[-1].files_processed == files
