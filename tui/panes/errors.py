"""Pane 4: the files that failed to index (path, kind, reason, attempts); enter asks for the full
message, R asks for a retry. Never retries by itself: it posts a request the app carries out.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widget import Widget
from textual.widgets import DataTable

from indexer.snapshot import ErrorFile, IndexerSnapshot
from tui import format as fmt
from tui import keys
from tui.messages import ErrorChosen, RetryRequested
from tui.panes.base import Col, Pane, Row, RowsTable


def columns(wide: bool) -> tuple[Col, ...]:
    """Narrow panes drop the kind: the path's first folder says it already."""
    if not wide:
        return (
            Col("path", "path"),
            Col("reason", "reason", 12),
            Col("attempts", "try", 3, "right"),
        )
    return (
        Col("path", "path"),
        Col("kind", "kind", 8),
        Col("reason", "reason", 15),
        Col("attempts", "tries", 5, "right"),
    )


NO_ERRORS = "no error yet: a file still unreadable once settled shows here"


class ErrorTable(RowsTable):
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("error_table")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("retry", "select_cursor") and self.selected_key() is None:
            return None
        return True

    def action_retry(self) -> None:
        key = self.selected_key()
        if key is not None:
            self.post_message(RetryRequested(key))


class ErrorsPane(Pane):
    DIGIT = "4"
    TITLE = "Errors"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._errors: dict[str, ErrorFile] = {}

    def compose(self) -> ComposeResult:
        yield ErrorTable(id="errors-table", empty=NO_ERRORS)

    def focus_target(self) -> Widget:
        return self.query_one(ErrorTable)

    def fill(self, snapshot: IndexerSnapshot) -> None:
        errors = snapshot.errors
        self._errors = {e.rel_path: e for e in errors}
        total = max(snapshot.totals.get("error", 0), len(errors))
        self.border_subtitle = fmt.files(total) if total else "no error"
        cols = columns(self.wide)
        rows: list[Row] = []
        for e in errors:
            cells = {
                "path": e.rel_path,
                "kind": e.kind,
                "reason": e.reason,
                "attempts": fmt.compact(e.attempts),
            }
            rows.append((e.rel_path, tuple(cells[c.key] for c in cols)))
        table = self.query_one(ErrorTable)
        had_rows = bool(table.row_keys)
        table.set_rows(cols, rows)
        if had_rows != bool(rows):
            table.refresh_bindings()

    def selected(self) -> ErrorFile | None:
        key = self.query_one(ErrorTable).selected_key()
        return None if key is None else self._errors.get(key)

    @on(DataTable.RowSelected, "#errors-table")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        error = self._errors.get(str(event.row_key.value))
        if error is not None:
            self.post_message(ErrorChosen(error))
