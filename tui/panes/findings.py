"""Pane 3: the reconciler's recent scans (when, how long, what they found, what events missed)
and the files the highlighted scan found, tagged. Never starts a scan: `r` does that via the app.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable

from indexer.snapshot import IndexerSnapshot, ReconcileSummary
from tui import format as fmt
from tui.panes.base import Col, Pane, Row, RowsTable

KEPT_SCANS = 10
NO_SCAN = "no scan yet: one runs at start, on a timer and on r"
TAGS = ("new", "modified", "deleted")


def scan_columns(wide: bool, several: bool) -> tuple[Col, ...]:
    cols = [Col("when", "when", 6)]
    if wide:
        cols.append(Col("took", "took", 7, "right"))
    if several:
        cols.append(Col("by", "by", 2))
    if wide and not several:  # room for the "by" column
        cols.append(Col("seen", "seen", 7, "right"))
    cols += [Col(key, key, 5 if wide else 4, "right") for key in ("new", "mod", "del")]
    cols.append(Col("missed", "missed" if wide else "miss", 6 if wide else 4, "right"))
    return tuple(cols)


def tagged(scan: ReconcileSummary) -> list[tuple[str, str]]:
    """(tag, path) of each file the scan found: `found` lists the new, then the modified, then
    the deleted files, so the counts tell which is which even when the list was cut short."""
    bounds = (scan.new_files, scan.new_files + scan.modified_files)
    out = []
    for index, path in enumerate(scan.found):
        tag = TAGS[0] if index < bounds[0] else TAGS[1] if index < bounds[1] else TAGS[2]
        out.append((tag, path))
    return out


class FindingsPane(Pane):
    DIGIT = "3"
    TITLE = "Reconciler"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Each indexer's scans, kept across switches: a new indexer starts with none of its own.
        self._scans: dict[str, tuple[str, ReconcileSummary]] = {}

    def compose(self) -> ComposeResult:
        yield RowsTable(id="scans-table", empty=NO_SCAN)
        found = RowsTable(id="found-table")
        found.can_focus = False
        found.wants_cursor = False
        yield found

    def focus_target(self) -> Widget:
        return self.query_one("#scans-table", RowsTable)

    def filter_target(self) -> RowsTable:
        return self.query_one("#found-table", RowsTable)

    def _remember(self, snapshot: IndexerSnapshot) -> list[tuple[str, ReconcileSummary]]:
        for scan in snapshot.reconciles:
            self._scans[f"{snapshot.active}:{scan.scan_id}"] = (snapshot.active, scan)
        newest = sorted(self._scans.items(), key=lambda item: -item[1][1].started_at)
        self._scans = dict(newest[:KEPT_SCANS])
        return [entry for _key, entry in newest[:KEPT_SCANS]]

    def fill(self, snapshot: IndexerSnapshot) -> None:
        scans = self._remember(snapshot)
        if not scans:
            self.border_subtitle = "no scan yet"
        else:
            last = scans[0][1]
            found = last.new_files + last.modified_files + last.deleted_files
            missed = f" · {fmt.count(last.catches)} missed" if last.catches else ""
            ago = fmt.ago(last.started_at, snapshot.taken_at)
            self.border_subtitle = f"last {ago} · {fmt.count(found)} found{missed}"
        table = self.query_one("#scans-table", RowsTable)
        # Another indexer's scans (kept across a switch) say whose they are.
        cols = scan_columns(self.wide, any(by != snapshot.active for by, _ in scans))
        rows: list[Row] = []
        for by, scan in scans:
            cells = {
                "when": fmt.since(scan.started_at, snapshot.taken_at),
                "took": fmt.ms(scan.duration_ms),
                "by": by,
                "seen": fmt.compact(scan.files_seen),
                "new": fmt.compact(scan.new_files),
                "mod": fmt.compact(scan.modified_files),
                "del": fmt.compact(scan.deleted_files),
                "missed": fmt.compact(scan.catches),
            }
            rows.append((f"{by}:{scan.scan_id}", tuple(cells[c.key] for c in cols)))
        # The cursor on the newest scan follows the next one (after `r`, or the interval's).
        follow = table.cursor_row <= 0 or table.selected_key() is None
        table.set_rows(cols, rows)
        if follow and rows:
            table.move_cursor(row=0, animate=False, scroll=False)
        self._show_found(table.selected_key())

    @on(DataTable.RowHighlighted, "#scans-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_found(event.row_key.value)

    def _show_found(self, scan_key: str | None) -> None:
        snap = self.snapshot
        entry = None if scan_key is None else self._scans.get(scan_key)
        table = self.query_one("#found-table", RowsTable)
        if entry is None:
            table.set_rows((Col("path", "found"),), ())
            return
        by, scan = entry
        total = scan.new_files + scan.modified_files + scan.deleted_files
        when = "just now" if snap is None else fmt.ago(scan.started_at, snap.taken_at)
        whose = "" if snap is None or by == snap.active else f" by {by}"
        label = f"found{whose} {when}: {fmt.count(total)}"
        if scan.retried_files:
            label += f", {fmt.count(scan.retried_files)} retried"
        table.empty = (
            "nothing: the index matched the disk"
            if not scan.retried_files
            else "no new, modified or deleted file; only retries"
        )
        rows: list[Row] = [(path, (tag, path)) for tag, path in tagged(scan)]
        table.set_rows((Col("tag", "what", 8), Col("path", label)), rows)
