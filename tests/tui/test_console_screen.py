"""The SQL console (`c`) over a real small index: the views listed with their columns, a query's
rows in the table, writes refused and errors shown inline, history on up and down, the row
limit and the timeout said, a running query never freezing the screen and stopped on close."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, Tree

from indexer.service import IndexerService
from indexer.simulate import OpenCodeSimulator
from indexer.store.views import VIEWS
from tests.tui.fakes import FakeFacade, make_app, settle, until
from tests.tui.usage_data import EndpointFacade, IndexFacade
from tui import keys
from tui.app import OcindexApp
from tui.screens.console import (
    NO_CURSOR,
    ConsoleScreen,
    HistoryInput,
    cell,
)

HEAVY = "SELECT count(*) FROM range(1000000000000)"
"""A query that runs for hours unless interrupted."""


def console(pilot: Pilot[Any]) -> ConsoleScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ConsoleScreen), screen
    return screen


def status(screen: ConsoleScreen) -> str:
    return str(screen.query_one("#console-status", Static).render())


async def run(pilot: Pilot[Any], sql: str) -> ConsoleScreen:
    """Type `sql` in the console's input, press enter, wait for its answer."""
    screen = console(pilot)
    before = screen.answer
    screen.query_one(Input).value = sql
    screen.query_one(Input).focus()
    await pilot.press("enter")
    await until(pilot, lambda: screen.answer is not before, f"the answer to {sql}")
    return screen


async def test_c_opens_the_console_with_the_documented_views_and_their_columns() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("c")
        screen = console(pilot)
        await until(pilot, lambda: bool(screen.views), "the views listed")
        assert [v.name for v in screen.views] == [name for name, _sql in VIEWS]
        tree: Tree[str] = screen.query_one("#console-views", Tree)
        nodes = tree.root.children
        assert [n.data for n in nodes] == [name for name, _sql in VIEWS]
        daily = next(v for v in screen.views if v.name == "usage_daily")
        assert ("day", "DATE") in daily.columns and ("cost", "DOUBLE") in daily.columns
        assert nodes[0].is_expanded and not nodes[1].is_expanded
        assert [c.data for c in nodes[1].children] == [c for c, _kind in daily.columns]
        assert isinstance(app.focused, HistoryInput)


async def test_a_query_fills_the_table_with_its_rows_and_says_how_many() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("c")
        screen = await run(pilot, "SELECT tool, calls FROM tool_stats ORDER BY tool")
        table = screen.query_one("#console-results", DataTable)
        assert [str(c.label) for c in table.ordered_columns] == ["tool", "calls"]
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [
            "bash",
            "edit",
            "read",
            "webfetch",
        ]
        assert status(screen) == "4 rows in 0 ms"


async def test_a_write_is_refused_inline_and_changes_nothing() -> None:
    facade = IndexFacade()
    before = facade.conn.execute("SELECT count(*) FROM parts").fetchone()
    app = make_app(facade)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("c")
        for sql in ("DELETE FROM parts", "DROP VIEW usage_daily", "SET threads = 1"):
            screen = await run(pilot, sql)
            assert status(screen).startswith("refused: "), sql
            assert screen.query_one("#console-results", DataTable).row_count == 0
    assert facade.conn.execute("SELECT count(*) FROM parts").fetchone() == before
    assert facade.conn.execute("SELECT count(*) FROM usage_daily").fetchone() is not None


async def test_a_wrong_query_shows_duckdbs_error_inline() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        screen = await run(pilot, "SELECT nope FROM usage_daily")
        assert "nope" in status(screen) and screen.answer is not None
        assert screen.answer.error and isinstance(app.screen, ConsoleScreen)


async def test_up_and_down_walk_the_history_and_come_back_to_the_draft() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        await run(pilot, "SELECT 1")
        await run(pilot, "SELECT 2")
        await run(pilot, "SELECT 2")  # run twice, kept once
        line = console(pilot).query_one(HistoryInput)
        line.value = "SELECT 3 -- draft"
        seen = []
        for key in ("up", "up", "up", "down", "down"):
            await pilot.press(key)
            seen.append(line.value)
        assert seen == ["SELECT 2", "SELECT 1", "SELECT 1", "SELECT 2", "SELECT 3 -- draft"]


async def test_the_console_keeps_its_history_and_result_between_visits() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        first = await run(pilot, "SELECT 42 AS answer")
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ConsoleScreen)
        await pilot.press("c")
        await settle(pilot)
        assert console(pilot) is first and first.history == ["SELECT 42 AS answer"]
        assert first.query_one("#console-results", DataTable).row_count == 1
        first.query_one(HistoryInput).value = ""
        await pilot.press("up")
        assert first.query_one(HistoryInput).value == "SELECT 42 AS answer"


async def test_only_the_first_thousand_rows_are_shown_and_the_status_says_so() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        screen = await run(pilot, "SELECT * FROM range(5000)")
        assert screen.query_one("#console-results", DataTable).row_count == 1_000
        assert status(screen) == "1,000 rows in 0 ms · only the first 1,000 are shown"


async def test_a_query_past_the_time_limit_is_stopped_and_said_so() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ConsoleScreen(app.facade, timeout_s=0.5)
        await app.push_screen(screen)
        await run(pilot, HEAVY)
        assert status(screen).startswith("stopped after 0.5 s, the console's limit")
        assert not screen.running


async def test_a_running_query_leaves_the_screen_responsive_and_closing_stops_it() -> None:
    facade = IndexFacade()
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        screen = console(pilot)
        line = screen.query_one(HistoryInput)
        line.value = HEAVY
        await pilot.press("enter")
        assert screen.running and status(screen) == "running… (stopped after 10 s)"
        await pilot.press("x", "y")  # the query runs in a worker: typing still reaches the input
        assert line.value == HEAVY + "xy" and screen.running, screen.answer
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ConsoleScreen)
        # the close interrupts the cursor: the answer says its client left, not the timeout
        await until(pilot, lambda: screen.answer is not None, "the stop", timeout_s=30)
        assert screen.answer is not None and "client left" in screen.answer.error
        assert facade.conn.execute("SELECT 1").fetchone() == (1,)


async def test_the_console_says_so_when_the_engine_offers_no_cursor() -> None:
    app = make_app(FakeFacade())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        await settle(pilot)
        screen = console(pilot)
        assert status(screen) == NO_CURSOR
        screen.query_one(HistoryInput).value = "SELECT 1"
        await pilot.press("enter")
        await settle(pilot)
        assert screen.answer is None and not screen.running


def test_a_cell_is_one_line_cut_short_with_nulls_and_floats_readable() -> None:
    assert cell(None) == "NULL"
    assert cell(0.078 + 0.156) == "0.234"
    assert cell("two\nlines") == "two lines"
    long = cell("x" * 1_000)
    assert len(long) == 120 and long.endswith("…")


def test_the_console_keys_are_bound_by_the_console_and_its_input() -> None:
    bound = [b.id for b in ConsoleScreen.BINDINGS if isinstance(b, Binding)]
    assert bound == [k.id for k in keys.in_scope("console")]
    line = [b.id for b in HistoryInput.BINDINGS if isinstance(b, Binding)]
    assert line == [k.id for k in keys.in_scope("console_input")]
    assert "`c`" in keys.key_table() and "**SQL console**" in keys.key_table()


async def test_over_the_real_engine_the_console_reads_the_live_index(
    storage_root: Path, db_path: Path
) -> None:
    OpenCodeSimulator(storage_root, seed=3).write_sessions(1)
    service = IndexerService(storage_root, db_path, cli_choice="v2", env={})
    service.start()
    try:
        app = OcindexApp(service, poll_interval=None)
        async with app.run_test(size=(120, 36)) as pilot:
            current = service.current
            assert current is not None and await asyncio.to_thread(current.wait_idle, 30, 0.2)
            await pilot.press("c")
            await until(pilot, lambda: bool(console(pilot).views), "the views listed")
            screen = await run(pilot, "SELECT count(*) AS n FROM messages")
            cursor = service.cursor()
            try:
                row = cursor.execute("SELECT count(*) FROM messages").fetchone()
            finally:
                cursor.close()
            assert row is not None and row[0] > 0
            assert screen.answer is not None and screen.answer.rows == ((str(row[0]),),)
            screen = await run(pilot, "DELETE FROM messages")
            assert status(screen).startswith("refused: ")
            await app.workers.wait_for_complete()
    finally:
        service.stop()


async def test_attached_the_console_runs_queries_through_the_engines_endpoint() -> None:
    facade = EndpointFacade()
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        screen = console(pilot)
        await until(pilot, lambda: bool(screen.views), "the views listed through the endpoint")
        screen = await run(pilot, "SELECT count(*) AS n FROM tool_calls")
        assert screen.answer is not None and screen.answer.rows == (("13",),)
        screen = await run(pilot, "DELETE FROM parts")
        assert status(screen).startswith("refused: ")
        assert ("query", ("SELECT count(*) AS n FROM tool_calls",)) in facade.calls
