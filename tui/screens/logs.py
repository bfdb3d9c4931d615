"""The log screen: this session's log lines, live, newest at the bottom, with the lowest level
shown, a filter, and follow. Never writes a log line; it reads the LogBook on a timer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, RichLog, Static

from tui import keys
from tui.filterbar import FilterBar
from tui.logbook import KEEP, LogBook, LogLine

REFRESH_S = 0.5
LEVELS = (logging.INFO, logging.WARNING, logging.ERROR)
STYLES = {logging.WARNING: "bold yellow", logging.ERROR: "bold red", logging.CRITICAL: "bold red"}


def line_text(line: LogLine, local_time: Callable[[float], time.struct_time]) -> Text:
    """'14:02:11 WARNING pipeline.v2  error: part/…json: invalid_json'."""
    text = Text()
    text.append(time.strftime("%H:%M:%S ", local_time(line.created)), style="dim")
    text.append(f"{line.level_name:<8}", style=STYLES.get(line.level, ""))
    text.append(f"{line.source.removeprefix('indexer.'):<20} ", style="dim")
    text.append(line.message)
    return text


class LogScreen(ModalScreen[None]):
    """Full screen over the dashboard; `l` or esc closes it."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("logs")

    def __init__(self, book: LogBook, refresh_s: float | None = REFRESH_S) -> None:
        super().__init__(classes="logs")
        self._book = book
        self._refresh_s = refresh_s
        self._seen = 0
        self._lines: list[LogLine] = []
        self.min_level = logging.INFO
        self.filter_text = ""
        self.follow = True

    def compose(self) -> ComposeResult:
        with Vertical(id="logs-body") as body:
            body.border_title = "Log of this session"
            yield Static("", id="logs-state")
            # wrapped to the screen's width: a long message stays whole, no sideways scrolling
            yield RichLog(id="logs-lines", max_lines=KEEP, wrap=True, min_width=20)
        yield FilterBar(id="logs-filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.pull()
        if self._refresh_s:
            self.set_interval(self._refresh_s, self.pull)

    def shown(self, line: LogLine) -> bool:
        needle = self.filter_text.casefold()
        if line.level < self.min_level:
            return False
        return not needle or needle in f"{line.source} {line.message}".casefold()

    def pull(self) -> None:
        """Add the lines logged since the last pull."""
        fresh = self._book.since(self._seen)
        if fresh:
            self._seen = fresh[-1].seq
            self._lines = [*self._lines, *fresh][-KEEP:]
            view = self.query_one(RichLog)
            for line in fresh:
                if self.shown(line):
                    view.write(line_text(line, self._book.local_time), scroll_end=self.follow)
        self._show_state()

    def redraw(self) -> None:
        view = self.query_one(RichLog)
        view.clear()
        for line in self._lines:
            if self.shown(line):
                view.write(line_text(line, self._book.local_time), scroll_end=False)
        if self.follow:
            view.scroll_end(animate=False)
        self._show_state()

    def visible_count(self) -> int:
        return sum(1 for line in self._lines if self.shown(line))

    def _show_state(self) -> None:
        level = logging.getLevelName(self.min_level)
        parts = [f"{level} and above (w)"]
        if self.filter_text:
            parts.append(f"containing “{self.filter_text}” (/)")
        parts.append("following the newest (f)" if self.follow else "not following (f: follow)")
        total = len(self._lines)
        shown = self.visible_count()
        if not total:
            parts.append("nothing logged yet: the engine logs its start, each scan and each error")
        else:
            parts.append(f"{shown} of {total} lines")
        self.query_one("#logs-state", Static).update(" · ".join(parts))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_cycle_level(self) -> None:
        at = LEVELS.index(self.min_level) if self.min_level in LEVELS else 0
        self.min_level = LEVELS[(at + 1) % len(LEVELS)]
        self.redraw()

    def action_follow(self) -> None:
        self.follow = not self.follow
        view = self.query_one(RichLog)
        view.auto_scroll = self.follow
        if self.follow:
            view.scroll_end(animate=False)
        self._show_state()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open("the log", self.filter_text)

    @on(Input.Changed, "#logs-filter")
    def _typed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.redraw()

    @on(FilterBar.Closed, "#logs-filter")
    def _filter_closed(self, event: FilterBar.Closed) -> None:
        if not event.kept:
            self.filter_text = ""
            self.redraw()
        self.query_one(RichLog).focus()
