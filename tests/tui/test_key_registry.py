"""The key registry: each owner binds exactly its keys, the help table lists every key the footer
shows, and the help file gets its table filled in from the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui import keys
from tui.app import ASSETS, OcindexApp
from tui.filterbar import FilterBar
from tui.panes.errors import ErrorTable
from tui.screens.ab import ABScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.error_detail import ErrorDetailScreen
from tui.screens.help import HelpScreen, help_markdown
from tui.screens.logs import LogScreen
from tui.screens.trial import TrialPicker, TrialScreen

OWNED: dict[keys.Scope, list[BindingType]] = {
    "app": OcindexApp.BINDINGS,
    "error_table": ErrorTable.BINDINGS,
    "error_detail": ErrorDetailScreen.BINDINGS,
    "ab": ABScreen.BINDINGS,
    "trial_pick": TrialPicker.BINDINGS,
    "trial": TrialScreen.BINDINGS,
    "confirm": ConfirmScreen.BINDINGS,
    "help": HelpScreen.BINDINGS,
    "logs": LogScreen.BINDINGS,
    "filter_bar": FilterBar.BINDINGS,
}


@pytest.mark.parametrize("scope", list(OWNED))
def test_each_owner_binds_exactly_the_keys_of_its_scope(scope: keys.Scope) -> None:
    assert [b.id for b in OWNED[scope] if isinstance(b, Binding)] == [
        k.id for k in keys.in_scope(scope)
    ]


def test_every_key_id_is_defined_once() -> None:
    assert len(keys.BY_ID) == len(keys.KEYS)


def test_the_keys_the_help_credits_to_textual_are_textuals_own() -> None:
    screen_keys = {b.key for b in Screen.BINDINGS if isinstance(b, Binding)}
    for key in keys.in_scope("textual"):
        assert key.key == App.COMMAND_PALETTE_BINDING or key.key in screen_keys, key.key


def test_the_mutating_actions_are_the_ones_that_change_the_engine() -> None:
    assert {"flush", "rescan", "switch", "rollback", "rollout"} == keys.MUTATIONS


def test_the_help_table_lists_every_key_the_footer_shows() -> None:
    table = keys.key_table()
    for key in keys.in_scope("app"):
        if key.show:
            assert f"`{key.shown_key}`" in table, key.id
    assert "`enter`" in table and "`R`" in table


def test_the_help_file_gets_its_key_table_from_the_registry() -> None:
    text = help_markdown(ASSETS / "help.md")
    assert keys.KEY_TABLE_MARKER not in text
    assert "## Keys\n\n| key | what it does |\n|---|---|\n| `f` | **Flush**" in text
    assert keys.key_table() in text


def test_an_unreadable_help_file_becomes_a_short_note(tmp_path: Path) -> None:
    text = help_markdown(tmp_path / "missing.md")
    assert text.startswith("# Help\n\nThe help file could not be read: ")
