"""The reconciler pane's catches are honest: the demo at steady state reports none, and a watcher
that drops events on purpose makes them appear. Real demo activity, real files, real DuckDB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from indexer.service import IndexerService
from indexer.simulate.demo import DemoWriter
from tests.helpers import drop_half_the_events

STEADY_S = 8.0  # a minute (and 20 s at a scan every 2 s) showed the same
SCAN_EVERY_S = 1.0


@contextmanager
def running_demo(tmp_path: Path) -> Iterator[IndexerService]:
    """The dashboard's demo engine (open_service(demo=True)) on a tree under tmp_path."""
    root = tmp_path / "storage"
    root.mkdir()
    writer = DemoWriter(root, 60.0)
    service = IndexerService(root, tmp_path / "index.duckdb", cli_choice="v2", env={}, demo=True)
    service.start()
    try:
        service.start_demo_writer(writer)
        yield service
    finally:
        service.stop()


def catches_over(service: IndexerService, seconds: float, enough: int | None = None) -> list[int]:
    """Rescan every SCAN_EVERY_S for `seconds` (or until `enough` catches); each scan's catches."""
    deadline = time.monotonic() + seconds
    paced = threading.Event()  # never set: its wait paces the scans while the demo writes
    counts: list[int] = []
    while time.monotonic() < deadline and (enough is None or sum(counts) < enough):
        paced.wait(SCAN_EVERY_S)
        assert service.current is not None
        report = service.current.rescan()
        assert report is not None
        counts.append(report.catches)
    return counts


def test_demo_reconciler_reports_no_catch_over_steady_activity(
    tmp_path: Path,
) -> None:
    with running_demo(tmp_path) as service:
        counts = catches_over(service, STEADY_S)
        found = sum(s.new_files + s.modified_files for s in service.snapshot().reconciles)
    assert len(counts) >= 6
    assert found > 0, "the scans found nothing in flight: the demo wrote nothing?"
    assert counts == [0] * len(counts)


def test_demo_reconciler_reports_catches_when_the_watcher_drops_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_half_the_events(monkeypatch)
    monkeypatch.setenv("OCINDEX_WATCHER_PROCESS", "0")  # the events are dropped in this process
    with running_demo(tmp_path) as service:
        # A dropped file counts once it is older than the settle time: the first catches come
        # within a few scans, how many depends on the demo's story (1 in 4 scans, or none).
        counts = catches_over(service, 30 * SCAN_EVERY_S, enough=1)
        shown = [s.catches for s in service.snapshot().reconciles]
    assert sum(counts) > 0
    assert sum(shown) > 0, "the snapshot's scans do not carry the catches"
