"""The A/B view: v1 and v2 side by side from facade.compare(), figures, caveats, twin histograms.
Never calls the engine on the UI thread: compare() may be slow, so it runs in a thread worker.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from indexer.snapshot import Comparison, IndexerFacade, VersionMetrics
from indexer.trial import Trial, Workload
from tui import format as fmt
from tui import keys
from tui.messages import ComparisonFailed, ComparisonReady
from tui.panes.latency import LatencyHistogram, marks_text
from tui.screens.table import side_by_side
from tui.screens.trial import TrialFactory, TrialPicker, TrialScreen

WINDOW_S = 300.0
LABELS = {"v1": "v1 · legacy per-file", "v2": "v2 · micro-batch"}
TITLE = "A/B · v1 vs v2 · windows of live history"
WINDOWS_NOTE = (
    "each indexer's own active minutes and load, not one shared workload: t runs a trial on one"
)


def figure_rows(c: Comparison) -> list[tuple[str, str, str]]:
    """(label, v1 text, v2 text) for every figure the view compares."""

    def files(m: VersionMetrics) -> str:
        return f"{fmt.count(m.files)} in {fmt.count(m.batches)} batches"

    return [
        ("files/s", fmt.per_second(c.v1.files_per_s), fmt.per_second(c.v2.files_per_s)),
        ("files", files(c.v1), files(c.v2)),
        (
            "processing p50/95/99",
            fmt.percentiles(c.v1.processing_ms),
            fmt.percentiles(c.v2.processing_ms),
        ),
        (
            "event→commit p50/95/99",
            fmt.percentiles(c.v1.event_latency_ms),
            fmt.percentiles(c.v2.event_latency_ms),
        ),
        ("errors", fmt.count(c.v1.errors), fmt.count(c.v2.errors)),
        (
            "missed by events",
            fmt.count(c.v1.reconciler_catches),
            fmt.count(c.v2.reconciler_catches),
        ),
    ]


def figures_content(c: Comparison, active: str) -> Content:
    """The comparison as aligned text: a heading row, one row per figure, then the ratio."""
    return side_by_side(figure_rows(c), active, "v2/v1 files/s*", c.ratio)


def notes_content(c: Comparison) -> Content:
    notes = [(m.version, m.note) for m in (c.v1, c.v2) if m.note]
    windows = Content.from_markup("[dim]* $note[/]", note=WINDOWS_NOTE)
    return Content("\n").join(
        [
            windows,
            *(Content.from_markup("[$warning]⚠ $v: $note[/]", v=v, note=note) for v, note in notes),
        ]
    )


class ABScreen(ModalScreen[None]):
    """Full-screen comparison; refreshes every `refresh_s` seconds (None: only on open)."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("ab")

    def __init__(
        self,
        facade: IndexerFacade,
        active: str,
        refresh_s: float | None,
        trials: TrialFactory = Trial,
    ) -> None:
        super().__init__(classes="ab")
        self._facade = facade
        self._trials = trials
        self._active = active
        self._refresh_s = refresh_s
        self._timer: Timer | None = None
        self.comparison: Comparison | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="ab-body") as body:
            body.border_title = TITLE
            yield Static("comparing v1 and v2…", id="ab-figures")
            yield Static("", id="ab-notes")
            with Horizontal(id="ab-hists"):
                for version in ("v1", "v2"):
                    with Vertical(classes="ab-hist", id=f"ab-{version}") as box:
                        box.border_title = f"{LABELS[version]} · batch ms"
                        yield Static("", classes="ab-marks", markup=False)
                        yield LatencyHistogram(id=f"ab-hist-{version}")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._fetch()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_close_ab(self) -> None:
        self.dismiss(None)

    def action_trial(self) -> None:
        """Pick a workload, then run it through v1 and v2 on scratch data (indexer.trial)."""

        def picked(workload: Workload | None) -> None:
            if workload is not None:
                self.app.push_screen(TrialScreen(workload, self._trials(workload)))

        self.app.push_screen(TrialPicker(), picked)

    @work(thread=True, group="compare", exit_on_error=False, description="facade.compare()")
    def _fetch(self) -> None:
        try:
            comparison = self._facade.compare(WINDOW_S)
        except Exception as exc:
            self.post_message(ComparisonFailed(fmt.one_line(str(exc)) or type(exc).__name__))
            return
        self.post_message(ComparisonReady(comparison))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        done = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)
        if event.worker.group == "compare" and event.state in done and self._refresh_s:
            self._timer = self.set_timer(self._refresh_s, self._fetch)

    @on(ComparisonFailed)
    def _failed(self, message: ComparisonFailed) -> None:
        self.query_one("#ab-figures", Static).update(
            Content.from_markup("[$error]compare failed: $e[/]", e=message.error)
        )

    @on(ComparisonReady)
    def _ready(self, message: ComparisonReady) -> None:
        c = message.comparison
        self.comparison = c
        body = self.query_one("#ab-body", Vertical)
        body.border_title = f"{TITLE} · last {fmt.duration(c.window_s)} · ● active"
        self.query_one("#ab-figures", Static).update(figures_content(c, self._active))
        notes = notes_content(c)
        notes_widget = self.query_one("#ab-notes", Static)
        notes_widget.update(notes)
        notes_widget.display = bool(notes.plain)
        top = max(
            (
                value
                for m in (c.v1, c.v2)
                for value in (*m.latency_samples_ms, m.processing_ms.p99 or 0.0)
            ),
            default=0.0,
        )
        xlim = (0.0, top * 1.05) if top > 0 else None
        for version, m in (("v1", c.v1), ("v2", c.v2)):
            box = self.query_one(f"#ab-{version}", Vertical)
            box.query_one(".ab-marks", Static).update(
                marks_text(m.processing_ms, f"n={fmt.count(len(m.latency_samples_ms))}")
            )
            box.query_one(LatencyHistogram).plot(m.latency_samples_ms, m.processing_ms, xlim)
