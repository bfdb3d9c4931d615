"""F30: SIGINT or SIGTERM to `ocindex run` during a long first catch-up.

A first catch-up runs inside start(), before the run's signal loop: a million files took 14 s
to load, and a Ctrl-C in the middle waited for the end of it, then for the watcher's start.
Expected: the batches in hand commit and no further one starts, the watcher never starts, the
run exits cleanly (0, its summary line, no traceback) and says how many files it left; the next
start finds them, and the census holds.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from indexer.cli import main as cli_main
from indexer.simulate import OpenCodeSimulator
from tests.faults.support import census_of, driver, poll, reading, spawned

PAUSE_AT_BATCH = 3
BATCH_FILES = 100


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_first_catch_up_ends_it_soon_and_the_next_start_finishes_it(
    tmp_path: Path, root: Path, db: Path, sig: signal.Signals
) -> None:
    OpenCodeSimulator(root, seed=11).write_sessions(20)  # ~1,900 files: 19 batches of 100
    marker, go = tmp_path / "paused.json", tmp_path / "go"
    pause = {"batch": PAUSE_AT_BATCH, "files": BATCH_FILES, "marker": str(marker), "until": str(go)}
    argv = ["-v", "run", "--storage", root, "--db", db, "--indexer", "v2"]
    with spawned(driver({"mode": "cli", "argv": argv, "hang_in_first_load": pause})) as child:
        poll(marker.exists, 60, "the third batch of the catch-up")
        child.signal(sig)  # while that batch's commit waits: the signal lands mid catch-up
        go.touch()
        rc = child.wait(60)
        log = child.log()
    assert rc == 0, log
    assert "Traceback" not in log
    assert "start interrupted" in log and "v2 started" not in log  # no watcher: straight on
    assert "files found were left for the next start's reconcile" in log, log
    assert any("ocindex run stopped after" in line for line in child.out), child.out
    with reading(db) as conn:
        row = conn.execute("SELECT count(*) FROM file_index WHERE status = 'indexed'").fetchone()
    assert row is not None
    files = sum(1 for p in root.rglob("*.json"))
    # The paused batch and at most the three in hand (one waiting to commit, one read, one
    # reading) committed; the rest did not.
    assert PAUSE_AT_BATCH * BATCH_FILES <= row[0] <= (PAUSE_AT_BATCH + 3) * BATCH_FILES < files
    assert cli_main(["index", "--storage", str(root), "--db", str(db), "--indexer", "v2"]) == 0
    assert census_of(db, root) == []
