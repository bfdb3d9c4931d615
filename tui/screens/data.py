"""The dashboard's actions that open the screens over the index's data: `u` the usage screen, `c`
the SQL console (tui/keys.py binds them). Never reads the index itself: the screens do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from textual.screen import Screen

from indexer.snapshot import IndexerFacade, IndexerSnapshot
from tui.screens.console import ConsoleScreen
from tui.screens.usage import UsageScreen, data_mark

CONSOLE = "console"
"""The name the one console of a dashboard is installed under (it keeps its history)."""


class Dashboard(Protocol):
    """What the actions need of tui.app.OcindexApp."""

    @property
    def facade(self) -> IndexerFacade: ...

    @property
    def latest(self) -> IndexerSnapshot | None: ...

    @property
    def _clock(self) -> Callable[[], float]: ...

    def push_screen(self, screen: Screen[Any] | str) -> object: ...

    def install_screen(self, screen: Screen[Any], name: str) -> None: ...

    def is_screen_installed(self, screen: Screen[Any] | str) -> bool: ...


class DataScreens:
    """Mixed into the app: one action per key, nothing else."""

    def action_usage(self: Dashboard) -> None:
        self.push_screen(UsageScreen(self.facade, lambda: data_mark(self.latest)))

    def action_console(self: Dashboard) -> None:
        if not self.is_screen_installed(CONSOLE):
            self.install_screen(ConsoleScreen(self.facade, self._clock), CONSOLE)
        self.push_screen(CONSOLE)
