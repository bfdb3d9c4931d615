"""`/` and `s` on the dashboard: which pane's list they act on, the filter bar's round trip and
the sort's toast. Never reads the engine: it filters and sorts rows already shown.
"""

from __future__ import annotations

from typing import Protocol

from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget

from tui.filterbar import FilterBar
from tui.panes.base import Pane


class Dashboard(Protocol):
    """What Find needs of tui.app.OcindexApp."""

    @property
    def focused(self) -> Widget | None: ...

    @property
    def main(self) -> Screen[object]: ...

    def pane(self, number: int) -> Pane: ...

    def notify(self, message: str, *, title: str = ..., severity: SeverityLevel = ...) -> None: ...


class Find:
    """Owned by the app; remembers the pane whose list the open filter bar filters."""

    def __init__(self, app: Dashboard) -> None:
        self._app = app
        self._filtering: Pane | None = None

    def pane_in_focus(self) -> Pane | None:
        """The focused pane when it has a list (pane 1 when none is focused); else a toast."""
        app = self._app
        node: DOMNode | None = app.focused
        while node is not None and not isinstance(node, Pane):
            node = node.parent
        pane = node if isinstance(node, Pane) else app.pane(1)
        if pane.filter_target() is None:
            text = f"pane {pane.DIGIT} has no list: focus pane 1, 3 or 4 first (their digit)"
            app.notify(text, title="Find", severity="warning")
            return None
        return pane

    def open_filter(self) -> None:
        pane = self.pane_in_focus()
        table = None if pane is None else pane.filter_target()
        if pane is not None and table is not None:
            self._filtering = pane
            bar = self._app.main.query_one(FilterBar)
            bar.open(f"pane {pane.DIGIT} ({pane.TITLE})", table.filter_text)

    def typed(self, text: str) -> None:
        pane = self._filtering
        table = None if pane is None else pane.filter_target()
        if pane is not None and table is not None:
            table.set_filter(text)
            pane.show_filter()

    def closed(self, kept: bool) -> None:
        pane, self._filtering = self._filtering, None
        table = None if pane is None else pane.filter_target()
        if pane is not None and table is not None:
            if not kept:
                table.set_filter("")
                pane.show_filter()
            pane.focus_target().focus()

    def sort(self) -> None:
        pane = self.pane_in_focus()
        table = None if pane is None else pane.filter_target()
        if pane is not None and table is not None:
            label = table.cycle_sort()
            order = f"sorted by {label}" if label else "back in its own order"
            self._app.notify(f"Pane {pane.DIGIT} {order}; s again: the next column", title="Sort")
