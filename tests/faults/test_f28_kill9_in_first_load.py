"""F28: kill -9 of `ocindex index` while a first catch-up's bulk batch is inside its transaction
(its data rows and file_index rows written, no COMMIT yet), then a restart with `index` or `run`.

Expected, as for a regular batch (F1): the bulk batches committed before the kill are intact;
the one in flight is absent from the data tables and file_index; the restart (its index is no
longer empty: the regular way) ingests it and everything changed meanwhile; the census holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.simulate import OpenCodeSimulator
from tests.faults.test_f01_kill9_mid_batch import kill_inside_a_batch_then_restart

HANG_AT_BATCH = 3
BATCH_FILES = 100


@pytest.mark.parametrize("restart", ["index", "run"])
def test_kill_9_inside_a_bulk_batch_then_restart(
    tmp_path: Path, root: Path, db: Path, restart: str
) -> None:
    OpenCodeSimulator(root, seed=11).write_sessions(6)
    marker = tmp_path / "in_tx.json"
    hang = {"batch": HANG_AT_BATCH, "files": BATCH_FILES, "marker": str(marker)}
    bulk = "trigger = 'catch_up'"
    kill_inside_a_batch_then_restart(
        root, db, restart, {"hang_in_first_load": hang}, marker, bulk, HANG_AT_BATCH - 1, "index"
    )
