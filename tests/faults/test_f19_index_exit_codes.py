"""F19: `ocindex index` tells the truth in its exit code.

An OpenCode store (`opencode.db`) held under an exclusive lock used to give "indexed N of N
files", exit code 0, with none of its rows; a file left pending when --settle-timeout ran out
did too. Now both exit 1 with the summary still printed, one `ocindex: error:` line on stderr
saying what was not read, and the same reasons under `failures` (and `unread_sources`) in the
--json summary. Once the lock is gone, or the file is whole, the next `index` exits 0 and the
index holds everything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import orjson
import pytest

from indexer.simulate import OpenCodeSimulator, SqliteSimulator
from indexer.sources.sqlite import SqliteSource
from tests.faults.support import census_of, reading, run_cli, spawned, write_now
from tests.helpers import wait_until

EXCLUSIVE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("SELECT count(*) FROM session").fetchall()
print("held", flush=True)
sys.stdin.read()
"""


def store_problems(db: Path, store: Path) -> list[str]:
    """The census of a store: every row of it is an indexed file_index entry, nothing of the
    index is pending or in error, and its data tables hold rows."""
    stamps = SqliteSource(store).stamps()
    assert stamps is not None, "the store must be readable for its census"
    rows = set(stamps.column("path").to_pylist())
    assert rows, "the store holds no rows"
    with reading(db) as conn:
        tracked = dict(conn.execute("SELECT file_path, status FROM file_index").fetchall())
        parts = conn.execute("SELECT count(*) FROM parts").fetchone()
    problems = [f"{p}: not indexed ({tracked.get(p)})" for p in rows if tracked.get(p) != "indexed"]
    problems += [f"{p}: {s}" for p, s in tracked.items() if s in ("pending", "error")]
    if not parts or not parts[0]:
        problems.append("no part rows")
    return problems


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_a_store_under_an_exclusive_lock_fails_index_and_names_it(
    tmp_path: Path, root: Path, db: Path, as_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCINDEX_LOCK_WAIT_S", "1")  # how long a busy store is scanned again
    sim = SqliteSimulator(root, seed=81)
    sim.write_sessions(2)
    sim.close()
    store = tmp_path / "opencode.db"
    extra = ["--json"] if as_json else []
    with spawned([sys.executable, "-c", EXCLUSIVE, str(store)], stdin=True) as holder:
        assert wait_until(lambda: holder.out == ["held"], 30), holder.log()
        done = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", *extra)
        assert holder.proc.poll() is None, "the holder must still hold the store"
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    reason = f"could not read {store} (busy: database is locked)"
    assert done.stderr.splitlines()[-1] == f"ocindex: error: {reason}"
    if as_json:
        summary = json.loads(done.stdout)
        assert summary["failures"] == [reason]
        assert summary["unread_sources"] == [
            {"path": str(store), "state": "busy", "message": "database is locked: retrying"}
        ]
        assert summary["indexed"] > 0  # the JSON files beside the store were still indexed
    else:
        assert done.stdout.startswith("indexed ") and done.stdout.count("\n") == 1
    again = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert again.returncode == 0, again.stderr
    assert "failures" not in json.loads(again.stdout)
    assert store_problems(db, store) == []


def test_files_left_pending_at_the_settle_timeout_fail_index(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    OpenCodeSimulator(root, seed=82).write_sessions(1)
    # Cut off mid-write just now: pending (not error) for OCINDEX_SETTLE_S, an hour here.
    monkeypatch.setenv("OCINDEX_SETTLE_S", "3600")
    torn = root / "part" / "msg_torn" / "prt_torn.json"
    whole = orjson.dumps({"id": "prt_torn", "type": "text", "text": "finally whole"})
    write_now(torn, whole[:20])
    done = run_cli(
        "index", "--storage", root, "--db", db, "--indexer", "v2", "--json", "--settle-timeout", "1"
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    reason = "1 file(s) left pending after --settle-timeout 1s (see `ocindex status`)"
    summary = json.loads(done.stdout)
    assert summary["pending"] == 1 and summary["failures"] == [reason]
    assert summary["unread_sources"] == []
    assert done.stderr.splitlines()[-1] == f"ocindex: error: {reason}"
    assert "Traceback" not in done.stderr
    write_now(torn, whole)
    again = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["pending"] == 0
    assert census_of(db, root) == []
