"""The A/B trial from the A/B view: a dialog to pick the workload, then a screen that runs
indexer.trial in a thread worker with progress and a cancel, and shows v1 and v2 side by side.
Never runs an indexer itself and never touches the live engine: indexer.trial does the work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, ProgressBar, Static

from indexer.trial import (
    PRESETS,
    IndexerTrial,
    TrialCancelled,
    TrialProgress,
    TrialResult,
    Workload,
)
from tui import format as fmt
from tui import keys
from tui.screens.table import side_by_side

TITLE = "A/B trial · one workload through v1, then v2"
HOW = (
    "The same generated OpenCode files are written into a scratch tree for each indexer in "
    "turn, by a separate process, while each indexer runs in its own process on its own "
    "scratch database. The live indexer keeps running; the scratch data is removed afterwards."
)

PICK_HINT = "↑↓ choose · enter runs it · esc cancels · v1 indexes about 100 files/s, v2 far more"


class TrialRun(Protocol):
    """What the screen needs of indexer.trial.Trial."""

    def run(self, on_progress: Callable[[TrialProgress], object]) -> TrialResult: ...

    def cancel(self) -> None: ...


TrialFactory = Callable[[Workload], TrialRun]


class TrialPicker(ModalScreen[Workload | None]):
    """Which workload to run; enter picks the highlighted one, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("trial_pick")
    DEFAULT_CSS = """
    TrialPicker { align: center middle; }
    #trial-pick { width: 72; max-width: 100%; height: auto; border: round $accent; padding: 0 1; }
    #trial-pick OptionList { height: auto; margin-top: 1; }
    #trial-pick-hint { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="trial-pick") as box:
            box.border_title = "Run an A/B trial"
            yield Static(HOW, markup=False)
            yield OptionList(
                *(w.name + (" (default)" if i == 0 else "") for i, w in enumerate(PRESETS)),
                id="trial-workloads",
            )
            yield Static(PICK_HINT, id="trial-pick-hint", markup=False)
        yield Footer(compact=True)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(PRESETS[event.option_index])


def trial_rows(result: TrialResult) -> list[tuple[str, str, str]]:
    """(label, v1 text, v2 text) for every figure of the trial."""

    def pair(a: float | None, b: float | None) -> str:
        return f"{fmt.ms(a)} / {fmt.ms(b)}"

    def each(get: Callable[[IndexerTrial], str]) -> tuple[str, str]:
        return get(result.v1), get(result.v2)

    return [
        ("files/s", *each(lambda t: fmt.per_second(t.files_per_s))),
        (
            "files indexed",
            *each(lambda t: f"{fmt.count(t.files_indexed)} in {fmt.duration(t.seconds)}"),
        ),
        ("batch p50 / p95", *each(lambda t: pair(t.batch_p50_ms, t.batch_p95_ms))),
        ("event→commit p50 / p95", *each(lambda t: pair(t.event_p50_ms, t.event_p95_ms))),
        ("errors", *each(lambda t: fmt.count(t.errors))),
        ("catches", *each(lambda t: fmt.count(t.catches))),
        ("CPU time", *each(lambda t: fmt.duration(t.cpu_s))),
        ("caught up", *each(lambda t: "yes" if t.caught_up else "no, stopped waiting")),
        ("writer files/s", *each(lambda t: fmt.per_second(t.writer_files_per_s))),
    ]


def result_content(result: TrialResult) -> Content:
    table = side_by_side(trial_rows(result), "", "v2/v1 files/s", result.ratio)
    notes = [
        f"workload: {result.workload.name} (seed {result.workload.seed}), the same files for both",
        "catches: files a closing full scan found that the watch events had not brought",
        f"CPU time: {result.cpu_clock}",
    ]
    for run in (result.v1, result.v2):
        if not run.caught_up:
            notes.append(f"⚠ {run.version} had not caught up when the trial stopped waiting")
    lines = [Content.from_markup("[dim]$n[/]", n=n) for n in notes]
    return Content("\n").join([table, Content(""), *lines])


class TrialScreen(ModalScreen[None]):
    """Runs one trial; escape cancels it while it runs (then closes), or closes the result."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("trial")
    DEFAULT_CSS = """
    TrialScreen { background: $background; }
    #trial-body { border: round $accent; height: 1fr; padding: 0 1; }
    #trial-progress { margin: 1 0; }
    #trial-status { color: $text-muted; }
    """

    class Progressed(Message):
        def __init__(self, progress: TrialProgress) -> None:
            super().__init__()
            self.progress = progress

    class Ended(Message):
        """The worker ended: a result, or why there is none ('' when cancelled)."""

        def __init__(self, result: TrialResult | None, error: str = "") -> None:
            super().__init__()
            self.result = result
            self.error = error

    def __init__(self, workload: Workload, trial: TrialRun) -> None:
        super().__init__()
        self.workload = workload
        self._trial = trial
        self.running = True
        self.cancelling = False
        self.result: TrialResult | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="trial-body") as body:
            body.border_title = f"{TITLE} · {self.workload.name}"
            yield Static(HOW, id="trial-how", markup=False)
            yield ProgressBar(total=1.0, show_eta=False, id="trial-progress")
            yield Static("generating the workload…", id="trial-status", markup=False)
            yield Static("", id="trial-result")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._run()

    def on_unmount(self) -> None:
        if self.running:
            self._trial.cancel()  # closed with the app: the worker removes the scratch data

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running and not self.cancelling
        if action == "close":
            return not self.running
        return True

    def action_cancel(self) -> None:
        self.cancelling = True
        self._trial.cancel()
        self.query_one("#trial-status", Static).update("cancelling: ending both processes…")
        self.refresh_bindings()

    def action_close(self) -> None:
        self.dismiss(None)

    @work(thread=True, group="trial", exit_on_error=False, description="indexer.trial")
    def _run(self) -> None:
        try:
            result = self._trial.run(lambda p: self.post_message(self.Progressed(p)))
        except TrialCancelled:
            self.post_message(self.Ended(None))
        except Exception as exc:
            self.post_message(self.Ended(None, fmt.one_line(str(exc)) or type(exc).__name__))
        else:
            self.post_message(self.Ended(result))

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        p = message.progress
        if self.cancelling:
            return
        self.query_one(ProgressBar).update(progress=p.fraction)
        text = (
            "generating the workload…"
            if p.stage == "generating"
            else f"{p.stage}: {fmt.count(p.committed)} of {fmt.count(p.total)} files committed"
        )
        self.query_one("#trial-status", Static).update(text)

    @on(Ended)
    def _ended(self, message: Ended) -> None:
        self.running = False
        self.refresh_bindings()
        if self.cancelling or (message.result is None and not message.error):
            # Once cancel is pressed the screen closes, whatever the ending trial reported.
            self.app.notify("the trial's scratch data is removed", title="Trial cancelled")
            self.dismiss(None)
            return
        if message.result is None:
            self.show_failure(message.error)
            return
        self.show(message.result)

    def show(self, result: TrialResult) -> None:
        self.result = result
        self.running = False
        self.query_one(ProgressBar).display = False
        self.query_one("#trial-how", Static).display = False
        self.query_one("#trial-status", Static).update("done; the scratch data is removed")
        self.query_one("#trial-result", Static).update(result_content(result))
        self.refresh_bindings()

    def show_failure(self, error: str) -> None:
        self.query_one(ProgressBar).display = False
        self.query_one("#trial-status", Static).update(
            Content.from_markup("[$error]the trial failed: $e[/]", e=error)
        )
