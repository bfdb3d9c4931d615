"""F18: the database's folder is read-only (a mounted snapshot, a backup, a wrong chmod).

`ocindex status` never writes, so it works there, even when no start has written the rollout
file yet. The commands that write (`index`, `run`, `rollback`) stop with one line naming the
folder, exit code 1, before touching anything: no PermissionError traceback from the rollout
file, no half-opened database.

We run as root here, and root's CAP_DAC_OVERRIDE ignores a folder's mode: as in F11, each
command runs in a child whose bounding set drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
(util-linux `setpriv`), or the test is skipped saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.simulate import OpenCodeSimulator
from tests.faults.support import REPO, census_of, cli, index_once

DROP_DAC = ["--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture
def unprivileged(tmp_path: Path) -> list[str]:
    """The argv prefix under which a folder's mode binds this process's children."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root (a read-only folder binds nobody) and setpriv is missing")
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o555)
    try:
        tried = subprocess.run(
            [setpriv, *DROP_DAC, sys.executable, "-c", f"open({str(probe / 'x')!r}, 'w')"],
            capture_output=True,
            check=False,
        )
    finally:
        probe.rmdir()
    if tried.returncode == 0:
        pytest.skip("running as root and dropping CAP_DAC_OVERRIDE did not make 0555 bind")
    return [setpriv, *DROP_DAC]


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "db"
    path.mkdir()
    yield path
    path.chmod(0o755)  # so pytest can clean up


def run(prefix: list[str], *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *cli(*args)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_status_works_on_a_read_only_folder_and_writes_nothing(
    root: Path, folder: Path, unprivileged: list[str]
) -> None:
    OpenCodeSimulator(root, seed=71).write_sessions(2)
    db = folder / "index.duckdb"
    indexed = index_once(root, db)["indexed"]
    # The rollout file is gone too (a copy of the database alone): status must not write it.
    (folder / "index.duckdb.rollout.json").unlink()
    folder.chmod(0o555)
    before = sorted(os.listdir(folder))
    done = run(unprivileged, "status", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["file_index"]["indexed"] == indexed
    assert status["why"] == "default rollout 100%: no install id yet (the next start draws one)"
    assert sorted(os.listdir(folder)) == before
    text = run(unprivileged, "status", "--db", db)
    assert text.returncode == 0 and "Traceback" not in text.stderr, text.stderr
    folder.chmod(0o755)
    assert census_of(db, root) == []


@pytest.mark.parametrize("command", ["index", "run", "rollback"])
@pytest.mark.parametrize("exists", [True, False], ids=["existing", "new"])
def test_a_writing_command_on_a_read_only_folder_is_one_line_naming_it(
    root: Path, folder: Path, unprivileged: list[str], command: str, exists: bool
) -> None:
    OpenCodeSimulator(root, seed=72).write_sessions(1)
    db = folder / "index.duckdb"
    if exists:
        index_once(root, db)
        (folder / "index.duckdb.rollout.json").unlink()
    folder.chmod(0o555)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    args = ["--db", db] if command == "rollback" else ["--storage", root, "--db", db]
    done = run(unprivileged, command, *args)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.splitlines()
    if command == "rollback" and not exists:
        assert line == f"ocindex: error: no database at {db}"
    else:
        assert line == (
            f"ocindex: error: the folder {folder} is read-only: ocindex writes the database's "
            "WAL and rollout file there; make it writable or pass another --db"
        )
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    folder.chmod(0o755)
    index_once(root, db)  # writable again: the same command's job gets done
    assert census_of(db, root) == []


def test_a_database_under_a_folder_that_cannot_be_created_is_one_line(
    root: Path, folder: Path, unprivileged: list[str]
) -> None:
    OpenCodeSimulator(root, seed=73).write_sessions(1)
    folder.chmod(0o555)
    db = folder / "sub" / "index.duckdb"
    done = run(unprivileged, "index", "--storage", root, "--db", db)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert (
        done.stderr == f"ocindex: error: cannot create the folder {db.parent}: Permission denied\n"
    )
    folder.chmod(0o755)
    index_once(root, db)
    assert census_of(db, root) == []
