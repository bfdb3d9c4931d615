"""The command palette's dashboard commands: every action of tui/keys.py, the ones that cannot act
now shown dimmed with the reason. Never acts itself: a command runs the app's action.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Protocol

from textual.app import SystemCommand
from textual.command import DiscoveryHit, Hit, Hits
from textual.content import Content
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.system_commands import SystemCommandsProvider

from tui import keys
from tui.panes.base import Pane
from tui.panes.errors import ErrorTable


class Dashboard(Protocol):
    """What the palette needs of tui.app.OcindexApp."""

    @property
    def main(self) -> Screen[object]: ...

    def _check_action_state(self, action: str, default_namespace: Any) -> bool | None: ...

    async def run_action(self, action: str, default_namespace: Any = ...) -> bool: ...

    def why_unavailable(self, action: str, parameters: tuple[object, ...] = ...) -> str: ...

    def pane(self, number: int) -> Pane: ...

    def action_focus_pane(self, number: int) -> None: ...

    def notify(self, message: str, *, title: str = ..., severity: SeverityLevel = ...) -> None: ...


UNAVAILABLE = " · unavailable"
"""The end of a command's title while it cannot act; its help line says why."""
SHARED_KEY_TWINS = frozenset({"pause", "resume"})
"""Actions sharing a key with another: only the one that can act is listed."""


def palette_commands(app: Dashboard) -> Iterator[SystemCommand]:
    """The dashboard's commands in footer order, unavailable ones marked."""
    for key in keys.ACTION_KEYS:
        title = f"{key.label} ({key.shown_key})"
        state = app._check_action_state(key.action, app)
        if state is True:
            yield SystemCommand(title, key.palette, partial(app.run_action, key.action))
        elif key.action_name not in SHARED_KEY_TWINS:
            reason = app.why_unavailable(key.action_name, key.parameters) or "not now"
            yield SystemCommand(title + UNAVAILABLE, reason, partial(explain, app, title, reason))
    for number, key in enumerate(keys.FOCUS_KEYS, 1):
        yield SystemCommand(
            f"Focus pane {number}: {app.pane(number).TITLE} ({key.shown_key})",
            key.palette,
            partial(app.action_focus_pane, number),
        )
    table = app.main.query_one(ErrorTable)
    for key in keys.in_scope("error_table"):
        title = f"{key.command} ({key.shown_key})"
        if table.selected_key() is not None:
            yield SystemCommand(title, key.palette, partial(app.run_action, key.action, table))
        else:
            reason = "no error file to act on: pane 4 is empty"
            yield SystemCommand(title + UNAVAILABLE, reason, partial(explain, app, title, reason))


def explain(app: Dashboard, title: str, reason: str) -> None:
    app.notify(reason, title=title, severity="warning")


def _shown(name: str, display: Content | None = None) -> Content:
    content = display if display is not None else Content(name)
    return content.stylize("dim") if name.endswith(UNAVAILABLE) else content


class DashboardCommands(SystemCommandsProvider):
    """Textual's system commands provider, with the unavailable commands dimmed."""

    async def discover(self) -> Hits:
        commands = sorted(self.app.get_system_commands(self.screen), key=lambda c: c[0])
        for name, help_text, callback, discover in commands:
            if discover:
                yield DiscoveryHit(_shown(name), callback, text=name, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback, *_ in self.app.get_system_commands(self.screen):
            if (match := matcher.match(name)) > 0:
                shown = _shown(name, matcher.highlight(name))
                yield Hit(match, shown, callback, text=name, help=help_text)
