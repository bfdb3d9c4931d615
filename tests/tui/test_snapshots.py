"""SVG snapshots of every screen, from fixed fake data and a frozen clock (plain `def` tests:
snap_compare runs its own event loop). Regenerate with `pytest tests/tui --snapshot-update`."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.fakes import (
    ALERT,
    T0,
    FakeFacade,
    base_snapshot,
    make_app,
    post_snapshot,
    settle,
)
from tui.app import OcindexApp
from tui.logbook import LogBook

SnapCompare = Callable[..., bool]
WIDE = (120, 36)
NARROW = (80, 24)


def then_press(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Post the facade's snapshot, press `keys`, and wait for every worker they started."""
    first = post_snapshot()

    async def run_before(pilot: Pilot[Any]) -> None:
        await first(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def app_with(**changes: Any) -> OcindexApp:
    return make_app(FakeFacade(dataclasses.replace(base_snapshot(), **changes)))


def test_main_screen_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=post_snapshot())


def test_main_screen_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=post_snapshot())


def test_ab_view_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=then_press("a"))


def test_ab_view_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_press("a"))


def test_help_screen(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_press("question_mark"))


def test_error_detail(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_press("4", "enter"))


def test_rollback_confirm(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_press("b"))


def test_paused(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_press("p"))


def test_demo_with_alert(snap_compare: SnapCompare) -> None:
    app = app_with(demo=True, alert=ALERT, storage_root="/tmp/ocindex-demo/storage")
    assert snap_compare(app, terminal_size=WIDE, run_before=post_snapshot())


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["narrow", "wide"])
def test_empty_engine(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    app = app_with(
        active="v1",
        rollout_percent=0,
        running=False,
        files_per_s=0.0,
        totals={},
        pending_count=0,
        oldest_pending_age_s=None,
        queue_depth=0,
        pending=(),
        recent_batches=(),
        throughput=(),
        reconciles=(),
        errors=(),
        message="storage root is not readable: permission denied",
    )
    assert snap_compare(app, terminal_size=size, run_before=post_snapshot())


def test_rollout_confirmation_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=then_press("minus"))


def test_rollout_confirmation_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_press("plus"))


def test_reconciler_history_after_a_switch(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=then_press("v", "y"))


def app_with_log() -> OcindexApp:
    """The app with a few fixed log lines of each level (their times are fixed too)."""
    app = make_app()
    app.logbook = LogBook(local_time=time.gmtime)
    lines = [
        (logging.INFO, "indexer.service", "starting v2 (persisted rollout 50%)"),
        (logging.INFO, "indexer.pipeline.reconciler", "reconcile: 12840 files, 2 new, 1 modified"),
        (logging.WARNING, "indexer.pipeline.v2", "error: todo/ses_3ee0c5d10ffe.json: invalid_json"),
        (logging.ERROR, "indexer.pipeline.v2", "batch not committed, retrying its files: I/O"),
    ]
    for i, (level, name, message) in enumerate(lines):
        record = logging.LogRecord(name, level, __file__, 1, message, None, None)
        record.created = T0 - 60 + i
        app.logbook.handle(record)
    return app


def test_log_screen_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(app_with_log(), terminal_size=WIDE, run_before=then_press("l"))


def test_log_screen_narrow(snap_compare: SnapCompare) -> None:
    assert snap_compare(app_with_log(), terminal_size=NARROW, run_before=then_press("l"))


def test_filtered_pane_wide(snap_compare: SnapCompare) -> None:
    keys = ("1", "slash", "s", "e", "s", "s", "i", "o", "n", "enter")
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=then_press(*keys))


def test_filtered_pane_narrow(snap_compare: SnapCompare) -> None:
    keys = ("4", "slash", "j", "s", "o", "n")
    assert snap_compare(make_app(), terminal_size=NARROW, run_before=then_press(*keys))
