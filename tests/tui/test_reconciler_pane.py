"""Pane 3 is honest and keeps up: a missed column next to what each scan found, found files
tagged, the detail following the newest scan after `r`, and the scans kept across switches."""

from __future__ import annotations

from tests.tui.fakes import RECONCILES, RESCAN_FOUND, FakeFacade, make_app, settle
from tests.tui.test_keys import start
from tui.panes.base import RowsTable
from tui.panes.findings import FindingsPane

SIZE = (120, 36)


def cells(table: RowsTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def found_label(table: RowsTable) -> str:
    return str(list(table.columns.values())[-1].label)


async def test_found_files_are_tagged_new_modified_deleted(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        found = app.query_one("#found-table", RowsTable)
        tags = [row[0] for row in cells(found)]
        assert tags == ["new", "new", "modified"]  # RECONCILES[0]: 2 new, 1 modified
        scans = app.query_one("#scans-table", RowsTable)
        header = [str(c.label) for c in scans.columns.values()]
        assert header[-1] == "missed"


async def test_after_r_the_detail_follows_the_new_scan(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("r")
        await settle(pilot)
        scans = app.query_one("#scans-table", RowsTable)
        found = app.query_one("#found-table", RowsTable)
        newest = RECONCILES[0].scan_id + 1
        assert scans.selected_key() == f"v2:{newest}"
        assert found_label(found).startswith("found 1s ago: 3, 2 retried")
        assert [row[0] for row in cells(found)] == ["new", "modified", "deleted"]
        assert found.row_keys == list(RESCAN_FOUND)


async def test_a_cursor_moved_to_an_older_scan_stays_there(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("3", "down", "down")
        scans = app.query_one("#scans-table", RowsTable)
        chosen = scans.selected_key()
        await pilot.press("r")
        await settle(pilot)
        assert scans.selected_key() == chosen


async def test_switching_indexers_keeps_the_scans_history(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("v")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert facade.active == "v1" and facade.snapshot().reconciles == ()
        scans = app.query_one("#scans-table", RowsTable)
        assert len(scans.row_keys) == len(RECONCILES)
        assert all(row[2] == "v2" for row in cells(scans))  # the "by" column
        assert "no scan yet" not in str(app.query_one(FindingsPane).border_subtitle)


async def test_an_engine_with_no_scan_says_when_one_will_come() -> None:
    facade = FakeFacade()
    facade.reconciles = ()
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        scans = app.query_one("#scans-table", RowsTable)
        assert scans.row_keys == [] and scans.selected_key() is None
        assert "no scan yet" in cells(scans)[0][0] and "on r" in cells(scans)[0][0]
