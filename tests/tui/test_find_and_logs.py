"""`/` filters and `s` sorts the focused list; `l` shows this session's log lines live, with the
lowest level, a filter and follow. Driven through Pilot over the fake engine."""

from __future__ import annotations

import logging

from textual.widgets import RichLog

from tests.tui.fakes import ERRORS, PENDING, FakeFacade, make_app, settle, until
from tests.tui.test_keys import start
from tui.filterbar import FilterBar
from tui.logbook import LogBook
from tui.panes.base import RowsTable
from tui.panes.pending import PendingPane
from tui.screens.logs import LogScreen

SIZE = (120, 36)


def log_record(level: int, message: str, name: str = "indexer.pipeline.v2") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


async def test_slash_filters_the_focused_list_and_esc_clears_it(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        table = app.query_one("#pending-table", RowsTable)
        await pilot.press("1", "slash")
        bar = app.query_one(FilterBar)
        assert bar.display and app.focused is bar
        await pilot.press(*"todo")
        await pilot.pause()
        assert table.row_keys == [p.rel_path for p in PENDING if "todo" in p.rel_path]
        pane = app.query_one(PendingPane)
        assert str(pane.border_subtitle).startswith("“todo”: 1 of 6 · ")
        await pilot.press("enter")
        await pilot.pause()
        assert not bar.display and app.focused is table and table.filter_text == "todo"
        # a new snapshot keeps the filter
        await start(pilot)
        assert len(table.row_keys) == 1
        await pilot.press("slash", "escape")
        await pilot.pause()
        assert table.filter_text == "" and len(table.row_keys) == len(PENDING)


async def test_a_filter_matching_nothing_says_how_to_clear_it(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        table = app.query_one("#errors-table", RowsTable)
        await pilot.press("4")
        await until(pilot, lambda: app.focused is table, "the errors pane focused")
        await pilot.press("slash")
        await until(pilot, lambda: app.focused is app.query_one(FilterBar), "the filter bar")
        await pilot.press(*"zzz", "enter")
        await until(pilot, lambda: table.row_keys == [], "the filter applied")
        assert table.selected_key() is None
        hint = str(table.get_row_at(0)[0])
        assert "zzz" in hint and "esc" in hint


async def test_s_cycles_the_sort_of_the_focused_list(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("4", "s")
        await pilot.pause()
        table = app.query_one("#errors-table", RowsTable)
        assert table.row_keys == sorted(e.rel_path for e in ERRORS)
        assert str(next(iter(table.columns.values())).label) == "path ▲"
        await pilot.press("s", "s", "s")  # path → kind → reason → tries
        await pilot.pause()
        tries = [e.rel_path for e in sorted(ERRORS, key=lambda e: e.attempts)]
        assert table.row_keys == tries
        assert any("sorted by tries" in n.message for n in app._notifications)


async def test_find_keys_on_the_latency_pane_say_it_has_no_list(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("2", "slash")
        await pilot.pause()
        assert not app.query_one(FilterBar).display
        assert any("pane 2 has no list" in n.message for n in app._notifications)


async def test_the_find_keys_work_in_a_narrow_terminal_too(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        await pilot.press("slash")
        await pilot.pause()
        assert app.query_one(FilterBar).display


async def test_l_shows_the_log_live_with_levels_filter_and_follow(facade: FakeFacade) -> None:
    book = LogBook()
    app = make_app(facade)
    app.logbook = book
    book.handle(log_record(logging.INFO, "v2 started on /tmp/storage"))
    book.handle(log_record(logging.WARNING, "error: part/x.json: invalid_json"))
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("l")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogScreen)
        assert screen.visible_count() == 2
        book.handle(log_record(logging.ERROR, "writer failed: disk full"))
        screen.pull()  # the timer's work, without waiting for it
        await pilot.pause()
        assert screen.visible_count() == 3
        assert len(screen.query_one(RichLog).lines) == 3
        await pilot.press("w")  # WARNING and above
        await pilot.pause()
        assert screen.visible_count() == 2
        await pilot.press("slash", *"disk", "enter")
        await pilot.pause()
        assert screen.visible_count() == 1
        await pilot.press("f")
        assert not screen.follow
        await pilot.press("l")
        await settle(pilot)
        assert not isinstance(app.screen, LogScreen)


async def test_an_empty_log_says_what_will_appear(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("l")
        await pilot.pause()
        state = str(app.screen.query_one("#logs-state").visual)
        assert "nothing logged yet" in state
