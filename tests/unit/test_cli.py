"""The headless commands in-process: exit codes, one-line errors, and which settings each needs.
The subprocess runs (`python -m indexer ...`) live in the integration and fault tests."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from indexer.cli import build_parser, main, run_command
from indexer.cli.indexing import Progress
from indexer.facade import IndexerStats
from indexer.pipeline import first_load
from indexer.pipeline.reconciler import PARALLEL_WALK_MIN_FILES
from indexer.simulate import OpenCodeSimulator


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the machine's environment reaches the commands."""
    for name in (
        "OCINDEX_STORAGE",
        "OCINDEX_DB",
        "OPENCODE_DB",
        "UNIFIED_INDEXER_V2_ENABLED",
        "UNIFIED_INDEXER_V2_ROLLOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_no_command_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "index" in capsys.readouterr().out


def test_every_command_group_is_in_the_parser() -> None:
    _, sub = build_parser()
    assert set(sub.choices) == {
        "index",
        "run",
        "status",
        "rollback",
        "query",
        "export",
        "simulate",
        "bench",
        "usage",
        "search",
    }


def test_the_help_of_index_and_run_gives_the_thresholds_the_code_uses() -> None:
    """The help once said bulk loads start at 10,000 files after the code had moved to 2,000."""
    _, sub = build_parser()
    index_help = " ".join(sub.choices["index"].format_help().split())
    run_help = " ".join(sub.choices["run"].format_help().split())
    assert f"a tree of {first_load.MIN_FILES:,} files or more" in index_help
    assert f"{first_load.BATCH_FILES:,} files a commit" in index_help
    assert f"a tree of {PARALLEL_WALK_MIN_FILES:,} files or more is reconciled" in run_help


def test_index_without_storage_is_one_line_naming_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert main(["index", "--storage", str(missing), "--db", str(tmp_path / "x.duckdb")]) == 1
    line = error_line(capsys)
    assert line.startswith(f"ocindex: error: no OpenCode storage at {missing} (from --storage)")
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize("command", ["index", "run"])
def test_a_bad_variable_stops_an_engine_command_with_one_line_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    monkeypatch.setenv("OCINDEX_WINDOW_MS", "soon")
    argv = [command, "--storage", str(tmp_path), "--db", str(tmp_path / "x.duckdb")]
    assert main(argv) == 2
    assert error_line(capsys) == (
        "ocindex: error: OCINDEX_WINDOW_MS='soon' is not a number; "
        "accepted: a number from 0 to 600000"
    )
    assert not (tmp_path / "x.duckdb").exists()


def test_a_bad_rollout_variable_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UNIFIED_INDEXER_V2_ENABLED", "maybe")
    assert main(["index", "--storage", str(tmp_path), "--db", str(tmp_path / "x.duckdb")]) == 2
    line = error_line(capsys)
    assert line == (
        "ocindex: error: UNIFIED_INDEXER_V2_ENABLED='maybe' is not true or false; "
        "accepted: 1/0, true/false, yes/no, on/off"
    )


def test_status_and_rollback_without_a_database_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "none.duckdb"
    assert main(["status", "--db", str(db)]) == 1
    assert error_line(capsys) == (
        f"ocindex: error: no database at {db}; run `ocindex index --db {db}` first"
    )
    assert main(["rollback", "--db", str(db)]) == 1
    assert error_line(capsys) == f"ocindex: error: no database at {db}"


def test_index_then_status_and_rollback_even_with_a_bad_tunable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=5).write_sessions(2)
    assert (
        main(["index", "--storage", str(root), "--db", str(db), "--indexer", "v2", "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["indexer"] == "v2" and summary["files_seen"] == summary["indexed"] > 0
    assert summary["sources"] == []
    # Status and rollback read no pipeline setting: a broken one must not stand in the way.
    monkeypatch.setenv("OCINDEX_MAX_BATCH_FILES", "0")
    assert main(["status", "--db", str(db), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["file_index"]["indexed"] == summary["indexed"]
    assert status["active"] == "v2" and status["why"].startswith("default rollout 100%")
    assert main(["rollback", "--db", str(db), "--reason", "test"]) == 0
    assert (
        capsys.readouterr().out == "rolled back: rollout 0%, the next start runs v1 (was unknown)\n"
    )
    monkeypatch.setenv("UNIFIED_INDEXER_V2_ROLLOUT", "100")
    assert main(["status", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["why"].startswith("persisted rollout 0%")


def index_json(root: Path, db: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(["index", "--storage", str(root), "--db", str(db), "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_index_on_a_fresh_install_runs_v2_and_after_rollback_v1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=9).write_sessions(1)
    assert index_json(root, db, capsys)["indexer"] == "v2"
    assert main(["rollback", "--db", str(db)]) == 0
    capsys.readouterr()
    assert index_json(root, db, capsys)["indexer"] == "v1"  # the rollback is persisted


@pytest.mark.parametrize(
    ("variable", "argv"),
    [
        (("UNIFIED_INDEXER_V2_ENABLED", "false"), ()),
        (("UNIFIED_INDEXER_V2_ROLLOUT", "0"), ()),
        (None, ("--indexer", "v1")),
    ],
    ids=["enabled-false", "rollout-0", "--indexer-v1"],
)
def test_index_runs_v1_when_told_to_on_a_fresh_install(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: tuple[str, str] | None,
    argv: tuple[str, ...],
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=10).write_sessions(1)
    if variable is not None:
        monkeypatch.setenv(*variable)
    assert index_json(root, db, capsys, *argv)["indexer"] == "v1"


def test_index_text_summary_names_the_version_and_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=6).write_sessions(1)
    assert main(["index", "--storage", str(root), "--db", str(db), "--indexer", "v1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("indexed ") and " files with v1 in " in out
    assert out.rstrip().endswith(" deleted") and out.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--sessions", "-1"], 2, "--sessions '-1' is out of range; accepted: a whole number"),
        (["--duration", "nan"], 2, "--duration 'nan' is not a finite number; accepted: a number"),
        (["--rate", "1e400"], 2, "--rate '1e400' is not a finite number"),
        (["--sqlite", "--faults"], 1, "--faults applies to JSON files only"),
    ],
)
def test_simulate_refuses_impossible_requests_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert main(["simulate", "--root", str(tmp_path / "r"), *argv]) == code
    assert error_line(capsys).startswith(f"ocindex: error: {message}")
    assert not (tmp_path / "r").exists()


def stats(files_processed: int, pending_files: int) -> IndexerStats:
    return IndexerStats(
        version="v2",
        running=True,
        batches=1,
        files_processed=files_processed,
        db_errors=0,
        fatal=None,
        pending_files=pending_files,
        oldest_pending_age_s=None,
        queue_depth=0,
        delayed_files=0,
    )


def test_progress_writes_one_line_on_a_terminal_only(capsys: pytest.CaptureFixture[str]) -> None:
    quiet = Progress(enabled=False)
    quiet.show(stats(5, 0), 1.0)
    quiet.done()
    assert capsys.readouterr().err == ""
    shown = Progress(enabled=True)
    shown.show(stats(10, 3), 2.0)
    shown.done()
    err = capsys.readouterr().err
    assert err == "\rindexing: 10 files done, 3 pending, 5 files/s   \n"


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--window", "nan"],
        ["status", "--window", "0"],
        ["run", "--metrics-port", "65536"],
        ["run", "--metrics-port", "http"],
        ["index", "--settle-timeout", "inf"],
        ["index", "--settle-timeout", "-1"],
        ["bench", "--files", "0"],
        ["simulate", "--root", "r", "--seed", "-1"],
        ["simulate", "--root", "r", "--sessions", "2.5"],
    ],
)
def test_a_numeric_flag_out_of_range_is_one_line_naming_it_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    db = ["--db", str(tmp_path / "x.duckdb")] if argv[0] in ("status", "run", "index") else []
    assert main([*argv, *db]) == 2
    flag = next(a for a in argv if a.startswith("--") and a != "--root")
    line = error_line(capsys)
    assert line.startswith(f"ocindex: error: {flag} {argv[argv.index(flag) + 1]!r} ")
    assert "; accepted: " in line
    assert list(tmp_path.iterdir()) == []


def test_status_writes_nothing_even_before_an_install_id_was_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=7).write_sessions(1)
    assert main(["index", "--storage", str(root), "--db", str(db), "--indexer", "v2"]) == 0
    capsys.readouterr()
    state = tmp_path / "index.duckdb.rollout.json"
    state.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert main(["status", "--db", str(db), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["why"] == "default rollout 100%: no install id yet (the next start draws one)"
    assert status["active"] == "v2"
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_a_command_runs_with_an_owner_only_umask_and_gives_the_old_one_back() -> None:
    seen: list[int] = []

    def probe(args: argparse.Namespace) -> int:
        seen.append(os.umask(0o022))
        os.umask(seen[0])
        return 0

    previous = os.umask(0o002)
    try:
        assert run_command(argparse.Namespace(func=probe)) == 0
        assert seen == [0o077]
        assert os.umask(0o002) == 0o002
    finally:
        os.umask(previous)


def test_index_makes_the_database_and_the_rollout_file_owner_only(tmp_path: Path) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=8).write_sessions(1)
    assert main(["index", "--storage", str(root), "--db", str(db), "--indexer", "v1"]) == 0
    for path in (db, tmp_path / "index.duckdb.rollout.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
