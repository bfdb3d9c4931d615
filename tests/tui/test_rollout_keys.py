"""`+`/`-` say what a step does to this install before applying it, and a dimmed key says why it
does nothing. Driven through Pilot over the fake engine (this install runs v2 from 41%)."""

from __future__ import annotations

import pytest
from textual.widgets import Static
from textual.widgets._toast import Toast

from tests.tui.fakes import FakeFacade, make_app, settle, until
from tests.tui.test_keys import SIZE, header_text, notices, start
from tui.screens.confirm import ConfirmScreen


def dialog_text(screen: object) -> str:
    assert isinstance(screen, ConfirmScreen)
    title = screen.query_one("#confirm-title", Static).visual
    body = screen.query_one("#confirm-body", Static).visual
    return f"{title}\n{body}"


async def test_plus_asks_first_and_says_the_install_stays_on_its_indexer(
    facade: FakeFacade,
) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("plus")
        await pilot.pause()
        text = dialog_text(app.screen)
        assert "50% to 60%" in text and "runs v2 from a rollout of 41%" in text
        assert "v2 stays active" in text
        assert facade.actions() == []
        await pilot.press("y")
        await settle(pilot)
        assert facade.actions() == [("set_rollout", (60,))]
        assert "rollout 60%" in header_text(app)
        (message, _severity), *_ = notices(app)
        assert message.startswith("Rollout 60%: this install stays on v2")
        assert "bucket" not in message and "<" not in message


async def test_minus_that_changes_the_indexer_says_so_and_names_what_v1_does_not_read(
    facade: FakeFacade,
) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("minus")
        await pilot.pause()
        text = dialog_text(app.screen)
        assert "switch to v1?" in text and "SQLite store" in text
        await pilot.press("y")
        await settle(pilot)
        assert facade.actions() == [("set_rollout", (40,))]
        assert "v1 active" in header_text(app)
        assert "Rollout 40%: v1 is now active." in str(notices(app))


@pytest.mark.parametrize("key", ["n", "escape"])
async def test_a_rollout_step_cancelled_changes_nothing(facade: FakeFacade, key: str) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("minus")
        await pilot.pause()
        await pilot.press(key)
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert facade.actions() == []


async def test_a_pinned_install_is_told_the_rollout_does_not_move_it(facade: FakeFacade) -> None:
    facade.threshold = None
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("minus")
        await pilot.pause()
        assert "UNIFIED_INDEXER_V2_ENABLED pins" in dialog_text(app.screen)


@pytest.mark.parametrize(
    ("start_at", "key", "reason"),
    [(100, "plus", "already 100%"), (0, "minus", "already 0%")],
)
async def test_a_dimmed_rollout_key_says_why_it_does_nothing(
    start_at: int, key: str, reason: str
) -> None:
    facade = FakeFacade()
    facade.rollout = start_at
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        assert app.screen.active_bindings[key].enabled is False
        await pilot.press(key)
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert facade.actions() == []
        assert any(reason in message for message, _ in notices(app))


async def test_a_dimmed_b_says_there_is_nothing_to_roll_back() -> None:
    facade = FakeFacade()
    facade.active, facade.rollout = "v1", 0
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("b")
        await until(pilot, lambda: "nothing to roll back" in str(notices(app)), "the notice")
        await settle(pilot)
        assert facade.actions() == [] and not isinstance(app.screen, ConfirmScreen)


async def test_the_v_dialog_says_v1_stops_reading_the_sqlite_store(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("v")
        await pilot.pause()
        text = dialog_text(app.screen)
        assert "Switch to v1?" in text and "SQLite store" in text and "indexed by v2 alone" in text


async def test_a_toast_is_never_drawn_over_the_help(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        app.notify("Flushed 6 files", title="Flush")
        await settle(pilot)
        toasts = app.screen.query(Toast)
        assert toasts and all(toast.region.area == 0 for toast in toasts)
        await pilot.press("escape")
        await settle(pilot)
        assert any(toast.region.area for toast in app.screen.query(Toast))  # it waited
