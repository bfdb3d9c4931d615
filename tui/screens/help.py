"""The help screen: every key, what each pane means and how to read the histogram, from
assets/help.md. Never reads the engine; it scrolls, closes (esc, ?) or quits (q).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown


class HelpScreen(ModalScreen[None]):
    AUTO_FOCUS = "#help-scroll"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="help_close"),
        Binding("question_mark", "close_help", "Close help", key_display="?", id="help_toggle"),
        Binding("q", "app.quit", "Quit", id="help_quit"),
    ]

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
