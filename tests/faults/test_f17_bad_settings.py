"""F17: hostile settings given to the real `python -m indexer`: nan, inf, 1e308, 1e400, garbage,
negative, zero and huge values in the variables and the numeric flags.

Each is refused before anything is opened or written: exit code 2, one line on stderr naming the
setting and what it accepts, no traceback, no hang (the old `simulate --duration nan` ran
forever, `OCINDEX_MAX_FILE_BYTES=1e308` killed the reader thread and `index` hung). The full
matrix of every setting and value runs in-process in tests/unit/test_config.py; this is the
representative subset end to end. Values at the edges of the ranges are taken and index
cleanly. A database or store path that is a fifo ends in one line and exit 1, never a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from indexer.simulate import OpenCodeSimulator
from tests.faults.support import REPO, census_of, cli

CASES = [
    ("index", [], {"OCINDEX_MAX_BATCH_FILES": "1e400"}),
    ("index", [], {"OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "nan"}),
    ("index", [], {"OCINDEX_MAX_FILE_BYTES": "1e308"}),
    ("index", [], {"OCINDEX_WINDOW_MS": "-inf"}),
    ("index", [], {"OCINDEX_SETTLE_S": "garbage"}),
    ("run", [], {"OCINDEX_RECONCILE_INTERVAL_S": "inf"}),
    ("run", [], {"OCINDEX_ALERT_ERROR_RATE": "1e400"}),
    ("run", [], {"OCINDEX_ALERT_P95_MS": "-1"}),
    ("run", [], {"OCINDEX_ALERT_MIN_FILES": "9" * 40}),
    ("run", [], {"UNIFIED_INDEXER_V2_ENABLED": "abc"}),
    ("index", [], {"UNIFIED_INDEXER_V2_ROLLOUT": "nan"}),
    ("index", [], {"OCINDEX_LOCK_WAIT_S": "1e308"}),
    ("status", [], {"OCINDEX_LOCK_WAIT_S": "forever"}),
    ("status", ["--window", "nan"], {}),
    ("status", ["--window", "0"], {}),
    ("run", ["--metrics-port", "65536"], {}),
    ("run", ["--metrics-port", "0"], {}),
    ("index", ["--settle-timeout", "inf"], {}),
    ("simulate", ["--duration", "nan", "--rate", "5"], {}),
    ("simulate", ["--rate", "1e400"], {}),
    ("simulate", ["--sessions", "1e308", "--once"], {}),
]


def run_with(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails here
        check=False,
    )


def command_argv(command: str, flags: list[str], root: Path, db: Path) -> list[str]:
    if command == "simulate":
        return cli("simulate", "--root", root / "sim", *flags)
    if command == "status":
        return cli("status", "--db", db, *flags)
    return cli(command, "--storage", root, "--db", db, "--indexer", "v2", *flags)


@pytest.mark.parametrize(
    ("command", "flags", "env"), CASES, ids=[f"{c}-{f or e}" for c, f, e in CASES]
)
def test_a_hostile_setting_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, root: Path, command: str, flags: list[str], env: dict[str, str]
) -> None:
    OpenCodeSimulator(root, seed=61).write_sessions(1)
    db = tmp_path / "index.duckdb"
    if command == "status":  # status needs a database to get as far as its settings
        argv = cli("index", "--storage", root, "--db", db, "--indexer", "v1")
        assert run_with(argv, {}).returncode == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run_with(command_argv(command, flags, root, db), env)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.splitlines()
    name = next(iter(env)) if env else flags[0]
    assert line.startswith(f"ocindex: error: {name}"), line
    assert "; accepted: " in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing may be created"
    assert not (tmp_path / "sim").exists()


def test_values_at_the_edges_of_the_ranges_are_taken_and_index_cleanly(
    tmp_path: Path, root: Path
) -> None:
    OpenCodeSimulator(root, seed=62, faults=True).write_sessions(3)
    db = tmp_path / "index.duckdb"
    edges = {
        "OCINDEX_WINDOW_MS": "0",
        "OCINDEX_MAX_BATCH_FILES": "1e3",
        "OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "0",
        "OCINDEX_MAX_FILE_BYTES": str(1 << 30),
        "OCINDEX_SETTLE_S": "0",
        "OCINDEX_RECONCILE_INTERVAL_S": "86400",
        "OCINDEX_ALERT_ERROR_RATE": "1",
        "OCINDEX_ALERT_P95_MS": "0",
        "OCINDEX_ALERT_MIN_FILES": "0",
        "OCINDEX_LOCK_WAIT_S": "300",
        "UNIFIED_INDEXER_V2_ENABLED": "on",
        "UNIFIED_INDEXER_V2_ROLLOUT": "1.0",
    }
    argv = cli("index", "--storage", root, "--db", db, "--json", "--settle-timeout", "86400")
    done = run_with(argv, edges)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["indexer"] == "v2" and summary["pending"] == 0
    status = run_with(cli("status", "--db", db, "--window", "31536000", "--json"), edges)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["file_index"]["indexed"] == summary["indexed"]
    assert census_of(db, root) == []


@pytest.mark.parametrize("which", ["--db", "--opencode-db"])
def test_a_path_that_is_a_fifo_is_one_line_and_exit_1_never_a_hang(
    tmp_path: Path, which: str
) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    fifo = tmp_path / "a_fifo"
    os.mkfifo(fifo)  # opening one for reading waits for a writer, forever
    db = fifo if which == "--db" else tmp_path / "index.duckdb"
    argv = ["index", "--storage", root, "--db", db]
    if which == "--opencode-db":
        argv += ["--opencode-db", fifo]
    done = run_with(cli(*argv), {})
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ocindex: error:") and "not a regular file" in last, done.stderr
    assert "Traceback" not in done.stderr
