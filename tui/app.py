"""The dashboard app: composes the panes, owns every key, polls the engine in a thread worker and
runs actions in thread workers. The UI thread never calls the engine and never waits on it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from indexer.config import ConfigError, default_db_path
from indexer.snapshot import ActionResult, IndexerFacade, IndexerSnapshot
from indexer.storage import resolve_storage_root
from indexer.store.database import DatabaseError
from tui import format as fmt
from tui.messages import (
    ActionFinished,
    ErrorChosen,
    RetryRequested,
    SnapshotFailed,
    SnapshotReady,
)
from tui.panes.base import Pane
from tui.panes.errors import ErrorsPane, ErrorTable
from tui.panes.findings import FindingsPane
from tui.panes.header import AlertBanner, StatusHeader
from tui.panes.latency import LatencyPane
from tui.panes.pending import PendingPane
from tui.screens.ab import ABScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.error_detail import ErrorDetailScreen
from tui.screens.help import HelpScreen


def assets_dir() -> Path:
    """tui/assets in an installed wheel, else the repository's top-level assets/."""
    packaged = Path(__file__).parent / "assets"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "assets"


ASSETS = assets_dir()
DEFAULT_POLL_S = 0.5
STOP_TIMEOUT_S = 20.0
HELD_LOG_LINES = 20
"""Warnings logged during the session that are shown once the dashboard has closed."""
NARROW_BELOW = 100
"""Terminal columns below which the footer drops its command-palette hint."""
SHORT_BELOW = 30
"""Terminal rows below which the header drops the storage line (unless the engine says more)."""
MUTATIONS = frozenset({"flush", "rescan", "switch", "rollback", "rollout"})
PANES: tuple[str, ...] = ("pending", "latency", "findings", "errors")

_PANE_KEYS = Binding.Group("Pane", compact=True)
_ROLLOUT_KEYS = Binding.Group("Rollout", compact=True)

HELP_TEXT: dict[str, str] = {
    "flush": "Commit the open batch now",
    "rescan": "Run a full reconcile scan now",
    "switch": "Switch the active indexer between v1 and v2 (asks first)",
    "rollback": "Roll back to v1 at 0% rollout (asks first)",
    "rollout(10)": "Route 10% more files to v2",
    "rollout(-10)": "Route 10% fewer files to v2",
    "pause": "Freeze the screen; the engine keeps indexing",
    "resume": "Resume the live refresh",
    "ab": "Compare v1 and v2 side by side",
    "help": "Keys, panes and how to read the histogram",
    "quit": "Leave the dashboard; the indexer stops cleanly",
}


class OcindexApp(App[int]):
    """The live dashboard over one `IndexerFacade`.

    `poll_interval` is the seconds between snapshots (None: no timer; snapshots arrive only as
    posted `SnapshotReady` messages or after an action). `clock` says how stale a snapshot is.
    """

    TITLE = "ocindex"
    CSS_PATH = str(ASSETS / "ocindex.tcss")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "flush", "Flush", id="flush"),
        Binding("r", "rescan", "Rescan", id="rescan"),
        Binding("v", "switch", "Switch", id="switch"),
        Binding("b", "rollback", "Rollback", id="rollback"),
        Binding(
            "plus",
            "rollout(10)",
            "Rollout +10%",
            key_display="+",
            id="rollout_up",
            group=_ROLLOUT_KEYS,
        ),
        Binding(
            "minus",
            "rollout(-10)",
            "Rollout -10%",
            key_display="-",
            id="rollout_down",
            group=_ROLLOUT_KEYS,
        ),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("p", "resume", "Resume", id="resume"),
        Binding("a", "ab", "A/B", id="ab"),
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("1", "focus_pane(1)", "Pending", id="focus_pending", group=_PANE_KEYS),
        Binding("2", "focus_pane(2)", "Latency", id="focus_latency", group=_PANE_KEYS),
        Binding("3", "focus_pane(3)", "Reconciler", id="focus_findings", group=_PANE_KEYS),
        Binding("4", "focus_pane(4)", "Errors", id="focus_errors", group=_PANE_KEYS),
        # Under NARROW_BELOW columns these unlisted twins take the digits, so the footer keeps
        # its room for the action keys; each pane's border title still shows its digit.
        Binding("1", "pane(1)", "Pending", show=False, id="focus_pending_narrow"),
        Binding("2", "pane(2)", "Latency", show=False, id="focus_latency_narrow"),
        Binding("3", "pane(3)", "Reconciler", show=False, id="focus_findings_narrow"),
        Binding("4", "pane(4)", "Errors", show=False, id="focus_errors_narrow"),
    ]

    paused: reactive[bool] = reactive(False, toggle_class="-paused")

    def __init__(
        self,
        facade: IndexerFacade,
        poll_interval: float | None = DEFAULT_POLL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._facade = facade
        self._poll_interval = poll_interval
        self._clock = clock
        self._stale_after = max(5.0, 4 * (poll_interval or 0.0))
        self.latest: IndexerSnapshot | None = None
        """The newest snapshot received (rendered unless paused)."""
        self.shown: IndexerSnapshot | None = None
        """The snapshot on screen."""
        self.busy = ""
        """The action in flight, '' when none; one action runs at a time."""
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
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.main.query_one(AlertBanner).display = False
        if self._poll_interval is not None:
            self.poll_now()
            self.set_interval(1.0, self._check_stale)

    @property
    def facade(self) -> IndexerFacade:
        return self._facade

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
        self.latest = message.snapshot
        if self._poll_error:
            self._poll_error = ""
            self.main.query_one(StatusHeader).poll_error = ""
        self._sync_bindings()
        if not self.paused:
            self._render(message.snapshot)

    @on(SnapshotFailed)
    def _snapshot_failed(self, message: SnapshotFailed) -> None:
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
        snap = self.shown
        age = 0.0 if snap is None else self._clock() - snap.taken_at
        self.main.query_one(StatusHeader).stale_s = age if age > self._stale_after else 0.0

    def watch_paused(self, paused: bool) -> None:
        self.main.query_one(StatusHeader).paused = paused
        if not paused and self.latest is not None and self.latest is not self.shown:
            self._render(self.latest)
        self.refresh_bindings()

    # ---- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_pane":
            return not self.narrow
        if action == "pane":
            return self.narrow
        if action == "pause":
            return not self.paused
        if action == "resume":
            return self.paused
        if action in MUTATIONS:
            snap = self.latest
            if self.busy:
                return None
            if action in ("flush", "rescan"):
                return True
            if snap is None:
                return None
            if action == "rollback" and snap.active == "v1" and snap.rollout_percent == 0:
                return None
            if action == "rollout":
                delta = int(str(parameters[0])) if parameters else 0
                target = min(100, max(0, snap.rollout_percent + delta))
                return None if target == snap.rollout_percent else True
        return True

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

    def _start_action(self, name: str, call: Callable[[], ActionResult]) -> None:
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
        title = result.action.replace("_", " ").capitalize()
        text = result.message or ("done" if result.ok else "failed")
        self.notify(text, title=title, severity="information" if result.ok else "error")
        self.poll_now()

    def action_flush(self) -> None:
        self._start_action("flush", self._facade.flush)

    def action_rescan(self) -> None:
        self._start_action("rescan", self._facade.rescan)

    def action_switch(self) -> None:
        snap = self.latest
        if snap is None:
            return
        target = "v2" if snap.active == "v1" else "v1"
        body = (
            f"The active indexer is {snap.active}. Switch to {target}? "
            "Both write the same tables, so nothing is re-indexed."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                call = partial(self._facade.switch_to, target, reason="dashboard: v key")
                self._start_action("switch", call)

        self.push_screen(
            ConfirmScreen(f"Switch to {target}?", body, f"Switch to {target}"), answered
        )

    def action_rollback(self) -> None:
        snap = self.latest
        if snap is None:
            return
        reason = "dashboard: b key"
        if snap.alert is not None:
            reason = f"dashboard: b key on alert: {fmt.alert_line(snap.alert)}"
        body = (
            f"Now: {snap.active} active, v2 rollout {fmt.percent(snap.rollout_percent)}. "
            "Roll back to the legacy v1 indexer and set the v2 rollout to 0%?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._start_action("rollback", partial(self._facade.rollback, reason=reason))

        self.push_screen(ConfirmScreen("Roll back to v1?", body, "Roll back"), answered)

    def action_rollout(self, delta: int) -> None:
        snap = self.latest
        if snap is None:
            return
        target = min(100, max(0, snap.rollout_percent + delta))
        self._start_action("rollout", partial(self._facade.set_rollout, target))

    def action_pause(self) -> None:
        self.paused = True

    def action_resume(self) -> None:
        self.paused = False

    def action_ab(self) -> None:
        active = "v1" if self.latest is None else self.latest.active
        refresh = None if self._poll_interval is None else max(2.0, 4 * self._poll_interval)
        self.push_screen(ABScreen(self._facade, active, refresh))

    def action_help(self) -> None:
        try:
            text = (ASSETS / "help.md").read_text(encoding="utf-8")
        except OSError as exc:
            text = f"# Help\n\nThe help file could not be read: {exc}"
        self.push_screen(HelpScreen(text))

    def action_focus_pane(self, number: int) -> None:
        self.pane(number).focus_target().focus()

    def action_pane(self, number: int) -> None:
        self.action_focus_pane(number)

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
        if isinstance(screen, ModalScreen):
            return
        own = {b.id for b in type(self).BINDINGS if isinstance(b, Binding)}
        seen: set[str] = set()
        for _key, binding in self._bindings:
            if binding.id not in own or binding.action in seen or binding.action not in HELP_TEXT:
                continue
            seen.add(binding.action)
            if self._check_action_state(binding.action, self) is not True:
                continue
            key = binding.key_display or binding.key
            yield SystemCommand(
                f"{binding.description} ({key})",
                HELP_TEXT[binding.action],
                partial(self.run_action, binding.action),
            )
        for number, name in enumerate(PANES, 1):
            yield SystemCommand(
                f"Focus pane {number}: {self.pane(number).TITLE} ({number})",
                f"Move the keyboard focus to the {name} pane",
                partial(self.action_focus_pane, number),
            )
        table = self.main.query_one(ErrorTable)
        if table.selected_key() is not None:
            yield SystemCommand(
                "Error details (enter)",
                "Show the full message of the selected error file",
                partial(self.run_action, "select_cursor", table),
            )
            yield SystemCommand(
                "Retry error file (R)",
                "Ask the engine to index the selected error file again",
                partial(self.run_action, "retry", table),
            )


# ---- entry point ----------------------------------------------------------------------------


def _error(message: str) -> int:
    print(f"ocindex: error: {message}", file=sys.stderr)
    return 1


def stop_service(facade: IndexerFacade, timeout_s: float) -> bool:
    """Call facade.stop() in a helper thread; False when it did not return within timeout_s."""
    failure: list[BaseException] = []

    def stop() -> None:
        try:
            facade.stop()
        except BaseException as exc:  # reported by the caller, never raised into the shell
            failure.append(exc)

    thread = threading.Thread(target=stop, name="ocindex-stop", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return False
    if failure:
        print(f"ocindex: warning: stopping the indexer: {failure[0]}", file=sys.stderr)
    return True


class _HeldLogs(logging.Handler):
    """Keeps the last `keep` WARNING+ records while the dashboard owns the terminal."""

    def __init__(self, keep: int) -> None:
        super().__init__(logging.WARNING)
        self.records: deque[logging.LogRecord] = deque(maxlen=keep)
        self.total = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.total += 1
        self.records.append(record)


@contextmanager
def logs_held_off_the_terminal(keep: int = HELD_LOG_LINES) -> Iterator[None]:
    """While the dashboard draws, log lines must not be written over it: detach the root
    handlers that write to the terminal, keep the last warnings, and replay them afterwards."""
    root = logging.getLogger()
    terminal = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    detached = [
        h
        for h in root.handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and id(h.stream) in terminal
    ]
    held = _HeldLogs(keep)
    for handler in detached:
        root.removeHandler(handler)
    root.addHandler(held)
    try:
        yield
    finally:
        root.removeHandler(held)
        for handler in detached:
            root.addHandler(handler)
        if held.total:
            outputs: list[logging.Handler | None] = [*detached] or [logging.lastResort]
            hidden = held.total - len(held.records)
            if hidden:
                print(f"ocindex: {hidden} earlier log lines were not shown", file=sys.stderr)
            for record in held.records:
                for output in outputs:
                    if output is not None and record.levelno >= output.level:
                        output.handle(record)


def run_dashboard(args: argparse.Namespace) -> int:
    """Open the engine, run the dashboard until q, stop the engine; the exit code."""
    try:
        storage_root, _source = resolve_storage_root(args.storage)
        demo = bool(args.demo) or (args.storage is None and not storage_root.exists())
        db_path = None if demo else (args.db or default_db_path())

        from indexer.service import open_service

        service = open_service(
            storage_root=None if demo else storage_root,
            db_path=db_path,
            indexer=args.indexer,
            demo=demo,
            opencode_db=getattr(args, "opencode_db", None),
        )
    except (DatabaseError, ConfigError, OSError, ValueError) as exc:
        return _error(fmt.one_line(str(exc)) or type(exc).__name__)

    loop = asyncio.new_event_loop()
    try:
        # An own loop: asyncio.run() would wait for a worker thread still inside the engine.
        with logs_held_off_the_terminal():
            OcindexApp(service).run(loop=loop)
    finally:
        stopped = stop_service(service, STOP_TIMEOUT_S)
        loop.close()
    if not stopped:
        _error(f"the indexer did not stop within {STOP_TIMEOUT_S:.0f}s; exiting anyway")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)
    return 0
