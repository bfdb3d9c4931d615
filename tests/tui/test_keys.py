"""Every key of the dashboard, driven through Pilot: the right facade call happens and the screen
reacts. No sleeps: workers are awaited and the message queue drained."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from indexer.snapshot import IndexerSnapshot
from tests.tui.fakes import ALERT, ERRORS, FakeFacade, make_app, settle
from tui import keys
from tui.app import OcindexApp
from tui.messages import SnapshotReady
from tui.panes.base import RowsTable
from tui.panes.header import AlertBanner, StatusHeader
from tui.screens.ab import ABScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.error_detail import ErrorDetailScreen
from tui.screens.help import HelpScreen

SIZE = (80, 24)


def header_text(app: OcindexApp) -> str:
    main = app.query_one("#header-main", Static)
    badges = app.query_one("#header-badges", Static)
    return f"{main.visual}\n{badges.visual}"


def notices(app: OcindexApp) -> list[tuple[str, str]]:
    return [(n.message, n.severity) for n in app._notifications]


async def start(pilot: Pilot[Any], snapshot: IndexerSnapshot | None = None) -> None:
    app = pilot.app
    assert isinstance(app, OcindexApp)
    app.post_message(SnapshotReady(snapshot or app.facade.snapshot()))
    await settle(pilot)


async def test_first_snapshot_fills_every_pane(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        assert "waiting for the first snapshot" in header_text(app)
        await start(pilot)
        text = header_text(app)
        assert "v2" in text and "50%" in text and "RUNNING" in text
        assert "12,834" in text and "412 files/s" in text
        assert "reconciled 12s ago" in text
        assert "DEMO" not in text
        assert app.query_one("#pending-table", RowsTable).row_keys[0].endswith("BAH9l.json")
        assert app.query_one("#errors-table", RowsTable).row_count == len(ERRORS)
        assert app.query_one("#scans-table", RowsTable).row_count == 4
        assert app.query_one("#found-table", RowsTable).row_count == 3
        assert app.pane(1).border_subtitle == "6 files · oldest 3.4s"
        assert app.pane(2).border_subtitle == "last 120 batches, size 60, max 99"


async def test_pending_rows_are_newest_first(facade: FakeFacade) -> None:
    shuffled = tuple(reversed(facade.base.pending))
    facade.base = dataclasses.replace(facade.base, pending=shuffled)
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        keys = app.query_one("#pending-table", RowsTable).row_keys
        ages = {p.rel_path: p.age_s for p in shuffled}
        assert [ages[k] for k in keys] == sorted(ages.values())


async def test_f_flushes_and_notifies(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert facade.actions() == [("flush", ())]
        assert ("Flushed 6 files", "information") in notices(app)
        assert facade.names().count("snapshot") == 2  # a fresh snapshot after the action
        assert app.busy == ""


async def test_r_starts_a_rescan_and_notifies(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert facade.actions() == [("rescan", ())]
        assert ("Rescan started", "information") in notices(app)


async def test_a_failed_action_is_reported_not_raised(facade: FakeFacade) -> None:
    facade.fail.add("flush")
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert ("flush failed: flush exploded", "error") in notices(app)
        assert app.busy == ""
        assert app.is_running


async def test_actions_wait_for_the_one_in_flight(facade: FakeFacade) -> None:
    facade.gate = threading.Event()
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("r")
        await pilot.pause()
        assert app.busy == "rescan"
        assert "rescan…" in header_text(app)
        assert app.check_action("flush", ()) is None  # dimmed in the footer
        await pilot.press("f")
        facade.gate.set()
        await settle(pilot)
        assert [name for name, _ in facade.actions()] == ["rescan"]
        assert app.busy == ""
        assert app.check_action("flush", ()) is True


async def test_every_key_that_changes_the_engine_is_dimmed_while_an_action_runs(
    facade: FakeFacade,
) -> None:
    facade.gate = threading.Event()
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("r")
        await pilot.pause()
        dimmed = {k.id for k in keys.ACTION_KEYS if app.check_action(k.action_name, ()) is None}
        facade.gate.set()
        await settle(pilot)
        assert dimmed == {k.id for k in keys.ACTION_KEYS if k.mutates}
        assert dimmed == {"flush", "rescan", "switch", "rollback", "rollout_up", "rollout_down"}


async def test_v_switches_after_confirmation(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert facade.actions() == [("switch_to", ("v1", "dashboard: v key"))]
        assert "v1" in header_text(app) and "v1 is now active" in str(notices(app))


async def test_v_cancelled_does_nothing(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("v")
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert facade.actions() == []


async def test_b_rolls_back_after_confirmation(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert facade.actions() == [("rollback", ("dashboard: b key",))]
        text = header_text(app)
        assert "v1" in text and "rollout 0%" in text
        # now at v1 and 0%: b is dimmed and does nothing
        assert app.check_action("rollback", ()) is None
        await pilot.press("b")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert len(facade.actions()) == 1


@pytest.mark.parametrize("key", ["n", "escape"])
async def test_b_cancelled_does_nothing(facade: FakeFacade, key: str) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("b")
        await pilot.pause()
        await pilot.press(key)
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert facade.actions() == []


async def test_b_is_disabled_when_already_v1_at_zero() -> None:
    facade = FakeFacade()
    facade.active, facade.rollout = "v1", 0
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert app.check_action("rollback", ()) is None
        assert app.screen.active_bindings["b"].enabled is False
        await pilot.press("b")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert facade.actions() == []


async def test_the_alert_banner_names_the_figure_and_b_rolls_back(facade: FakeFacade) -> None:
    facade.alert = ALERT
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        banner = app.query_one(AlertBanner)
        assert not banner.display
        await start(pilot)
        assert banner.display
        text = str(banner.visual)
        assert "p95 latency 412 ms" in text and "250 ms threshold" in text
        assert "press b to roll back" in text
        await pilot.press("b", "y")
        await settle(pilot)
        name, (reason,) = facade.actions()[0]
        assert name == "rollback" and "p95 latency" in reason
        assert not banner.display  # the engine cleared its alert


async def test_p_pauses_the_live_refresh(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("p")
        await pilot.pause()
        assert app.paused and "PAUSED" in header_text(app) and "RUNNING" not in header_text(app)
        assert app.has_class("-paused")
        newer = dataclasses.replace(
            facade.snapshot(), taken_at=facade.base.taken_at + 1, totals={"indexed": 99_999}
        )
        await start(pilot, newer)
        assert app.latest is newer and app.shown is not newer
        assert "12,834" in header_text(app) and "99,999" not in header_text(app)
        assert app.screen.active_bindings["p"].binding.description == "Resume"
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused and app.shown is newer
        assert "99,999" in header_text(app) and "RUNNING" in header_text(app)


async def test_a_opens_the_ab_view_and_a_closes_it(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ABScreen)
        assert ("compare", (300.0,)) in facade.calls
        figures = str(screen.query_one("#ab-figures", Static).visual)
        for text in ("96.4/s", "412/s", "62 / 131 / 158 ms", "13.2 / 57 / 88 ms", "×4.28"):
            assert text in figures
        assert "does not read session_diff" in str(screen.query_one("#ab-notes", Static).visual)
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ABScreen)
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ABScreen)


async def test_ab_view_reports_a_failed_compare(facade: FakeFacade) -> None:
    facade.fail.add("compare")
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("a")
        await settle(pilot)
        figures = str(app.screen.query_one("#ab-figures", Static).visual)
        assert "compare failed: compare exploded" in figures


async def test_question_mark_opens_the_help_and_closes_it(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "Reading the histogram" in app.screen._markdown
        await pilot.press("pagedown")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize(
    ("key", "widget_id"),
    [("1", "pending-table"), ("2", "latency"), ("3", "scans-table"), ("4", "errors-table")],
)
async def test_digits_focus_their_pane(facade: FakeFacade, key: str, widget_id: str) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4" if key != "4" else "1")
        await pilot.press(key)
        await pilot.pause()
        assert app.focused is not None and app.focused.id == widget_id


async def test_digits_focus_at_80_columns_too(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        assert app.narrow
        await pilot.press("3")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "scans-table"


async def test_enter_on_an_error_opens_its_detail_and_R_retries(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4", "down", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ErrorDetailScreen)
        message = str(screen.query_one("#detail-message", Static).visual)
        assert message == ERRORS[1].message
        await pilot.press("R")
        await settle(pilot)
        assert not isinstance(app.screen, ErrorDetailScreen)
        assert facade.actions() == [("retry", (ERRORS[1].rel_path,))]


async def test_escape_closes_the_error_detail(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ErrorDetailScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ErrorDetailScreen)
        assert facade.actions() == []


async def test_R_retries_the_selected_error(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("4", "down", "down", "R")
        await settle(pilot)
        assert facade.actions() == [("retry", (ERRORS[2].rel_path,))]
        table = app.query_one("#errors-table", RowsTable)
        assert ERRORS[2].rel_path not in table.row_keys  # the engine took it back
        assert any("Retrying" in message for message, _ in notices(app))


async def test_q_quits(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert "stop" not in facade.names()  # run_dashboard stops the engine, not the app


async def test_snapshots_and_resizes_under_a_pushed_screen_reach_the_dashboard(
    facade: FakeFacade,
) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("a")
        await settle(pilot)
        newer = dataclasses.replace(
            facade.snapshot(), taken_at=facade.base.taken_at + 1, totals={"indexed": 77_777}
        )
        await start(pilot, newer)
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert isinstance(app.screen, ABScreen) and not app.narrow
        await pilot.press("escape")
        await pilot.pause()
        assert app.shown is newer and "77,777" in header_text(app)


async def test_the_cursor_follows_its_file_across_snapshots(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4", "down", "down")
        table = app.query_one("#errors-table", RowsTable)
        assert table.selected_key() == ERRORS[2].rel_path
        later = dataclasses.replace(
            facade.snapshot(), taken_at=facade.base.taken_at + 1, errors=ERRORS[1:]
        )
        await start(pilot, later)
        assert table.cursor_row == 1 and table.selected_key() == ERRORS[2].rel_path
        found = app.query_one("#found-table", RowsTable)
        labels = [str(column.label) for column in found.columns.values()]
        assert labels[-1].startswith("found 13s ago")


async def test_the_staleness_tick_during_teardown_does_nothing(facade: FakeFacade) -> None:
    """The 1 s staleness timer can tick while `q` removes the panes (seen under load)."""
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await app.main.query_one(StatusHeader).remove()
        app._check_stale()
        assert not app.main.query(StatusHeader)
