"""Pane 2: the histogram of recent batch latencies with p50/p95/p99 marked, and the throughput
sparkline (plotext, as the usage screen's charts); it never reads the engine itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Sparkline, Static
from textual_plotext import PlotextPlot

from indexer.snapshot import IndexerSnapshot, Percentiles
from tui import format as fmt
from tui.panes.base import Pane

RGB = tuple[int, int, int]
BAR: RGB = (86, 156, 214)
MARKS: tuple[tuple[str, RGB], ...] = (
    ("p50", (98, 196, 120)),
    ("p95", (230, 180, 60)),
    ("p99", (232, 88, 88)),
)


def percentiles_of(samples: Sequence[float]) -> Percentiles:
    """Nearest-rank p50/p95/p99 of `samples`; all None when there are none."""
    if not samples:
        return Percentiles()
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    return Percentiles(p50=rank(50), p95=rank(95), p99=rank(99))


def marks_text(marks: Percentiles, suffix: str = "") -> Text:
    """'p50 12  p95 40  p99 61 ms', each label in the colour of its line on the plot."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for (name, rgb), value in zip(MARKS, (marks.p50, marks.p95, marks.p99), strict=True):
        if text:
            text.append("  ")
        text.append(f"{name} ", style=f"bold rgb({rgb[0]},{rgb[1]},{rgb[2]})")
        text.append(fmt.ms_bare(value))
    text.append(" ms")
    if suffix:
        text.append(f"  {suffix}", style="dim")
    return text


class LatencyHistogram(PlotextPlot):  # type: ignore[misc]
    """A histogram of latencies in ms with vertical lines at p50/p95/p99. It bins at render
    time, so the bar count follows the widget's width."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._samples: tuple[float, ...] = ()
        self._marks = Percentiles()
        self._xlim: tuple[float, float] | None = None

    def plot(
        self,
        samples: Sequence[float],
        marks: Percentiles,
        xlim: tuple[float, float] | None = None,
    ) -> None:
        """Show `samples`; `xlim` pins the x axis so two histograms can be compared."""
        state = (tuple(samples), marks, xlim)
        if state == (self._samples, self._marks, self._xlim):
            return
        self._samples, self._marks, self._xlim = state
        self.refresh()

    def render(self) -> RenderResult:
        self._draw()
        result: RenderResult = super().render()
        return result

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        width, height = self.size.width, self.size.height
        if not self._samples:
            plt.title("no batch committed yet")
            return
        marks = (self._marks.p50, self._marks.p95, self._marks.p99)
        highest = max((*self._samples, *(m for m in marks if m is not None)))
        top = self._xlim[1] if self._xlim is not None else highest * 1.05
        top = top if top > 0 else 1.0
        centers, counts = bin_counts(self._samples, top, max(4, min(60, (width - 8) // 2)))
        plt.bar(centers, counts, width=1.0, color=BAR, reset_ticks=False)
        peak = max(counts)
        for step, ((name, rgb), value) in enumerate(zip(MARKS, marks, strict=True)):
            if value is not None and value <= top:
                # a line dataset after the bars, so it stays visible over them
                plt.plot([value, value], [0, peak], color=rgb, marker="│")
                # each line named at its top, one row lower per mark so close ones stay legible
                if height >= 8 and peak >= 3:
                    label_y = peak - step * peak / max(3, height - 4)
                    plt.text(name, value, label_y, color=rgb, alignment="left")
        ticks = nice_ticks(top, max(2, (width - 6) // 9))
        labels = [fmt.number(t) for t in ticks]
        labels[-1] += " ms"
        plt.xticks(ticks, labels)
        if height < 6:  # a plot one or two rows high: 0 and the peak would share a row
            plt.yticks([peak])
        else:
            plt.yticks([0, peak // 2, peak] if height >= 8 and peak >= 2 else [0, peak])
        plt.xlim(0, top)
        plt.ylim(0, peak)


def bin_counts(samples: Sequence[float], top: float, bins: int) -> tuple[list[float], list[int]]:
    """Bin centres and counts of `samples` over [0, top] in `bins` equal bins; values past
    `top` fall in the last bin."""
    step = top / bins
    counts = [0] * bins
    for value in samples:
        counts[min(bins - 1, max(0, int(value / step)))] += 1
    return [step * (i + 0.5) for i in range(bins)], counts


def nice_ticks(top: float, most: int) -> list[float]:
    """Round tick positions 0, s, 2s… up to `top`, with s 1, 2 or 5 × 10^k, at most `most`."""
    raw = top / max(1, most)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    count = int(top / step + 1e-9)
    return [step * i for i in range(count + 1)]


class LatencyPane(Pane):
    DIGIT = "2"
    TITLE = "Batch latency"
    can_focus = True

    def compose(self) -> ComposeResult:
        yield Static(id="latency-marks", markup=False)
        yield LatencyHistogram(id="latency-hist")
        with Horizontal(id="throughput-row"):
            yield Static("files/s ", id="throughput-label", markup=False)
            yield Sparkline([], id="throughput")
            yield Static(id="throughput-now", markup=False)

    def focus_target(self) -> Widget:
        return self

    def fill(self, snapshot: IndexerSnapshot) -> None:
        samples = [b.processing_ms for b in snapshot.recent_batches]
        marks = percentiles_of(samples)
        batches = snapshot.recent_batches  # newest first
        subtitle = f"last {fmt.plural(len(samples), 'batch', 'batches')}" if samples else "idle"
        if batches:  # batches grow under a backlog: how big the newest is, and the largest
            largest = max(b.files for b in batches)
            subtitle += f", size {fmt.count(batches[0].files)}, max {fmt.count(largest)}"
        self.border_subtitle = subtitle
        self.query_one("#latency-marks", Static).update(marks_text(marks))
        self.query_one(LatencyHistogram).plot(samples, marks)
        spark = self.query_one(Sparkline)
        data = list(snapshot.throughput)
        if data != list(spark.data or []):
            spark.data = data
        peak = max(data, default=0.0)
        now = Text(no_wrap=True)
        now.append(f" {fmt.number(snapshot.files_per_s)}", style="bold")
        now.append(f" max {fmt.number(peak)}", style="dim")
        self.query_one("#throughput-now", Static).update(now)
