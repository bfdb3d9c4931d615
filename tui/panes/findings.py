"""Pane 3: the reconciler's recent scans (when, how long, what they found) and the files the
highlighted scan found. Never starts a scan: `r` does that through the app.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable

from indexer.snapshot import IndexerSnapshot
from tui import format as fmt
from tui.panes.base import Col, Pane, Row, RowsTable


def scan_columns(wide: bool) -> tuple[Col, ...]:
    cols = [Col("when", "when", 6), Col("took", "took", 7, "right")]
    if wide:
        cols.append(Col("seen", "seen", 7, "right"))
    cols += [Col(key, key, 5 if wide else 4, "right") for key in ("new", "mod", "del")]
    return tuple(cols)


class FindingsPane(Pane):
    DIGIT = "3"
    TITLE = "Reconciler"

    def compose(self) -> ComposeResult:
        yield RowsTable(id="scans-table")
        found = RowsTable(id="found-table")
        found.can_focus = False
        found.show_cursor = False
        yield found

    def focus_target(self) -> Widget:
        return self.query_one("#scans-table", RowsTable)

    def fill(self, snapshot: IndexerSnapshot) -> None:
        last = snapshot.last_reconcile
        if last is None:
            self.border_subtitle = "no scan yet"
        else:
            found = last.new_files + last.modified_files + last.deleted_files
            self.border_subtitle = (
                f"last {fmt.ago(last.started_at, snapshot.taken_at)} · {fmt.count(found)} found"
            )
        table = self.query_one("#scans-table", RowsTable)
        cols = scan_columns(self.wide)
        rows: list[Row] = []
        for scan in snapshot.reconciles:
            cells = {
                "when": fmt.since(scan.started_at, snapshot.taken_at),
                "took": fmt.ms(scan.duration_ms),
                "seen": fmt.compact(scan.files_seen),
                "new": fmt.compact(scan.new_files),
                "mod": fmt.compact(scan.modified_files),
                "del": fmt.compact(scan.deleted_files),
            }
            rows.append((str(scan.scan_id), tuple(cells[c.key] for c in cols)))
        table.set_rows(cols, rows)
        self._show_found(table.selected_key())

    @on(DataTable.RowHighlighted, "#scans-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_found(event.row_key.value)

    def _show_found(self, scan_key: str | None) -> None:
        snap = self.snapshot
        scans = () if snap is None else snap.reconciles
        scan = next((s for s in scans if str(s.scan_id) == scan_key), None)
        table = self.query_one("#found-table", RowsTable)
        if scan is None:
            table.set_rows((Col("path", "found"),), ())
            return
        total = scan.new_files + scan.modified_files + scan.deleted_files
        when = "just now" if snap is None else fmt.ago(scan.started_at, snap.taken_at)
        label = f"found by the scan {when} ({fmt.count(total)})"
        rows: list[Row] = [(path, (path,)) for path in sorted(scan.found)]
        table.set_rows((Col("path", label),), rows)
