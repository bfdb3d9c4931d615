"""What every pane shares: the digit in its border title, the `show` verb, and a row table that
keeps its cursor and scroll across refreshes. Never calls the engine or formats a figure itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.text import Text
from textual.containers import Vertical
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import DataTable

from indexer.snapshot import IndexerSnapshot
from tui import format as fmt

Justify = Literal["left", "right"]
EMPTY_KEY = "__empty__"
"""The key of the hint row an empty RowsTable shows (never a row of the pane's own)."""
Row = tuple[str, tuple[str, ...]]
"""A row key (unique in its table) and its cells, already formatted, in column order."""


@dataclass(frozen=True, slots=True)
class Col:
    key: str
    label: str
    width: int | None = None
    """Cells wide; None marks the one flexible path column, which takes the width left over."""
    justify: Justify = "left"


def sort_value(cell: str) -> tuple[int, float, str]:
    """How a cell sorts: numbers ('1,204', '0.3s', '612 ms', '13k') by value, before text."""
    match = re.fullmatch(r"\s*([\d.,]+)\s*([kM]?)\s*[a-z%]*\s*", cell)
    if match is None:
        return (1, 0.0, cell.casefold())
    try:
        value = float(match[1].replace(",", ""))
    except ValueError:
        return (1, 0.0, cell.casefold())
    return (0, value * {"k": 1e3, "M": 1e6}.get(match[2], 1.0), "")


class Pane(Vertical):
    """A bordered pane titled '<digit> <name>'; the app focuses `focus_target()` on the digit."""

    DIGIT: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""

    WIDE: ClassVar[int] = 56
    """Content width from which a pane shows its wide layout."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = f"[b]{self.DIGIT}[/b] {self.TITLE}"
        self.snapshot: IndexerSnapshot | None = None
        self._subtitle = ""

    def show(self, snapshot: IndexerSnapshot) -> None:
        """Show this snapshot; the pane lays it out again by itself when resized."""
        self.snapshot = snapshot
        self._fill_and_title(snapshot)

    def _fill_and_title(self, snapshot: IndexerSnapshot) -> None:
        self.fill(snapshot)
        self._subtitle = str(self.border_subtitle)
        self.show_filter()

    def show_filter(self) -> None:
        """Say in the subtitle when the pane's list is filtered: the word, and how many rows."""
        table = self.filter_target()
        if table is not None and table.filter_text:
            shown = f"{len(table.row_keys)} of {table.total_rows}"
            self.border_subtitle = f"“{table.filter_text}”: {shown} · {self._subtitle}"
        else:
            self.border_subtitle = self._subtitle

    def filter_target(self) -> RowsTable | None:
        """The list `/` filters and `s` sorts in this pane; None when it has none."""
        target = self.focus_target()
        return target if isinstance(target, RowsTable) else None

    def fill(self, snapshot: IndexerSnapshot) -> None:
        raise NotImplementedError

    @property
    def wide(self) -> bool:
        return self.content_size.width >= self.WIDE

    def on_resize(self, event: Resize) -> None:
        if self.snapshot is not None:
            self._fill_and_title(self.snapshot)

    def focus_target(self) -> Widget:
        return self


class RowsTable(DataTable[Text]):
    """A row-cursor DataTable fed whole row lists; rebuilding keeps the selected row and scroll,
    fits the flexible column to the width, and skips work when nothing changed."""

    FLEX_MIN = 10

    def __init__(
        self, *, id: str | None = None, classes: str | None = None, empty: str = ""
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.empty = empty
        """Shown, dimmed, in place of the rows while there are none: what would appear, why."""
        self.wants_cursor = True
        """False for a table only read, never navigated (the cursor is hidden while empty)."""
        self.filter_text = ""
        """Only rows with a cell containing this (any case) are shown; '' shows every row."""
        self.sort_by: str | None = None
        """The column key rows are sorted by; None keeps the pane's own order."""
        self._columns: tuple[Col, ...] = ()
        self._rows: tuple[Row, ...] = ()
        self._visible: tuple[Row, ...] = ()
        self._shown: tuple[tuple[tuple[str, str, int], ...], tuple[Row, ...]] | None = None

    @property
    def row_keys(self) -> list[str]:
        """The keys of the rows shown (the filter and the sort applied)."""
        return [key for key, _ in self._visible]

    @property
    def total_rows(self) -> int:
        return len(self._rows)

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self._visible or self.row_count == 0:
            return None
        index = min(max(self.cursor_row, 0), len(self._visible) - 1)
        return self._visible[index][0]

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._rebuild(self.selected_key())

    def cycle_sort(self) -> str:
        """Sort by the next column (after the last: the pane's own order); its label or ''."""
        keys = [c.key for c in self._columns if c.label]
        order: list[str | None] = [None, *keys]
        at = order.index(self.sort_by) if self.sort_by in order else 0
        self.sort_by = order[(at + 1) % len(order)]
        self._rebuild(self.selected_key())
        return next((c.label for c in self._columns if c.key == self.sort_by), "")

    def _filtered_sorted(self) -> tuple[Row, ...]:
        rows = self._rows
        needle = self.filter_text.casefold()
        if needle:
            rows = tuple(r for r in rows if any(needle in cell.casefold() for cell in r[1]))
        keys = [c.key for c in self._columns]
        if self.sort_by in keys:
            at = keys.index(self.sort_by)
            rows = tuple(sorted(rows, key=lambda r: sort_value(r[1][at])))
        return rows

    def set_rows(self, columns: Sequence[Col], rows: Sequence[Row]) -> None:
        keep = self.selected_key()
        self._columns = tuple(columns)
        self._rows = tuple(rows)
        self._rebuild(keep)

    def on_resize(self, event: Resize) -> None:
        if self._columns:
            self._rebuild(self.selected_key())

    def _flex_width(self, columns: tuple[Col, ...]) -> int:
        fixed = sum(c.width + 2 for c in columns if c.width is not None)
        room = self.size.width - self.styles.scrollbar_size_vertical - fixed - 2
        return max(self.FLEX_MIN, room)

    def _rebuild(self, keep_key: str | None) -> None:
        """Show `_rows` under `_columns`; the cursor stays on the row keyed `keep_key`."""
        self._visible = self._filtered_sorted()
        columns, rows = self._columns, self._visible
        if self._rows and not rows:
            hint = f"no row contains “{self.filter_text}”: esc in the filter clears it"
            columns, rows = (Col(EMPTY_KEY, ""),), ((EMPTY_KEY, (hint,)),)
        elif not rows and self.empty:
            columns, rows = (Col(EMPTY_KEY, ""),), ((EMPTY_KEY, (self.empty,)),)
        flex = self._flex_width(columns)
        widths = tuple(flex if c.width is None else c.width for c in columns)
        header = tuple(
            (c.key, c.label + (" ▲" if c.key == self.sort_by else ""), w)
            for c, w in zip(columns, widths, strict=True)
        )
        if (header, rows) == self._shown:
            return
        columns_changed = self._shown is None or self._shown[0] != header
        self._shown = (header, rows)
        keep_scroll = self.scroll_y
        self.clear(columns=columns_changed)
        if columns_changed:
            for (key, label, width), col in zip(header, columns, strict=True):
                self.add_column(Text(label, justify=col.justify), width=width, key=key)
        for key, cells in rows:
            # the hint row grows to show its whole sentence; a row of data is one line
            height = None if key == EMPTY_KEY else 1
            self.add_row(*self._cells(columns, cells, widths), key=key, height=height)
        self.show_cursor = self.wants_cursor and bool(self._visible)
        keys = self.row_keys
        if keep_key is not None and keep_key in keys:
            self.move_cursor(row=keys.index(keep_key), animate=False, scroll=False)
        self.scroll_to(y=keep_scroll, animate=False, immediate=True)

    def _cells(
        self, columns: tuple[Col, ...], cells: tuple[str, ...], widths: tuple[int, ...]
    ) -> list[Text]:
        out: list[Text] = []
        for col, width, value in zip(columns, widths, cells, strict=True):
            if col.key == EMPTY_KEY:
                out.append(Text(value, style="dim italic"))
                continue
            text = fmt.fit_path(value, width) if col.width is None else fmt.fit(value, width)
            out.append(Text(text, justify=col.justify, no_wrap=True, overflow="ellipsis"))
        return out
