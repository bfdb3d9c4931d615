"""The full record of one error file: path, kind, reason, status, attempts and the whole message.
Never retries by itself: R dismisses with True and the app runs the retry.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from indexer.snapshot import ErrorFile
from tui import format as fmt
from tui import keys


class ErrorDetailScreen(ModalScreen[bool]):
    """Dismisses with True when the user asked for a retry, False when closed."""

    AUTO_FOCUS = "#detail-scroll"
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("error_detail")

    def __init__(self, error: ErrorFile) -> None:
        super().__init__(classes="error-detail")
        self._error = error

    def compose(self) -> ComposeResult:
        e = self._error
        fields = Content.from_markup(
            "[b]$path[/]\n\n"
            "[dim]kind[/] $kind   [dim]reason[/] [b $error]$reason[/]   "
            "[dim]status[/] $status   [dim]attempts[/] $attempts",
            path=e.rel_path,
            kind=e.kind,
            reason=e.reason,
            status=e.status,
            attempts=fmt.count(e.attempts),
        )
        with Vertical(id="detail-dialog", classes="dialog") as dialog:
            dialog.border_title = "Error file"
            dialog.border_subtitle = "R retry · esc close"
            yield Static(fields, id="detail-fields")
            with VerticalScroll(id="detail-scroll"):
                yield Static(e.message or "(no message)", id="detail-message", markup=False)
        yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(False)

    def action_retry(self) -> None:
        self.dismiss(True)
