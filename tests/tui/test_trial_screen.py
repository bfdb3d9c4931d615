"""The A/B trial from the A/B view: `t` picks a workload, the trial runs in a worker with
progress, escape cancels it (its scratch data removed), the result shows v1 and v2 side by side.
Driven through Pilot over fake trials, and over a real one (real engines) that escape cancels;
tests/integration/test_trial.py runs the trial itself to the end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import OptionList, Static

from indexer.trial import (
    PRESETS,
    IndexerTrial,
    Trial,
    TrialCancelled,
    TrialProgress,
    TrialResult,
    Workload,
)
from tests.tui.fakes import FakeFacade, make_app, settle, until
from tests.tui.test_keys import start
from tui.app import OcindexApp
from tui.screens.ab import ABScreen
from tui.screens.trial import TrialPicker, TrialRun, TrialScreen

SIZE = (120, 36)


def run_of(version: str, files_per_s: float, cpu_s: float, batch: float) -> IndexerTrial:
    return IndexerTrial(
        version=version,
        files_written=2_000,
        files_indexed=2_000,
        files_committed=2_000 if version == "v1" else 2_412,
        seconds=2_000 / files_per_s,
        files_per_s=files_per_s,
        batch_p50_ms=batch,
        batch_p95_ms=batch * 3.1,
        event_p50_ms=9_400.0 if version == "v1" else 310.0,
        event_p95_ms=17_800.0 if version == "v1" else 640.0,
        errors=0,
        catches=0,
        cpu_s=cpu_s,
        caught_up=True,
        writer_files_per_s=21_500.0,
    )


FIXED = TrialResult(
    Workload(2_000, 0.0),
    run_of("v1", 112.0, 14.2, 8.4),
    run_of("v2", 1_870.0, 1.9, 61.0),
)
"""A fixed result, so the snapshots are deterministic."""


class FakeTrial:
    """Reports two steps of progress and returns `result`; with `hold`, waits until cancelled."""

    def __init__(self, result: TrialResult = FIXED, hold: bool = False, fail: str = "") -> None:
        self.result = result
        self.hold = hold
        self.fail = fail
        self.cancelled = threading.Event()
        self.started = threading.Event()

    def run(self, on_progress: Callable[[TrialProgress], object]) -> TrialResult:
        on_progress(TrialProgress("generating", 0, 2_000))
        on_progress(TrialProgress("v1", 900, 2_000))
        self.started.set()
        if self.hold:
            self.cancelled.wait(10)
            if self.fail:  # what the killed processes broke on the way out
                raise RuntimeError(self.fail)
            raise TrialCancelled("trial cancelled")
        if self.fail:
            raise RuntimeError(self.fail)
        return self.result

    def cancel(self) -> None:
        self.cancelled.set()


def ab_with(app: OcindexApp, trials: Callable[[Workload], TrialRun]) -> ABScreen:
    screen = ABScreen(app.facade, "v2", None, trials=trials)
    app.push_screen(screen)
    return screen


def shown(app: OcindexApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_t_in_the_ab_view_runs_the_picked_workload_and_shows_both_side_by_side(
    facade: FakeFacade,
) -> None:
    asked: list[Workload] = []

    def trials(workload: Workload) -> TrialRun:
        asked.append(workload)
        return FakeTrial()

    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        ab_with(app, trials)
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TrialPicker)
        options = app.screen.query_one(OptionList)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(len(PRESETS))]
        assert prompts == [f"{PRESETS[0].name} (default)", *(w.name for w in PRESETS[1:])]
        await pilot.press("down", "enter")
        await settle(pilot)
        assert asked == [PRESETS[1]]
        screen = app.screen
        assert isinstance(screen, TrialScreen) and screen.result == FIXED
        text = shown(app, "#trial-result")
        assert "files/s" in text and "112/s" in text and "1.9k/s" in text
        assert "×16.70" in text and "CPU time" in text and "14s" in text
        assert "workload: 2,000 files, unpaced (seed 303)" in text
        assert f"· {PRESETS[1].name}" in str(screen.query_one("#trial-body").border_title)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ABScreen)


async def test_escape_in_the_picker_runs_nothing(facade: FakeFacade) -> None:
    asked: list[Workload] = []
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        ab_with(app, lambda w: asked.append(w) or FakeTrial())  # type: ignore[func-returns-value]
        await settle(pilot)
        await pilot.press("t", "escape")
        await pilot.pause()
        assert isinstance(app.screen, ABScreen) and asked == []


# The second: the processes killed by the cancel break something on the way out.
@pytest.mark.parametrize("ends_with", ["", "Expecting value: line 1 column 9"])
async def test_escape_while_a_trial_runs_cancels_it_closes_the_screen_and_says_so(
    facade: FakeFacade, ends_with: str
) -> None:
    trial = FakeTrial(hold=True, fail=ends_with)
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        ab_with(app, lambda _w: trial)
        await settle(pilot)
        await pilot.press("t", "enter")
        await until(pilot, trial.started.is_set, "the trial to start")
        await until(pilot, lambda: "900 of 2,000" in shown(app, "#trial-status"), "progress")
        await pilot.press("escape")
        await settle(pilot)
        assert trial.cancelled.is_set()
        assert isinstance(app.screen, ABScreen)
        assert any(n.title == "Trial cancelled" for n in app._notifications)


async def test_a_failed_trial_says_why_and_escape_closes_it(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        ab_with(app, lambda _w: FakeTrial(fail="v1 trial process ended (1): boom"))
        await settle(pilot)
        await pilot.press("t", "enter")
        await settle(pilot)
        assert "the trial failed: v1 trial process ended (1): boom" in shown(app, "#trial-status")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ABScreen)


async def test_escape_cancels_a_real_trial_and_its_scratch_data_goes(
    facade: FakeFacade, tmp_path: Path
) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        ab_with(app, lambda _w: Trial(Workload(files=2_000, rate=200.0), base=tmp_path))
        await settle(pilot)
        await pilot.press("t", "enter")
        await until(pilot, lambda: "v1:" in shown(app, "#trial-status"), "v1 to be indexing", 60)
        assert any(tmp_path.iterdir())
        await pilot.press("escape")

        def on_screen() -> str:
            status = app.screen.query("#trial-status")
            return f"{type(app.screen).__name__}: {status.first(Static).render() if status else ''}"

        await until(
            pilot,
            lambda: isinstance(app.screen, ABScreen),
            "the trial screen to close",
            state=on_screen,
        )
        assert list(tmp_path.iterdir()) == []
