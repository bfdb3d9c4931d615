"""F16: another process holds the database for a moment, again and again, when ocindex starts.

A reader that opens the file read-only in a loop (a backup, a notebook, a second `status`) holds
DuckDB's lock most of the time. `ocindex index` and `ocindex run` retry with backoff for
OCINDEX_LOCK_WAIT_S and start between two of its opens; a holder that keeps the file longer
than that wait still gets the one line naming it (exit code 1), after the wait, not before.
F12 is the same refusal without the wait in the way.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from indexer.simulate import OpenCodeSimulator
from tests.faults.support import census_of, cli, index_once, run_cli, spawned
from tests.helpers import wait_until

LOOP = """
import duckdb, os, sys, time
db, stop = sys.argv[1], sys.argv[2]
opened = 0
while not os.path.exists(stop):
    try:
        conn = duckdb.connect(db, read_only=True)
    except duckdb.Error:
        time.sleep(0.01)  # the ocindex under test has it; do not spin a core meanwhile
        continue
    conn.execute("SELECT count(*) FROM file_index").fetchall()
    conn.close()
    opened += 1
    if opened == 1:
        print("looping", flush=True)
print(opened, flush=True)
"""

HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
    "print('held', flush=True); sys.stdin.read()"
)


@pytest.mark.parametrize("command", ["index", "run"])
def test_index_and_run_start_while_a_reader_opens_the_database_in_a_loop(
    tmp_path: Path, root: Path, db: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generous: on a loaded machine the loop may win many rounds; the default (5 s) is sized
    # for a desktop, and F12 shows the refusal once the wait runs out.
    monkeypatch.setenv("OCINDEX_LOCK_WAIT_S", "60")
    OpenCodeSimulator(root, seed=31).write_sessions(2)
    index_once(root, db)
    stop = tmp_path / "stop"
    with spawned([sys.executable, "-c", LOOP, str(db), str(stop)]) as loop:
        assert wait_until(lambda: loop.out[:1] == ["looping"], 30), loop.log()
        for start in range(3):  # the issue saw 2-3 of 8 restarts die: every one must start
            OpenCodeSimulator(root, seed=32 + start).write_sessions(1)
            if command == "index":
                done = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
                assert done.returncode == 0, done.stderr
                assert json.loads(done.stdout)["pending"] == 0
                continue
            argv = cli("run", "--storage", root, "--db", db, "--indexer", "v2")
            with spawned(argv) as run:
                run.wait_for("running v2", 90)
                run.signal(signal.SIGTERM)  # a clean stop commits everything submitted
                assert run.wait(120) == 0, run.log()
                assert any(line.startswith("ocindex run stopped") for line in run.out), run.out
        stop.touch()
        assert loop.wait(30) == 0, loop.log()
    assert int(loop.out[-1]) > 1, "the reader must have kept opening the database"
    assert census_of(db, root) == []


def test_a_start_waits_for_a_holder_that_lets_go_within_the_wait(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCINDEX_LOCK_WAIT_S", "60")
    OpenCodeSimulator(root, seed=41).write_sessions(1)
    index_once(root, db)
    OpenCodeSimulator(root, seed=42).write_sessions(1)
    with spawned([sys.executable, "-c", HOLD, str(db), "rw"], stdin=True) as holder:
        assert wait_until(lambda: holder.out == ["held"], 30), holder.log()
        argv = cli("-v", "index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
        with spawned(argv) as index:
            # -v shows the retries: the command is waiting, not failing.
            index.wait_for(f"is in use by process {holder.pid} ", 60)
            assert index.proc.poll() is None, index.log()
            holder.kill()  # lets go well within the wait
            assert index.wait(120) == 0, index.log()
    summary = json.loads("\n".join(index.out))
    assert summary["pending"] == 0 and summary["indexed"] == summary["files_seen"] > 0
    assert census_of(db, root) == []


@pytest.mark.parametrize("command", ["index", "run"])
def test_a_holder_that_stays_longer_than_the_wait_gets_one_line_naming_it(
    root: Path, db: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCINDEX_LOCK_WAIT_S", "1.5")
    OpenCodeSimulator(root, seed=51).write_sessions(1)
    index_once(root, db)
    size = db.stat().st_size
    with spawned([sys.executable, "-c", HOLD, str(db), "ro"], stdin=True) as holder:
        assert wait_until(lambda: holder.out == ["held"], 30), holder.log()
        started = time.monotonic()
        done = run_cli(command, "--storage", root, "--db", db, "--indexer", "v2", timeout_s=60)
        took = time.monotonic() - started
        assert holder.proc.poll() is None, "the holder must still hold the file"
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert took >= 1.5, f"gave up after {took:.2f}s, before the wait ran out"
    [line] = done.stderr.splitlines()
    assert line.startswith(f"ocindex: error: database {db} is in use by process {holder.pid} ")
    assert line.endswith(", still after 1.5s; stop that process or pass another --db"), line
    assert done.stdout == "" and db.stat().st_size == size
    index_once(root, db)  # the holder is gone: the command works
    assert census_of(db, root) == []
