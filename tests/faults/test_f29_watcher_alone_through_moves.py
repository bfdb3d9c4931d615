"""F29: the watcher alone keeps the index right through a burst of new folders, folder renames,
deletes and rewrites, while the index is still catching up with them.

The reconciler runs once, at the start, on an empty tree, and never again (an hour's interval);
a watcher that lost an event would say so (a reconcile would be logged). At the end the census
holds, and only the startup scan is in reconcile_log: every file was indexed, moved, rewritten
or removed from the watcher's events alone. With Linux's observer (pipeline.inotify_inline):
watchdog's own, the fallback elsewhere, left a file deleted inside a just-renamed folder
indexed in 2 runs of 10 (the reconciler's next scan catches it there).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from indexer.simulate import OpenCodeSimulator
from indexer.simulate.replay import replay_in_process
from tests.faults.support import census_of, reading, running_v2, settle


def test_the_watcher_alone_follows_renamed_folders_deletes_and_rewrites(
    root: Path, db: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    OpenCodeSimulator(source, seed=29).write_sessions(12)
    rng = random.Random(29)
    config = V2Config(reconciler=ReconcilerConfig(interval_s=3600))
    with running_v2(root, db, config) as v2:
        replay_in_process(source, root)  # another process, as fast as it can
        for folder in rng.sample(sorted((root / "message").iterdir()), 4):
            os.rename(folder, folder.with_name(folder.name + "_renamed"))
        for folder in rng.sample(sorted((root / "part").iterdir()), 10):
            os.rename(folder, folder.with_name(folder.name + "_renamed"))
        for file in rng.sample(sorted((root / "part").rglob("*.json")), 20):
            file.unlink()
        for file in rng.sample(sorted((root / "message").rglob("*.json")), 10):
            file.write_bytes(file.read_bytes())  # the same bytes again, in place
        settle(v2, 60, 1.0)
    assert census_of(db, root) == []
    with reading(db) as conn:
        scans = conn.execute("SELECT count(*) FROM reconcile_log").fetchone()
    assert scans == (1,)  # the startup scan only: no event was lost
