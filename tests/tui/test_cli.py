"""The console script: the dashboard is the default command and takes its own flags without
naming it; `--help` and the headless commands never open it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tui import entry
from tui.cli import main


@pytest.fixture
def dashboards(monkeypatch: pytest.MonkeyPatch) -> list[argparse.Namespace]:
    """Replace the dashboard: record the arguments it would have opened with."""
    opened: list[argparse.Namespace] = []

    def run(args: argparse.Namespace) -> int:
        opened.append(args)
        return 0

    monkeypatch.setattr(entry, "run_dashboard", run)
    return opened


def test_no_command_opens_the_dashboard(dashboards: list[argparse.Namespace]) -> None:
    assert main([]) == 0
    assert [(a.command, a.demo, a.storage) for a in dashboards] == [("tui", False, None)]


def test_dashboard_flags_without_a_command_reach_the_dashboard(
    dashboards: list[argparse.Namespace], tmp_path: Path
) -> None:
    assert main(["--demo", "--storage", str(tmp_path), "--indexer", "v1"]) == 0
    (args,) = dashboards
    assert args.demo and args.storage == tmp_path and args.indexer == "v1"


def test_help_lists_the_dashboard_beside_the_headless_commands(
    dashboards: list[argparse.Namespace], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["--help"])
    assert leaving.value.code == 0
    out = capsys.readouterr().out
    assert "tui" in out and "status" in out
    assert dashboards == []


def test_a_headless_command_runs_without_the_dashboard(
    dashboards: list[argparse.Namespace], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--db", str(tmp_path / "none.duckdb")]) == 1
    assert "ocindex: error:" in capsys.readouterr().err
    assert dashboards == []
