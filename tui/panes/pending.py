"""Pane 1: the files waiting in the open batch, newest first, with their count and oldest age.
Never sorts by anything the engine did not give: age is the engine's figure for each file.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from indexer.snapshot import IndexerSnapshot
from tui import format as fmt
from tui.panes.base import Col, Pane, Row, RowsTable


def columns(wide: bool) -> tuple[Col, ...]:
    """Narrow panes drop the kind: the path's first folder says it already."""
    if not wide:
        return (Col("path", "path"), Col("age", "age", 6, "right"))
    return (Col("path", "path"), Col("kind", "kind", KIND_WIDTH), Col("age", "age", 6, "right"))


MAX_ROWS = 500
KIND_WIDTH = 15
"""Wide enough for the longest kind, message_content."""
NOTHING_PENDING = "nothing waiting: a changed file shows here until its batch is committed"


class PendingPane(Pane):
    DIGIT = "1"
    TITLE = "Pending"

    def compose(self) -> ComposeResult:
        yield RowsTable(id="pending-table", empty=NOTHING_PENDING)

    def focus_target(self) -> Widget:
        return self.query_one(RowsTable)

    def fill(self, snapshot: IndexerSnapshot) -> None:
        if snapshot.pending_count:
            oldest = fmt.duration(snapshot.oldest_pending_age_s)
            self.border_subtitle = f"{fmt.files(snapshot.pending_count)} · oldest {oldest}"
        else:
            self.border_subtitle = "nothing waiting"
        newest_first = sorted(snapshot.pending, key=lambda p: (p.age_s, p.rel_path))[:MAX_ROWS]
        cols = columns(self.wide)
        rows: list[Row] = []
        for p in newest_first:
            cells = {"path": p.rel_path, "kind": p.kind, "age": fmt.duration(p.age_s)}
            rows.append((p.rel_path, tuple(cells[c.key] for c in cols)))
        self.query_one(RowsTable).set_rows(cols, rows)
