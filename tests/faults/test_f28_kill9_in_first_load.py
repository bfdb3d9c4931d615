"""F28: kill -9 of `ocindex run` while a first catch-up's bulk batch is inside its transaction
(its data rows and file_index rows written, no COMMIT yet), then a restart with `index` or `run`.

Expected, as for a regular batch (F1): the bulk batches committed before the kill are intact;
the one in flight is absent from the data tables and file_index; the restart (its index is no
longer empty: the regular way) ingests it and everything changed meanwhile; the census holds.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from indexer.simulate import OpenCodeSimulator
from tests.faults.support import (
    census_of,
    cli,
    driver,
    index_once,
    owned_rows,
    reading,
    scalar,
    spawned,
)
from tests.faults.test_f01_kill9_mid_batch import SETTLE_S, committed_state_problems, newest_age_s
from tests.helpers import wait_until

HANG_AT_BATCH = 3
BATCH_FILES = 100


@pytest.mark.parametrize("restart", ["index", "run"])
def test_kill_9_inside_a_bulk_batch_then_restart(
    tmp_path: Path, root: Path, db: Path, restart: str
) -> None:
    OpenCodeSimulator(root, seed=11).write_sessions(6)
    marker = tmp_path / "in_tx.json"
    spec = {
        "mode": "cli",
        "argv": ["run", "--storage", root, "--db", db, "--indexer", "v2"],
        "hang_in_first_load": {
            "batch": HANG_AT_BATCH,
            "files": BATCH_FILES,
            "marker": str(marker),
        },
    }
    with spawned(driver(spec)) as run:
        assert wait_until(marker.exists, 60), run.log()
        run.signal(signal.SIGKILL)
        assert run.wait(30) == -signal.SIGKILL
    in_flight = json.loads(marker.read_text())
    assert in_flight, "the hooked batch named no files"

    with reading(db) as conn:
        bulk = scalar(conn, "SELECT count(*) FROM batch_log WHERE trigger = 'catch_up'")
        tracked = {r[0] for r in conn.execute("SELECT file_path FROM file_index").fetchall()}
        logged_files = scalar(conn, "SELECT coalesce(sum(files), 0) FROM batch_log")
        leftovers = {rel: owned_rows(conn, rel) for rel in in_flight}
    assert bulk == HANG_AT_BATCH - 1, "earlier bulk batches must survive the kill"
    assert len(tracked) == logged_files
    assert not tracked & set(in_flight), "the uncommitted batch reached file_index"
    assert not any(leftovers.values()), f"the uncommitted batch left data rows: {leftovers}"
    assert committed_state_problems(db, root) == []

    OpenCodeSimulator(root, seed=12, faults=True).write_sessions(2)
    if restart == "index":
        index_once(root, db)
    else:
        with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as again:
            again.wait_for("running v2", 60)
            assert wait_until(lambda: newest_age_s(root) > SETTLE_S + 0.5, 30)
            again.signal(signal.SIGTERM)
            assert again.wait(120) == 0, again.log()
    assert census_of(db, root) == []
