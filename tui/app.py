"""The dashboard app: composes the panes, carries out the keys of tui/keys.py, polls the engine
and runs actions in thread workers. The UI thread never calls the engine, never waits on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.command import Provider
from textual.containers import Grid
from textual.css.query import NoMatches
from textual.events import Key, Resize
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from indexer.snapshot import ActionResult, IndexerFacade, IndexerSnapshot
from tui import format as fmt
from tui import intent, keys, rowkeys
from tui.confirmed import ConfirmedActions
from tui.filterbar import FilterBar
from tui.find import Find
from tui.logbook import LogBook
from tui.messages import ActionFinished, ErrorChosen, RetryRequested, SnapshotFailed, SnapshotReady
from tui.palette import DashboardCommands, palette_commands
from tui.panes.base import Pane
from tui.panes.errors import ErrorsPane
from tui.panes.findings import FindingsPane
from tui.panes.header import AlertBanner, StatusHeader
from tui.panes.latency import LatencyPane
from tui.panes.pending import PendingPane
from tui.screens.ab import ABScreen
from tui.screens.data import DataScreens
from tui.screens.error_detail import ErrorDetailScreen
from tui.screens.help import HelpScreen, help_markdown
from tui.screens.logs import LogScreen


def assets_dir() -> Path:
    """tui/assets in an installed wheel, else the repository's top-level assets/."""
    packaged = Path(__file__).parent / "assets"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "assets"


ASSETS = assets_dir()
DEFAULT_POLL_S = 0.5
NARROW_BELOW = 100
"""Terminal columns below which the footer drops its command-palette hint."""
SHORT_BELOW = 30
"""Terminal rows below which the header drops the storage line (unless the engine says more)."""
PANES: tuple[str, ...] = ("pending", "latency", "findings", "errors")


class OcindexApp(rowkeys.RowKeys, DataScreens, ConfirmedActions, App[int]):
    """The live dashboard over one `IndexerFacade`.

    `poll_interval` is the seconds between snapshots (None: no timer; snapshots arrive only as
    posted `SnapshotReady` messages or after an action). `clock` says how stale a snapshot is.
    """

    TITLE = "ocindex"
    CSS_PATH = str(ASSETS / "ocindex.tcss")
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("app")
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {DashboardCommands}

    paused: reactive[bool] = reactive(False, toggle_class="-paused")

    def __init__(
        self,
        facade: IndexerFacade,
        poll_interval: float | None = DEFAULT_POLL_S,
        clock: Callable[[], float] = time.time,
        logbook: LogBook | None = None,
    ) -> None:
        super().__init__()
        self._facade = facade
        self.logbook = logbook or LogBook()
        """The session's log lines (tui/entry.py attaches it to logging; else it stays empty)."""
        self._find = Find(self)
        self._poll_interval = poll_interval
        self._clock = clock
        self._stale_after = max(5.0, 4 * (poll_interval or 0.0))
        self.latest: IndexerSnapshot | None = None
        """The newest snapshot received (rendered unless paused)."""
        self.shown: IndexerSnapshot | None = None
        """The snapshot on screen."""
        self.busy = ""
        """The action in flight, '' when none; one action runs at a time."""
        self._planned = ""
        self._polling = False
        self._repoll = False
        self._poll_timer: Timer | None = None
        self._poll_error = ""
        self._binding_state: tuple[object, ...] = ()
        self.narrow = False
        """Fewer than NARROW_BELOW columns: a shorter footer."""

    # ---- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield AlertBanner(id="alert")
        with Grid(id="panes"):
            yield PendingPane(id="pending")
            yield LatencyPane(id="latency")
            yield FindingsPane(id="findings")
            yield ErrorsPane(id="errors")
        yield FilterBar(id="filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.main.query_one(AlertBanner).display = False
        if self._poll_interval is not None:
            self.poll_now()
            self.set_interval(1.0, self._check_stale)

    @property
    def facade(self) -> IndexerFacade:
        return self._facade

    def _closing_down(self) -> bool:
        """True once the screens are being torn down (after `q`, or the process ending)."""
        return not self.screen_stack or not self.main.is_attached

    @property
    def main(self) -> Screen[object]:
        """The dashboard screen, also while another screen is pushed over it (a bare
        `self.query_one` would search the screen on top)."""
        return self.screen_stack[0]

    def on_resize(self, event: Resize) -> None:
        """Narrow terminals give the footer's room to keys; short ones get a 2-line header."""
        narrow = event.size.width < NARROW_BELOW
        short = event.size.height < SHORT_BELOW
        self.set_class(short, "-short")
        self.main.query_one(StatusHeader).short = short
        if narrow != self.narrow:
            self.narrow = narrow
            self.main.query_one(Footer).show_command_palette = not narrow
            self.refresh_bindings()

    def pane(self, number: int) -> Pane:
        return self.main.query_one(f"#{PANES[number - 1]}", Pane)

    # ---- snapshots ----------------------------------------------------------------------------

    def poll_now(self) -> None:
        """Take a snapshot now, or right after the one in flight: polls never overlap."""
        if self._polling:
            self._repoll = True
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._polling = True
        self._poll_worker()

    @work(thread=True, group="poll", exit_on_error=False, description="facade.snapshot()")
    def _poll_worker(self) -> None:
        try:
            snapshot = self._facade.snapshot()
        except Exception as exc:
            self.post_message(SnapshotFailed(fmt.one_line(str(exc)) or type(exc).__name__))
            return
        self.post_message(SnapshotReady(snapshot))

    def _poll_finished(self) -> None:
        self._polling = False
        if self._repoll:
            self._repoll = False
            self.poll_now()
        elif self._poll_interval is not None:
            self._poll_timer = self.set_timer(self._poll_interval, self.poll_now)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if event.worker.group == "poll":
            self._poll_finished()
        elif event.worker.group == "action" and event.state != WorkerState.SUCCESS:
            self._action_done(ActionResult(self.busy or "action", False, "action failed"))

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
        if self._closing_down():
            return  # a poll that finished while the app was quitting: nothing left to draw on
        self.latest = message.snapshot
        if self._poll_error:
            self._poll_error = ""
            self.main.query_one(StatusHeader).poll_error = ""
        self._sync_bindings()
        if not self.paused:
            self._render(message.snapshot)

    @on(SnapshotFailed)
    def _snapshot_failed(self, message: SnapshotFailed) -> None:
        if self._closing_down():
            return
        if message.error != self._poll_error:
            self.notify(message.error, title="Snapshot failed", severity="error")
        self._poll_error = message.error
        self.main.query_one(StatusHeader).poll_error = message.error

    def _render(self, snapshot: IndexerSnapshot) -> None:
        self.shown = snapshot
        with self.batch_update():
            self.main.query_one(StatusHeader).show(snapshot)
            self.main.query_one(AlertBanner).show(snapshot)
            for number in range(1, len(PANES) + 1):
                self.pane(number).show(snapshot)
        self._check_stale()

    def _check_stale(self) -> None:
        if self._closing_down():
            return
        try:
            header = self.main.query_one(StatusHeader)
        except NoMatches:
            return  # the timer ticked while `q` was removing the panes
        snap = self.shown
        age = 0.0 if snap is None else self._clock() - snap.taken_at
        header.stale_s = age if age > self._stale_after else 0.0

    def watch_paused(self, paused: bool) -> None:
        self.main.query_one(StatusHeader).paused = paused
        if not paused and self.latest is not None and self.latest is not self.shown:
            self._render(self.latest)
        self.refresh_bindings()

    # ---- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_pane":
            return not self.narrow
        if action in ("pane", "narrow"):
            return self.narrow
        if action in keys.WIDE_ONLY:
            return not self.narrow
        if action == "pause":
            return not self.paused
        if action == "resume":
            return self.paused
        if action in keys.MUTATIONS:
            return None if self.why_unavailable(action, parameters) else True
        return True

    def why_unavailable(self, action: str, parameters: tuple[object, ...] = ()) -> str:
        """Why an engine-changing action cannot act now; '' when it can."""
        delta = int(str(parameters[0])) if parameters else 0
        return intent.unavailable(action, delta, self.latest, self.busy)

    def on_key(self, event: Key) -> None:
        """A dimmed key says why it does nothing instead of staying silent."""
        for key in keys.in_scope("app"):
            if key.key != event.key or key.action_name not in keys.MUTATIONS:
                continue
            reason = self.why_unavailable(key.action_name, key.parameters)
            if reason:
                self.notify(reason, title=f"{key.label} ({key.shown_key})", severity="warning")
                event.stop()
                return

    def _sync_bindings(self) -> None:
        snap = self.latest
        state = (
            self.busy,
            self.paused,
            None if snap is None else (snap.active, snap.rollout_percent),
        )
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def _start_action(self, name: str, call: Callable[[], ActionResult], planned: str = "") -> None:
        """Run `call` in a worker; `planned` is the toast's sentence if it works."""
        self._planned = planned
        self.busy = name
        self.main.query_one(StatusHeader).busy = name
        self._sync_bindings()
        self._action_worker(name, call)

    @work(thread=True, group="action", exit_on_error=False, description="facade action")
    def _action_worker(self, name: str, call: Callable[[], ActionResult]) -> None:
        try:
            result = call()
        except Exception as exc:
            text = fmt.one_line(str(exc)) or type(exc).__name__
            result = ActionResult(name, False, f"{name} failed: {text}")
        self.post_message(ActionFinished(result))

    @on(ActionFinished)
    def _action_finished(self, message: ActionFinished) -> None:
        self._action_done(message.result)

    def _action_done(self, result: ActionResult) -> None:
        if not self.busy:
            return
        self.busy = ""
        self.main.query_one(StatusHeader).busy = ""
        self._sync_bindings()
        title, text = intent.toast(result, self._planned)
        self._planned = ""
        self.notify(text, title=title, severity="information" if result.ok else "error")
        self.poll_now()

    def action_flush(self) -> None:
        self._start_action("flush", self._facade.flush)

    def action_rescan(self) -> None:
        self._start_action("rescan", self._facade.rescan)

    def action_pause(self) -> None:
        self.paused = True

    def action_resume(self) -> None:
        self.paused = False

    def action_ab(self) -> None:
        active = "v1" if self.latest is None else self.latest.active
        refresh = None if self._poll_interval is None else max(2.0, 4 * self._poll_interval)
        self.push_screen(ABScreen(self._facade, active, refresh))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_markdown(ASSETS / "help.md")))

    def action_focus_pane(self, number: int) -> None:
        self.pane(number).focus_target().focus()

    def action_pane(self, number: int) -> None:
        self.action_focus_pane(number)

    def action_narrow(self, action: str) -> None:
        """A wide-only key pressed in a narrow terminal: the same action."""
        getattr(self, f"action_{action}")()

    def action_logs(self) -> None:
        self.push_screen(LogScreen(self.logbook, None if self._poll_interval is None else 0.5))

    # ---- find: `/` filters and `s` sorts the focused pane's list ------------------------------

    def action_filter(self) -> None:
        self._find.open_filter()

    @on(Input.Changed, "#filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        self._find.typed(event.value)

    @on(FilterBar.Closed, "#filter")
    def _filter_closed(self, event: FilterBar.Closed) -> None:
        self._find.closed(event.kept)

    def action_sort(self) -> None:
        self._find.sort()

    @on(ErrorChosen)
    def _error_chosen(self, message: ErrorChosen) -> None:
        error = message.error

        def closed(retry: bool | None) -> None:
            if retry:
                self._retry(error.rel_path)

        self.push_screen(ErrorDetailScreen(error), closed)

    @on(RetryRequested)
    def _retry_requested(self, message: RetryRequested) -> None:
        self._retry(message.rel_path)

    def _retry(self, rel_path: str) -> None:
        if self.busy:
            self.notify(f"wait for {self.busy} to finish", title="Retry", severity="warning")
            return
        self._start_action("retry", partial(self._facade.retry, rel_path))

    # ---- command palette ----------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, ModalScreen):
            yield from palette_commands(self)
