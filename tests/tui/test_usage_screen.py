"""The usage screen (`u`) over a real small index: tokens and cost per day by model, the costliest
sessions, the failing tools, read again when a batch commits; its empty, cursorless and failing
states say so; and the pure pieces (the chart's series, the read of the views) on their own."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
from textual.binding import Binding
from textual.widgets import DataTable, Static

from indexer.cli.usage import usage_report
from indexer.service import IndexerService
from indexer.simulate import OpenCodeSimulator
from indexer.snapshot import BatchSummary
from indexer.usage_read import DayModel, usage_overview
from tests.tui.fakes import T0, FakeFacade, base_snapshot, make_app, post_snapshot, settle, until
from tests.tui.usage_data import (
    DAY_MS,
    NOON_MS,
    EndpointFacade,
    IndexFacade,
    empty_index,
    message,
    put,
    usage_index,
)
from tui import keys
from tui.app import OcindexApp
from tui.messages import SnapshotReady
from tui.screens.usage import (
    NO_CURSOR,
    UsageChart,
    UsageScreen,
    data_mark,
    money,
    series,
)


def open_usage(app: OcindexApp) -> UsageScreen:
    """The screen on top, which must be the usage screen."""
    screen = app.screen
    assert isinstance(screen, UsageScreen), screen
    return screen


def row_keys(table: DataTable[object]) -> list[str | None]:
    return [row.key.value for row in table.ordered_rows]


async def test_u_opens_the_usage_screen_with_usage_per_day_by_model_sessions_and_tools() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(120, 36)) as pilot:
        await post_snapshot()(pilot)
        await pilot.press("u")
        await settle(pilot)
        screen = open_usage(app)
        await until(pilot, lambda: screen.overview is not None, "the first read")
        overview = screen.overview
        assert overview is not None and overview.time_zone == "UTC"
        charts = list(screen.query(UsageChart))
        assert [c.figure for c in charts] == ["tokens", "cost"]
        shown = charts[0]._series
        assert len(shown.days) == 14 and shown.days[-1] == dt.date(2026, 1, 14)
        assert set(shown.models) == {
            "anthropic/claude-sonnet-4-5",
            "openai/gpt-5",
            "google/gemini-2.5-pro",
        }
        legend = str(screen.query_one("#usage-legend", Static).render())
        assert "openai/gpt-5" in legend
        sessions = screen.query_one("#usage-sessions", DataTable)
        # the subagent's session is rolled into its parent, never listed on its own
        assert row_keys(sessions)[0] == "ses_02usage" and "ses_05explore" not in row_keys(sessions)
        assert row_keys(screen.query_one("#usage-tools", DataTable)) == ["bash", "edit", "webfetch"]


async def test_the_usage_screen_closes_on_u_and_on_escape() -> None:
    app = make_app(IndexFacade())
    async with app.run_test(size=(120, 36)) as pilot:
        for close in ("u", "escape"):
            await pilot.press("u")
            await settle(pilot)
            assert isinstance(app.screen, UsageScreen)
            await pilot.press(close)
            await settle(pilot)
            assert not isinstance(app.screen, UsageScreen), close


async def test_the_usage_screen_reads_again_when_a_batch_commits() -> None:
    facade = IndexFacade()
    app = make_app(facade)
    async with app.run_test(size=(120, 36)) as pilot:
        await post_snapshot()(pilot)
        await pilot.press("u")
        screen = open_usage(app)
        await until(pilot, lambda: screen.reads == 1, "the first read")
        # Nothing committed: the check finds the same newest batch and reads nothing.
        before = facade.cursors
        screen._check()
        await settle(pilot)
        assert facade.cursors == before and screen.reads == 1
        message(facade.conn, "ses_01refactor", "msg_new_day", 0, 14, 3)
        newest = base_snapshot().recent_batches[0]
        batch = dataclasses.replace(newest, batch_id=newest.batch_id + 1, committed_at=T0 + 1)
        snapshot = dataclasses.replace(
            base_snapshot(),
            taken_at=T0 + 1,
            recent_batches=(batch, *base_snapshot().recent_batches),
        )
        app.post_message(SnapshotReady(snapshot))

        def shows_the_new_day() -> bool:
            o = screen.overview
            return o is not None and max(d.day for d in o.days) == dt.date(2026, 1, 15)

        await until(pilot, shows_the_new_day, "a read after the new batch")
        assert screen.reads == 2


async def test_the_empty_usage_screen_says_what_will_appear_and_how_to_cause_it() -> None:
    app = make_app(empty_index())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        screen = open_usage(app)
        await until(pilot, lambda: screen.overview is not None, "the first read")
        empty = screen.query_one("#usage-empty", Static)
        assert empty.display and not screen.query_one("#usage-data").display
        text = str(empty.render())
        assert "No usage in the index yet" in text
        assert "tokens and cost per day by model" in text and "`ocindex index`" in text


async def test_the_usage_screen_says_so_when_the_engine_offers_no_cursor() -> None:
    app = make_app(FakeFacade())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        screen = open_usage(app)
        assert str(screen.query_one("#usage-state", Static).render()) == NO_CURSOR
        assert screen.reads == 0


async def test_a_failed_read_is_shown_inline_and_the_screen_stays_open() -> None:
    facade = IndexFacade()
    facade.fail.add("cursor")
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        screen = open_usage(app)
        await until(pilot, lambda: screen.reads == 1, "the failed read")
        state = str(screen.query_one("#usage-state", Static).render())
        assert state == "could not read usage: cursor exploded"
        assert isinstance(app.screen, UsageScreen)


def test_the_data_mark_changes_with_the_newest_batch_only() -> None:
    snap = base_snapshot()
    assert data_mark(None) is None
    assert data_mark(dataclasses.replace(snap, recent_batches=())) is None
    same = dataclasses.replace(snap, taken_at=snap.taken_at + 5, files_per_s=0.0)
    assert data_mark(same) == data_mark(snap)
    newer = BatchSummary(**{**dataclasses.asdict(snap.recent_batches[0]), "batch_id": 99_999})
    assert data_mark(dataclasses.replace(snap, recent_batches=(newer,))) != data_mark(snap)


def test_series_fills_every_day_of_the_window_and_sums_the_cheapest_models_as_other() -> None:
    day = dt.date(2026, 3, 10)
    rows = [DayModel(day, f"p/m{i}", 100 * i, float(i)) for i in range(1, 6)]
    rows.append(DayModel(day - dt.timedelta(days=2), "p/m5", 7, 0.5))
    rows.append(DayModel(day - dt.timedelta(days=30), "p/m1", 1, 0.1))  # outside the window
    s = series(rows, days=4, apart=4)
    assert s.days == tuple(day - dt.timedelta(days=3 - i) for i in range(4))
    assert s.models == ("p/m5", "p/m4", "p/m3", "other")
    assert s.tokens[0] == (0, 7, 0, 500)
    assert s.tokens[3] == (0, 0, 0, 300)  # m2 and m1 on the last day
    assert s.cost[3][3] == 3.0
    assert series([]).days == ()


def test_money_is_dollars_with_cents_then_shortened() -> None:
    assert [money(0.004), money(12.3), money(1234.0)] == ["$0.00", "$12.30", "$1.2k"]


def test_the_overview_counts_what_ocindex_usage_counts() -> None:
    conn = usage_index(duckdb.connect(":memory:"))
    conn.execute("SET TimeZone = 'UTC'")
    # a fork copy repeats a message: neither the screen nor the report may count it
    doc = {"role": "assistant", "providerID": "openai", "modelID": "gpt-5", "cost": 9.0}
    doc |= {"tokens": {"input": 10**6}, "time": {"created": NOON_MS + DAY_MS}, "forkCopy": True}
    put(conn, "message/ses_01refactor/msg_fork.json", doc)
    overview = usage_overview(conn)
    report = usage_report(conn, "day")
    assert sum(d.tokens for d in overview.days) == report["totals"]["tokens_total"]
    assert round(sum(d.cost for d in overview.days), 6) == round(report["totals"]["cost"], 6)
    assert len({d.day for d in overview.days}) == len(report["rows"]) == 14


def test_the_usage_keys_are_bound_by_the_usage_screen() -> None:
    bound = [b.id for b in UsageScreen.BINDINGS if isinstance(b, Binding)]
    assert bound == [k.id for k in keys.in_scope("usage")]
    assert "`u`" in keys.key_table() and "**Usage**" in keys.key_table()


async def test_over_the_real_engine_the_screen_fills_in_as_the_simulators_batches_commit(
    storage_root: Path, db_path: Path
) -> None:
    service = IndexerService(storage_root, db_path, cli_choice="v2", env={})
    service.start()
    try:
        app = OcindexApp(service, poll_interval=0.1)
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.shown is not None, "the first snapshot")
            await pilot.press("u")
            screen = open_usage(app)
            await until(pilot, lambda: screen.overview is not None, "the first read")
            assert screen.overview is not None and screen.overview.empty
            await asyncio.to_thread(OpenCodeSimulator(storage_root, seed=5).write_sessions, 2)

            def expected() -> tuple[int, int]:
                cursor = service.cursor()
                try:
                    row = cursor.execute(
                        "SELECT count(DISTINCT day), coalesce(sum(tokens_total), 0) "
                        "FROM usage_daily"
                    ).fetchone()
                finally:
                    cursor.close()
                assert row is not None
                return int(row[0]), int(row[1])

            def shows_the_index() -> bool:
                o = screen.overview
                days, tokens = expected()
                return (
                    o is not None
                    and tokens > 0
                    and sum(d.tokens for d in o.days) == tokens
                    and len({d.day for d in o.days}) == days
                )

            await until(pilot, shows_the_index, "the screen showing what the views count", 60)
            assert screen.query_one("#usage-data").display
            app._poll_interval = None  # the poller re-arms no timer while the engine stops
            await app.workers.wait_for_complete()
    finally:
        service.stop()


async def test_after_a_slow_read_the_screen_waits_four_times_as_long_before_the_next() -> None:
    now = [1_000.0]
    mark = ["batch 1"]

    class SlowIndex(IndexFacade):
        def cursor(self) -> duckdb.DuckDBPyConnection:
            now[0] += 2.0  # the read takes two seconds of the injected clock
            return super().cursor()

    facade = SlowIndex()
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = UsageScreen(facade, lambda: mark[0], check_s=None, clock=lambda: now[0])
        await app.push_screen(screen)
        await until(pilot, lambda: screen.reads == 1, "the first read")
        mark[0] = "batch 2"
        now[0] += 7.9  # not yet 4 × 2 s after the read
        screen._check()
        await settle(pilot)
        assert screen.reads == 1 and facade.cursors == 1
        now[0] += 0.1
        screen._check()
        await until(pilot, lambda: screen.reads == 2, "the read once the quiet time is over")


async def test_attached_the_screen_reads_the_views_through_the_engines_query_endpoint() -> None:
    facade = EndpointFacade()
    app = make_app(facade)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("u")
        screen = open_usage(app)
        await until(pilot, lambda: screen.overview is not None, "the read through the endpoint")
        cursor = facade.conn.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        assert screen.overview == usage_overview(cursor)
        assert "query" in facade.names() and "cursor" not in facade.names()
