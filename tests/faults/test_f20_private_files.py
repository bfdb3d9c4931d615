"""F20: the database, its WAL and the rollout file hold the user's prompts and tool output; they
were created world-readable (0644).

Now every command runs with the umask tightened to owner-only, so the database, the rollout
file and each WAL DuckDB creates (anew after every checkpoint) are 0600 and a folder created
for the database is 0700, whatever the user's umask. An existing file open to every user is
tightened once, with one warning line; a group mode the owner chose is kept. Code that opens
the database itself, without the commands, still gets a 0600 database and rollout file.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.rollout import RolloutState
from indexer.simulate import OpenCodeSimulator
from indexer.store.database import open_database
from tests.faults.support import REPO, census_of, cli, spawned
from tests.helpers import wait_until


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The user's umask, for children started inside (they inherit it)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def index(root: Path, db: Path) -> subprocess.CompletedProcess[str]:
    argv = cli("index", "--storage", root, "--db", db, "--indexer", "v2")
    with umask(0o022):
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_index_creates_the_database_its_folder_and_the_rollout_file_owner_only(
    tmp_path: Path, root: Path
) -> None:
    OpenCodeSimulator(root, seed=91).write_sessions(2)
    db = tmp_path / "data" / "ocindex" / "index.duckdb"
    index(root, db)
    assert mode(db) == 0o600
    assert mode(db.with_name("index.duckdb.rollout.json")) == 0o600
    assert mode(db.parent) == 0o700
    assert census_of(db, root) == []


def test_the_wal_of_a_running_daemon_is_owner_only(root: Path, db: Path) -> None:
    OpenCodeSimulator(root, seed=92).write_sessions(2)
    wal = db.with_name(db.name + ".wal")
    seen: list[int] = []

    def wal_mode() -> bool:
        try:
            seen.append(mode(wal))
        except FileNotFoundError:
            return False
        return True

    argv = cli("run", "--storage", root, "--db", db, "--indexer", "v2")
    with umask(0o022), spawned(argv) as run:
        run.wait_for("running v2", 60)
        for seed in range(93, 100):  # each session is new commits after an idle checkpoint
            OpenCodeSimulator(root, seed=seed).write_sessions(1)
            if wait_until(wal_mode, 5, 0.005):
                break
        run.signal(signal.SIGTERM)
        assert run.wait(120) == 0, run.log()
    assert seen and set(seen) == {0o600}, [oct(m) for m in seen]
    # The stop may come before the daemon saw the last session's events: the next start
    # reconciles them (F01 covers that), and the census holds after it.
    assert index(root, db).returncode == 0
    assert mode(db) == 0o600
    assert census_of(db, root) == []


def test_an_existing_world_readable_database_is_tightened_once_and_a_group_mode_kept(
    tmp_path: Path, root: Path, db: Path
) -> None:
    OpenCodeSimulator(root, seed=101).write_sessions(1)
    index(root, db)
    state = db.with_name(db.name + ".rollout.json")
    db.chmod(0o644)  # as older versions left them
    state.chmod(0o644)
    first = index(root, db)
    assert (mode(db), mode(state)) == (0o600, 0o600)
    warnings = [line for line in first.stderr.splitlines() if "open to every user" in line]
    assert len(warnings) == 2, first.stderr
    assert any(
        f"{db} was open to every user (0644); made it owner-only (0600)" in w for w in warnings
    )
    second = index(root, db)
    assert "open to every user" not in second.stderr  # said once: there is nothing left to say
    db.chmod(0o640)  # the owner shares it with a group on purpose
    state.chmod(0o640)
    third = index(root, db)
    assert (mode(db), mode(state)) == (0o640, 0o640)
    assert "open to every user" not in third.stderr
    assert census_of(db, root) == []


def test_opening_the_database_outside_the_commands_still_makes_it_owner_only(
    tmp_path: Path, root: Path
) -> None:
    db = tmp_path / "lib" / "index.duckdb"
    with umask(0o022):
        conn = open_database(db)
        conn.close()
        state = RolloutState(db)
        state.install_id()
    assert (mode(db), mode(state.path), mode(db.parent)) == (0o600, 0o600, 0o700)
    OpenCodeSimulator(root, seed=102).write_sessions(1)
    index(root, db)
    assert census_of(db, root) == []
