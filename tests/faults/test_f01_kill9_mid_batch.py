"""F1: kill -9 of `ocindex run` while a batch's transaction is open (its data rows and file_index
rows written, no COMMIT yet), then a restart with `index` or `run`.

Expected: the batches committed before the kill are intact; the in-flight batch is absent from
both the data tables and file_index; the restart re-ingests it and everything changed while the
process was dead; the census holds (no duplicates, no row without its file).
"""

from __future__ import annotations

import json
import signal
import threading
import time
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
from tests.helpers import census, wait_until

HANG_AT_BATCH = 2  # the first catch-up seals 100 files, then the rest while that one is in flight
SETTLE_S = 2.0  # ProcessorConfig's default, which `ocindex run` uses


def newest_age_s(root: Path) -> float:
    newest = max(p.stat().st_mtime for p in root.rglob("*") if p.is_file())
    return time.time() - newest


def committed_state_problems(db: Path, root: Path) -> list[str]:
    """The census of a partly indexed tree, minus what 'not indexed yet' explains.

    Files the kill kept out are legitimately missing; anything else (a stale or unexpected row,
    a duplicate, a pending row, a wrong hash) is a real disagreement.
    """
    with reading(db) as conn:
        problems = census(conn, root)
    return [
        p
        for p in problems
        if not p.startswith("missing from file_index:")
        and not (p.endswith(" 0 unexpected") and "rows missing or stale" in p)
    ]


@pytest.mark.parametrize("restart", ["index", "run"])
def test_kill_9_inside_a_batch_transaction_then_restart(
    tmp_path: Path, root: Path, db: Path, restart: str
) -> None:
    OpenCodeSimulator(root, seed=11).write_sessions(6)
    marker = tmp_path / "in_tx.json"
    hook = {"hang_in_tx": {"batch": HANG_AT_BATCH, "marker": str(marker)}}
    kill_inside_a_batch_then_restart(root, db, restart, hook, marker, "TRUE", HANG_AT_BATCH - 1)


def kill_inside_a_batch_then_restart(
    root: Path,
    db: Path,
    restart: str,
    hook: dict[str, object],
    marker: Path,
    batches_before: str,
    expected: int,
    command: str = "run",
) -> None:
    """`ocindex <command>` with the driver's `hook`, which names the hung batch's files in
    `marker`; kill -9 there; `expected` batch_log rows matching `batches_before` must have
    survived and nothing of the hung batch; then a restart with `restart` must leave a
    consistent index."""
    argv = [command, "--storage", root, "--db", db, "--indexer", "v2"]
    spec = {"mode": "cli", "argv": argv}
    with spawned(driver({**spec, **hook})) as run:
        assert wait_until(marker.exists, 60), run.log()
        run.signal(signal.SIGKILL)
        assert run.wait(30) == -signal.SIGKILL
    in_flight = json.loads(marker.read_text())
    assert in_flight, "the hooked batch named no files"

    with reading(db) as conn:
        committed = scalar(conn, f"SELECT count(*) FROM batch_log WHERE {batches_before}")
        tracked = {r[0] for r in conn.execute("SELECT file_path FROM file_index").fetchall()}
        logged_files = scalar(conn, "SELECT coalesce(sum(files), 0) FROM batch_log")
        leftovers = {rel: owned_rows(conn, rel) for rel in in_flight}
    assert committed == expected, "earlier batches must survive the kill"
    assert len(tracked) == logged_files
    assert not tracked & set(in_flight), "the uncommitted batch reached file_index"
    assert not any(leftovers.values()), f"the uncommitted batch left data rows: {leftovers}"
    assert committed_state_problems(db, root) == []

    # Life goes on while the indexer is dead: more sessions, rewrites and deletions.
    OpenCodeSimulator(root, seed=12, faults=True).write_sessions(2)

    if restart == "index":
        index_once(root, db)
    else:
        with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as again:
            again.wait_for("running v2", 60)  # the startup reconcile has submitted everything
            # A file that does not parse stays 'pending' until it is settle_s old (2 s by
            # default); a stop before that leaves it pending for the next start, by design.
            assert wait_until(lambda: newest_age_s(root) > SETTLE_S + 0.5, 30)
            again.signal(signal.SIGTERM)  # a clean stop commits all that was submitted
            assert again.wait(120) == 0, again.log()
    assert census_of(db, root) == []


def test_kill_9_of_a_plain_run_under_live_writes_then_run_again(root: Path, db: Path) -> None:
    """No hook: the real `python -m indexer run`, killed while a fast writer streams sessions
    (batches are being committed back to back), then restarted with `run`."""
    OpenCodeSimulator(root, seed=21).write_sessions(3)
    with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as run:
        run.wait_for("running v2", 60)
        live = OpenCodeSimulator(root, seed=22, faults=True)
        stop = threading.Event()  # the writer runs until the kill, however loaded the machine is
        writer = threading.Thread(target=live.run, args=(0, 60.0, stop))
        writer.start()
        try:
            assert wait_until(lambda: len(list((root / "part").iterdir())) > 150, 30)
            run.signal(signal.SIGKILL)
            assert run.wait(30) == -signal.SIGKILL
        finally:
            stop.set()
            writer.join()
    with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as again:
        again.wait_for("running v2", 60)
        assert wait_until(lambda: newest_age_s(root) > SETTLE_S + 0.5, 30)
        again.signal(signal.SIGTERM)
        assert again.wait(120) == 0, again.log()
    assert census_of(db, root) == []
