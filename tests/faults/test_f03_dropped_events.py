"""F3: half of the watcher's events never arrive (every event of half the paths is dropped).

Events are hints; the periodic reconcile is the truth. With a short interval, the index must
still match the disk, and the reconciler must say it caught files the events missed: creates,
rewrites and deletions alike.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from indexer.simulate import OpenCodeSimulator
from tests.faults.support import census_of, poll, running_v2, settle
from tests.helpers import DroppingWatcher, drop_half_the_events


def test_half_the_events_dropped_the_reconciler_catches_every_change(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_half_the_events(monkeypatch)
    config = V2Config(
        processor=ProcessorConfig(settle_s=0.3),
        reconciler=ReconcilerConfig(interval_s=0.5),
    )
    with running_v2(root, db, config) as v2:
        sim = OpenCodeSimulator(root, seed=5, faults=True)
        sim.write_sessions(4)
        settle(v2)
        # Offline-style edits under the watcher's nose: rewrites (new size) and deletions.
        files = sorted(p for p in root.rglob("*.json") if p.is_file())
        for path in files[::7]:
            path.write_bytes(path.read_bytes().replace(b'"id"', b'"id" ', 1))
        for path in files[3::11]:
            path.unlink()
        last_change = time.time()
        assert v2.watcher is not None and v2.reconciler is not None
        reconciler = v2.reconciler

        def caught_up() -> bool:
            last_scan = reconciler.get_stats().last_scan_at
            return last_scan is not None and last_scan > last_change and v2.is_idle(0.3)

        poll(caught_up, 60, "a reconcile after the last change, then idle")
        assert isinstance(v2.watcher, DroppingWatcher)
        dropped = v2.watcher.dropped
        stats = reconciler.get_stats()
        deletions_caught = sum(len(r.deleted) for r in reconciler.recent)
    assert census_of(db, root) == []
    assert dropped > 0
    assert stats.catches > 0, stats  # the reconcile found what the events lost
    assert deletions_caught > 0, "no deletion was left to the reconcile"
