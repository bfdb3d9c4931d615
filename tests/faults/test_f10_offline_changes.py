"""F10: files created, modified and deleted while no indexer runs; then a restart.

Startup is a fresh instance: a full reconcile against file_index finds every new, modified and
deleted file, whichever command restarts (`index` one-shot, or v2 started in process).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import orjson
import pytest

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from indexer.simulate import OpenCodeSimulator
from tests.faults.support import (
    backdate,
    census_of,
    index_once,
    reading,
    running_v2,
    settle,
    write_now,
)

CONFIG = V2Config(
    processor=ProcessorConfig(settle_s=0.3), reconciler=ReconcilerConfig(interval_s=3600)
)


def stamps(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file()
    }


def change_everything(root: Path) -> None:
    """Offline edits of every sort: created, modified (several ways) and deleted files."""
    files = sorted(p for p in root.rglob("*.json") if p.is_file())
    parts = [p for p in files if p.parts[-3] == "part"]
    # modified: grown, the same bytes with a new mtime, truncated (corrupt)
    for path in parts[0:10]:
        doc = orjson.loads(path.read_bytes())
        doc["offline"] = "edited while the indexer was stopped"
        write_now(path, orjson.dumps(doc))
    for path in parts[10:15]:  # the same bytes again, with a new mtime (an hour ahead)
        write_now(path, path.read_bytes())
        ahead = time.time() + 3600
        os.utime(path, (ahead, ahead))
    write_now(parts[15], parts[15].read_bytes()[:-7])  # truncated for good: an error
    backdate(parts[15])
    # deleted: single files, and a whole message's folder of parts
    for path in parts[20:25]:
        path.unlink()
    folder = next(p.parent for p in parts[30:] if p.parent != parts[25].parent)
    shutil.rmtree(folder)
    # created: a new session in new folders, and a part in an existing folder
    OpenCodeSimulator(root, seed=99).write_sessions(1)
    write_now(
        parts[40].parent / "prt_offline.json", orjson.dumps({"id": "prt_offline", "type": "text"})
    )


@pytest.mark.parametrize("restart", ["index", "v2"])
def test_offline_creates_modifies_and_deletes_are_all_found_at_restart(
    root: Path, db: Path, restart: str
) -> None:
    OpenCodeSimulator(root, seed=41).write_sessions(4)
    with running_v2(root, db, CONFIG) as v2:
        settle(v2)
    before = stamps(root)
    change_everything(root)
    after = stamps(root)
    new = after.keys() - before.keys()
    deleted = before.keys() - after.keys()
    modified = {p for p in before.keys() & after.keys() if before[p] != after[p]}
    assert len(new) >= 10 and len(modified) >= 16 and len(deleted) >= 6
    if restart == "index":
        index_once(root, db)
    else:
        with running_v2(root, db, CONFIG) as v2:
            settle(v2)
    with reading(db) as conn:
        startup = conn.execute(
            "SELECT new_files, modified_files, deleted_files FROM reconcile_log "
            "ORDER BY scan_id DESC LIMIT 1"
        ).fetchone()
    assert census_of(db, root) == []
    assert startup == (len(new), len(modified), len(deleted))
