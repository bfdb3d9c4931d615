"""F12: the database is held by another process when `ocindex run` or `ocindex index` starts.

DuckDB lets one process open a file read-write, and refuses a writer while any other process
(even a read-only one) has it open. The command retries for OCINDEX_LOCK_WAIT_S (0.5 s here;
F16 covers the wait itself), then fails: exit code 1, one clear line on stderr naming the
holder's PID, no traceback, and nothing written. Once the holder is gone the same command works.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from indexer.simulate import OpenCodeSimulator
from tests.faults.support import census_of, index_once, run_cli, spawned
from tests.helpers import wait_until

HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
    "print('held', flush=True); sys.stdin.read()"
)


@pytest.mark.parametrize("mode", ["rw", "ro"])
@pytest.mark.parametrize("command", ["run", "index"])
def test_a_held_database_fails_fast_with_one_line_naming_the_holder(
    root: Path, db: Path, mode: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCINDEX_LOCK_WAIT_S", "0.5")
    OpenCodeSimulator(root, seed=3).write_sessions(1)
    index_once(root, db)  # the file exists, so a read-only holder can open it
    size = db.stat().st_size
    with spawned([sys.executable, "-c", HOLD, str(db), mode], stdin=True) as holder:
        assert wait_until(lambda: holder.out == ["held"], 30), holder.log()
        extra = ["--json"] if command == "index" else []
        done = run_cli(
            command, "--storage", root, "--db", db, "--indexer", "v2", *extra, timeout_s=60
        )
        assert holder.proc.poll() is None, "the holder must still hold the file"
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("ocindex: error: database ")
    assert f"in use by process {holder.pid} " in lines[0], lines[0]
    assert done.stdout == ""
    assert db.stat().st_size == size
    OpenCodeSimulator(root, seed=4).write_sessions(1)  # the holder is gone: the command works
    index_once(root, db)
    assert census_of(db, root) == []
