"""The A/B trial runner end to end: real generated files, real v1 and v2 engines in their own
processes, real scratch databases; and the scratch data gone afterwards, also on cancel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from indexer.trial import (
    PRESETS,
    Trial,
    TrialCancelled,
    TrialFailed,
    TrialProgress,
    TrialResult,
    Workload,
    _send,
    as_json,
)


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a killed child not waited for)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_trial_runs_the_same_workload_through_v1_and_v2_and_removes_its_scratch(
    tmp_path: Path,
) -> None:
    seen: list[TrialProgress] = []
    trial = Trial(Workload(files=60), base=tmp_path, catch_up_s=120)

    result = trial.run(seen.append)

    assert isinstance(result, TrialResult)
    assert result.workload.name == "60 files, unpaced"
    for version, run in (("v1", result.v1), ("v2", result.v2)):
        assert run.version == version
        assert run.files_written == 60
        assert run.files_indexed == 60, f"{version} indexed {run.files_indexed} of 60 files"
        assert run.files_committed >= 60
        assert run.caught_up
        assert run.errors == 0
        assert run.catches == 0
        assert run.files_per_s > 0
        assert run.batch_p50_ms is not None and run.batch_p95_ms is not None
        assert run.batch_p50_ms <= run.batch_p95_ms
        assert run.event_p50_ms is not None and run.event_p95_ms is not None
        assert run.cpu_s > 0
    assert result.ratio == pytest.approx(result.v2.files_per_s / result.v1.files_per_s)
    assert as_json(result)["ratio"] == result.ratio
    assert seen[0].stage == "generating"
    assert {p.stage for p in seen} >= {"v1", "v2"}
    assert list(tmp_path.iterdir()) == [], "the scratch folder was left behind"


def test_trial_cancel_ends_its_processes_and_removes_its_scratch(tmp_path: Path) -> None:
    trial = Trial(Workload(files=2_000, rate=200.0), base=tmp_path)
    pids: list[int] = []

    def progress(p: TrialProgress) -> None:
        if p.stage == "v1" and not pids:
            pids.extend(trial.pids())
            trial.cancel()

    with pytest.raises(TrialCancelled):
        trial.run(progress)

    assert len(pids) == 2, "the indexer and the writer process were both running"
    assert not any(_alive(pid) for pid in pids)
    assert list(tmp_path.iterdir()) == []


def test_whatever_breaks_after_a_cancel_is_the_cancel(tmp_path: Path) -> None:
    trial = Trial(Workload(files=2_000, rate=200.0), base=tmp_path)

    def progress(p: TrialProgress) -> None:
        if p.stage == "v1":
            trial.cancel()
            raise ValueError("a JSON line cut short by the kill")

    with pytest.raises(TrialCancelled):
        trial.run(progress)
    assert list(tmp_path.iterdir()) == []


def test_trial_cancelled_before_it_starts_runs_nothing(tmp_path: Path) -> None:
    trial = Trial(Workload(files=50), base=tmp_path)
    trial.cancel()

    with pytest.raises(TrialCancelled):
        trial.run()

    assert list(tmp_path.iterdir()) == []


def test_a_trial_process_that_fails_is_a_trial_failed_naming_its_log_and_leaves_no_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "base"
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'engine exploded' >&2\nexit 3\n")
    broken.chmod(0o755)
    trial = Trial(Workload(files=20), base=base)
    monkeypatch.setattr(sys, "executable", str(broken))

    with pytest.raises(TrialFailed, match=r"v1 trial: expected 'ready'.*exit 3.*engine exploded"):
        trial.run()

    assert list(base.iterdir()) == []


def test_trial_progress_counts_each_indexer_for_half() -> None:
    assert TrialProgress("generating", 0, 100).fraction == 0.0
    assert TrialProgress("v1", 50, 100).fraction == pytest.approx(0.25)
    assert TrialProgress("v2", 100, 100).fraction == pytest.approx(1.0)
    assert TrialProgress("v2", 250, 100).fraction == pytest.approx(1.0)


def test_workload_names_its_size_and_pace() -> None:
    assert PRESETS[0] == Workload(2_000, 0.0)
    assert Workload(2_000, 500.0).name == "2,000 files at 500 files/s"


def test_ending_a_process_that_never_read_its_last_line_raises_nothing(tmp_path: Path) -> None:
    """A line sent to a process already killed stays buffered; closing its pipe flushed it and
    raised BrokenPipeError, which skipped the scratch removal after a cancel."""
    trial = Trial(Workload(files=50), base=tmp_path)
    with (tmp_path / "trial.log").open("w") as log:
        proc = trial._spawn(["json.tool", "--help"], log)  # exits without reading its stdin
    proc.wait()
    _send(proc, "written 5")
    assert proc.stdin is not None and not proc.stdin.closed
    trial._end_all()
    assert proc.stdin.closed and trial.pids() == ()
