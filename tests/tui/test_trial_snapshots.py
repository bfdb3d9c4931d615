"""SVG snapshots of the A/B trial: its result at 120×36 and 80×24 from a fixed TrialResult (so
they are deterministic), and the workload picker. Regenerate with `--snapshot-update`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.screen import Screen

from indexer.trial import Workload
from tests.tui.fakes import make_app, post_snapshot, settle
from tests.tui.test_trial_screen import FakeTrial
from tui.screens.trial import TrialPicker, TrialScreen

SnapCompare = Callable[..., bool]
WIDE = (120, 36)
NARROW = (80, 24)


def then_push(make: Callable[[], Screen[Any]]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    first = post_snapshot()

    async def run_before(pilot: Pilot[Any]) -> None:
        await first(pilot)
        pilot.app.push_screen(make())
        await settle(pilot)

    return run_before


def result_screen() -> TrialScreen:
    return TrialScreen(Workload(2_000, 0.0), FakeTrial())


def test_trial_result_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=then_push(result_screen))


def test_trial_result_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_push(result_screen))


def test_trial_picker_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_push(TrialPicker))
