"""The help screen: every key, what each pane means and how to read the histogram, from
assets/help.md and the key registry. Never reads the engine; it scrolls, closes or quits.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

from tui import keys


def help_markdown(path: Path) -> str:
    """The help file with its table of keys filled in; a short note when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"# Help\n\nThe help file could not be read: {exc}"
    return keys.with_key_table(text)


class HelpScreen(ModalScreen[None]):
    AUTO_FOCUS = "#help-scroll"
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("help")

    def __init__(self, markdown: str) -> None:
        super().__init__(classes="help")
        self._markdown = markdown

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-scroll", classes="dialog") as scroll:
            scroll.border_title = "ocindex help"
            scroll.border_subtitle = "↑↓ PgUp PgDn scroll · esc close"
            yield Markdown(self._markdown, id="help-text")
        yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_close_help(self) -> None:
        self.dismiss(None)
