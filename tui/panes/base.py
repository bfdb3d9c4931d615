"""What every pane shares: the digit in its border title, the `show` verb, and a row table that
keeps its cursor and scroll across refreshes. Never calls the engine or formats a figure itself.
"""

from __future__ import annotations

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

    def show(self, snapshot: IndexerSnapshot) -> None:
        """Show this snapshot; the pane lays it out again by itself when resized."""
        self.snapshot = snapshot
        self.fill(snapshot)

    def fill(self, snapshot: IndexerSnapshot) -> None:
        raise NotImplementedError

    @property
    def wide(self) -> bool:
        return self.content_size.width >= self.WIDE

    def on_resize(self, event: Resize) -> None:
        if self.snapshot is not None:
            self.fill(self.snapshot)

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
        self.wants_cursor = True
        """False for a table only read, never navigated (the cursor is hidden while empty)."""
        """Shown, dimmed, in place of the rows while there are none: what would appear, why."""
        self._columns: tuple[Col, ...] = ()
        self._rows: tuple[Row, ...] = ()
        self._shown: tuple[tuple[tuple[str, str, int], ...], tuple[Row, ...]] | None = None

    @property
    def row_keys(self) -> list[str]:
        return [key for key, _ in self._rows]

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self._rows or self.row_count == 0:
            return None
        index = min(max(self.cursor_row, 0), len(self._rows) - 1)
        return self._rows[index][0]

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
        columns, rows = self._columns, self._rows
        if not rows and self.empty:
            columns, rows = (Col(EMPTY_KEY, ""),), ((EMPTY_KEY, (self.empty,)),)
        flex = self._flex_width(columns)
        widths = tuple(flex if c.width is None else c.width for c in columns)
        header = tuple((c.key, c.label, w) for c, w in zip(columns, widths, strict=True))
        if (header, rows) == self._shown:
            return
        columns_changed = self._shown is None or self._shown[0] != header
        self._shown = (header, rows)
        keep_scroll = self.scroll_y
        self.clear(columns=columns_changed)
        if columns_changed:
            for col, width in zip(columns, widths, strict=True):
                self.add_column(Text(col.label, justify=col.justify), width=width, key=col.key)
        for key, cells in rows:
            # the hint row grows to show its whole sentence; a row of data is one line
            height = None if key == EMPTY_KEY else 1
            self.add_row(*self._cells(columns, cells, widths), key=key, height=height)
        self.show_cursor = self.wants_cursor and bool(self._rows)
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
