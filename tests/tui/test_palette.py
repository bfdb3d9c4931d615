"""Bindings: every one has an id and a footer entry, and every action is in the command palette."""

from __future__ import annotations

from typing import cast

from textual.app import SystemCommand
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tests.tui.fakes import FakeFacade, footer_keys, make_app, settle
from tui.app import OcindexApp
from tui.filterbar import FilterBar
from tui.messages import SnapshotReady
from tui.palette import DashboardCommands
from tui.panes.errors import ErrorTable
from tui.screens.ab import ABScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.error_detail import ErrorDetailScreen
from tui.screens.help import HelpScreen
from tui.screens.logs import LogScreen

OWNERS = (
    OcindexApp,
    ErrorTable,
    ABScreen,
    ConfirmScreen,
    ErrorDetailScreen,
    HelpScreen,
    LogScreen,
    FilterBar,
)
AVOIDED = {"ctrl+s", "ctrl+j", "ctrl+o", "ctrl+a", "ctrl+b"}


def our_bindings() -> list[Binding]:
    found: list[Binding] = []
    for owner in OWNERS:
        for binding in owner.BINDINGS:
            assert isinstance(binding, Binding)
            found.append(binding)
    return found


def test_every_binding_has_a_unique_id_and_avoids_multiplexer_chords() -> None:
    bindings = our_bindings()
    ids = [b.id for b in bindings]
    assert all(ids), [b.key for b in bindings if not b.id]
    assert len(set(ids)) == len(ids)
    assert not {b.key for b in bindings} & AVOIDED


def titles(commands: list[SystemCommand]) -> list[str]:
    return [c.title for c in commands]


async def test_every_action_is_in_the_palette_and_in_the_footer(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=(120, 36)) as pilot:
        app.post_message(SnapshotReady(facade.snapshot()))
        await settle(pilot)
        commands = list(app.get_system_commands(app.screen))
        for title in (
            "Flush (f)",
            "Rescan (r)",
            "Switch (v)",
            "Rollback (b)",
            "Rollout +10% (+)",
            "Rollout -10% (-)",
            "Pause (p)",
            "A/B (a)",
            "Help (?)",
            "Quit (q)",
            "Focus pane 1: Pending (1)",
            "Focus pane 4: Errors (4)",
            "Error details (enter)",
            "Retry error file (R)",
        ):
            assert title in titles(commands)
        shown = {b.key for b in OcindexApp.BINDINGS if isinstance(b, Binding) and b.show}
        keys = await footer_keys(pilot, shown | {"p"})
        assert shown - {"p"} <= keys and "p" in keys
        flush = next(c for c in commands if c.title == "Flush (f)")
        await flush.callback()
        await settle(pilot)
        assert facade.actions() == [("flush", ())]


async def test_the_palette_follows_the_state(facade: FakeFacade) -> None:
    facade.active, facade.rollout = "v1", 0
    app = make_app(facade)
    async with app.run_test(size=(120, 36)) as pilot:
        app.post_message(SnapshotReady(facade.snapshot()))
        await settle(pilot)
        await pilot.press("p")
        await pilot.pause()
        names = titles(list(app.get_system_commands(app.screen)))
        assert "Resume (p)" in names and "Pause (p)" not in names
        assert "Rollback (b)" not in names  # nothing to roll back: listed, dimmed, with why
        assert "Rollout -10% (-)" not in names  # already at 0%
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        rollback = commands["Rollback (b) · unavailable"]
        assert "nothing to roll back" in rollback.help
        assert "already 0%" in commands["Rollout -10% (-) · unavailable"].help
        rollback.callback()
        await settle(pilot)
        assert facade.actions() == []
        assert any("nothing to roll back" in n.message for n in app._notifications)


async def test_the_palette_shows_unavailable_commands_dimmed(facade: FakeFacade) -> None:
    facade.active, facade.rollout = "v1", 0
    app = make_app(facade)
    async with app.run_test(size=(120, 36)) as pilot:
        app.post_message(SnapshotReady(facade.snapshot()))
        await settle(pilot)
        hits = [hit async for hit in DashboardCommands(app.screen).discover()]
        shown = {hit.text: hit.display for hit in hits}
        dimmed = shown["Rollback (b) · unavailable"]
        assert isinstance(dimmed, Content) and "dim" in str(dimmed.spans)
        assert "dim" not in str(cast(Content, shown["Flush (f)"]).spans)


async def test_narrow_footer_keeps_the_action_keys(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        app.post_message(SnapshotReady(facade.snapshot()))
        await settle(pilot)
        footer = app.screen.query_one(Footer)
        wanted = {"f", "r", "v", "b", "plus", "minus", "p", "a", "question_mark", "q"}
        assert wanted <= await footer_keys(pilot, wanted)
        assert not footer.show_command_palette
        assert sum(key.size.width for key in footer.query(FooterKey)) < 80
