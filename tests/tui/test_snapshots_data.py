"""SVG snapshots of the usage screen and the SQL console over a real small index with fixed rows,
read in UTC, with the app's frozen clock (plain `def` tests: snap_compare runs its own loop).
Regenerate with `pytest tests/tui --snapshot-update` after looking at the difference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from tests.tui.fakes import make_app, post_snapshot, settle, until
from tests.tui.usage_data import IndexFacade, empty_index
from tui.screens.console import ConsoleScreen, HistoryInput
from tui.screens.usage import UsageScreen

SnapCompare = Callable[..., bool]
WIDE = (120, 36)
NARROW = (80, 24)
QUERY = "SELECT session_id, title, turns, total_cost FROM session_summary ORDER BY total_cost DESC"


async def usage_read(pilot: Pilot[Any]) -> None:
    await post_snapshot()(pilot)
    await pilot.press("u")
    screen = pilot.app.screen
    assert isinstance(screen, UsageScreen)
    await until(pilot, lambda: screen.overview is not None, "the usage read")
    await settle(pilot)


async def console_answered(pilot: Pilot[Any]) -> None:
    await post_snapshot()(pilot)
    await pilot.press("c")
    screen = pilot.app.screen
    assert isinstance(screen, ConsoleScreen)
    await until(pilot, lambda: bool(screen.views), "the views listed")
    screen.query_one(HistoryInput).value = QUERY
    await pilot.press("enter")
    await until(pilot, lambda: screen.answer is not None, "the answer")
    # the rows focused, as after tab: a focused input's blinking cursor would vary by frame
    screen.query_one("#console-results").focus()
    await settle(pilot)


def test_usage_screen_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(IndexFacade()), terminal_size=WIDE, run_before=usage_read)


def test_usage_screen_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(IndexFacade()), terminal_size=NARROW, run_before=usage_read)


def test_usage_screen_empty(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(empty_index()), terminal_size=NARROW, run_before=usage_read)


def test_console_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(IndexFacade()), terminal_size=WIDE, run_before=console_answered)


def test_console_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(IndexFacade()), terminal_size=NARROW, run_before=console_answered)
