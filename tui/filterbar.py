"""The one-line filter under the panes and in the log screen: what is typed filters a list as
it is typed; enter keeps it, esc clears it. Never filters itself: it posts what was typed.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import BindingType
from textual.message import Message
from textual.widgets import Input

from tui import keys


class FilterBar(Input):
    """Hidden until opened; `opened_for` names the list it filters (shown as its placeholder)."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("filter_bar")

    class Closed(Message):
        """The bar closed: `kept` False when esc cleared the filter."""

        def __init__(self, bar: FilterBar, kept: bool) -> None:
            super().__init__()
            self.bar = bar
            self.kept = kept

        @property
        def control(self) -> FilterBar:
            """What `@on(FilterBar.Closed, "#id")` matches its selector against."""
            return self.bar

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="filter-bar")
        self._shut()

    def _shut(self) -> None:
        """Hidden and out of the focus chain (else it would take the focus at start)."""
        self.display = False
        self.can_focus = False

    def open(self, what: str, text: str) -> None:
        self.placeholder = f"filter {what}: type a word · enter keeps it · esc clears it"
        self.value = text
        self.display = True
        self.can_focus = True
        self.focus()

    def action_cancel(self) -> None:
        self.value = ""
        self._shut()
        self.post_message(self.Closed(self, kept=False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._shut()
        self.post_message(self.Closed(self, kept=True))
