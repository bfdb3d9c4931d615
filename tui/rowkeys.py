"""`y` and `o` on the dashboard: the selected row's path copied (OSC 52, through Textual), or its
file opened in $PAGER (a SQLite row as its JSON document, in a temporary file). Never writes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from textual.app import SuspendNotSupported
from textual.notifications import SeverityLevel

from indexer.config import process_env
from indexer.snapshot import IndexerSnapshot
from indexer.sources.locate import file_path, find_document, is_row
from tui import format as fmt
from tui.find import Dashboard as FindDashboard
from tui.find import Find

DEFAULT_PAGER = "less"


@runtime_checkable
class HasSources(Protocol):
    """An engine that says which change sources it reads (IndexerService does)."""

    @property
    def sources(self) -> Sequence[object]: ...


class Dashboard(FindDashboard, Protocol):
    """What `y` and `o` need of tui.app.OcindexApp."""

    latest: IndexerSnapshot | None

    @property
    def facade(self) -> object: ...

    def notify(self, message: str, *, title: str = ..., severity: SeverityLevel = ...) -> None: ...

    def copy_to_clipboard(self, text: str) -> None: ...

    def suspend(self) -> AbstractContextManager[None]: ...

    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def run_worker(
        self, work: Callable[[], None], *, thread: bool = ..., group: str = ...
    ) -> Any: ...


def pager_command(path: Path, env: Mapping[str, str]) -> list[str]:
    """$PAGER (words split as a shell would) with the file as its last argument; `less` if unset."""
    words = shlex.split(env.get("PAGER", "")) or [DEFAULT_PAGER]
    return [*words, str(path)]


def selected_key(app: FindDashboard) -> str | None:
    """The key of the selected row of the focused pane's list (pane 1 when none has the focus);
    a toast and None when that pane has no list or no row."""
    pane = Find(app).pane_in_focus()
    table = None if pane is None else pane.filter_target()
    if pane is None or table is None:
        return None
    key = table.selected_key()
    if key is None:
        app.notify(f"pane {pane.DIGIT} ({pane.TITLE}) has no row to act on", title="No row")
    return key


def _sources(app: Dashboard) -> Sequence[object]:
    facade = app.facade
    return facade.sources if isinstance(facade, HasSources) else ()


def _where(app: Dashboard, key: str) -> Path | None:
    root = Path(app.latest.storage_root) if app.latest is not None else Path(".")
    return file_path(key, root, _sources(app))


def page(app: Dashboard, path: Path, shown_as: str) -> None:
    """Hand the terminal to $PAGER on `path` until it exits; a toast when it cannot run."""
    command = pager_command(path, process_env())
    try:
        with app.suspend():
            subprocess.run(command, check=False)
    except SuspendNotSupported:
        app.notify(
            "this terminal cannot hand the screen to a pager", title="Open", severity="warning"
        )
    except OSError as exc:
        app.notify(
            f"cannot run {command[0]}: {exc.strerror or exc}; set $PAGER",
            title="Open",
            severity="error",
        )
    else:
        app.notify(shown_as, title="Opened")


def _page_then_remove(app: Dashboard, path: Path, shown_as: str) -> None:
    try:
        page(app, path, shown_as)
    finally:
        path.unlink(missing_ok=True)


def _write_temporary(text: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix="ocindex-row-", suffix=".json")
    with os.fdopen(fd, "wb") as out:
        out.write(text)
    return Path(name)


def _open_row(app: Dashboard, key: str, sources: Sequence[object]) -> None:
    """In a worker thread: read the row, then page it from the UI thread, then remove it."""
    try:
        path = _write_temporary(find_document(sources, key))
    except (LookupError, OSError) as exc:
        app.call_from_thread(app.notify, str(exc), title="Open", severity="warning")
        return
    try:
        app.call_from_thread(_page_then_remove, app, path, f"{key} as JSON")
    finally:
        path.unlink(missing_ok=True)  # also when the app closed before it could page


class RowKeys:
    """Mixed into the dashboard app: the actions of `y` (copy_path) and `o` (open_row)."""

    def action_copy_path(self: Dashboard) -> None:
        key = selected_key(self)
        if key is None:
            return
        where = _where(self, key)
        text = key if where is None else str(where)
        self.copy_to_clipboard(text)
        self.notify(fmt.one_line(text), title="Copied")

    def action_open_row(self: Dashboard) -> None:
        key = selected_key(self)
        if key is None:
            return
        if is_row(key):
            sources = _sources(self)
            self.run_worker(lambda: _open_row(self, key, sources), thread=True, group="open")
            return
        where = _where(self, key)
        if where is None or not where.is_file():
            gone = key if where is None else str(where)
            self.notify(f"{gone} is not there (deleted or moved)", title="Open", severity="warning")
            return
        page(self, where, str(where))
