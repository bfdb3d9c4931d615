"""The usage screen: tokens and cost per day by model as stacked bars, the costliest sessions and
the failing tools, read from the index's views. Never reads on the UI thread: a worker reads
through the engine's read cursor, again whenever the engine has committed something new.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, RenderResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from indexer.live.reading import Queries
from indexer.snapshot import IndexerSnapshot
from indexer.usage_read import (
    DAYS,
    DayModel,
    HasCursor,
    UsageOverview,
    engine_rows,
    overview_from,
)
from tui import format as fmt
from tui import keys

CHECK_S = 2.0
"""How often the screen asks whether the engine committed something since its last read."""
QUIET_FACTOR = 4.0
"""After a read that took t seconds the screen waits at least QUIET_FACTOR × t before the next,
so on a large index under steady activity it spends at most a fifth of its time reading."""
MODELS_APART = 4
"""Models drawn in their own colour; the others are summed as 'other'."""
RGB = tuple[int, int, int]
COLOURS: tuple[RGB, ...] = ((86, 156, 214), (230, 180, 60), (98, 196, 120), (197, 134, 192))
OTHER: RGB = (150, 150, 150)
WIDE = 100
"""Screen columns from which the tables show every column."""
TITLE = "Usage · tokens and cost per day by model"
EMPTY = (
    "No usage in the index yet.\n\n"
    "This screen shows tokens and cost per day by model (the {days} days up to the newest day "
    "with usage), the sessions that cost most (their subagents included) and the tools that "
    "fail.\n\n"
    "They come from OpenCode's assistant messages: use OpenCode while this dashboard runs, or "
    "index an existing history with `ocindex index`, and the figures appear as batches commit."
)
NO_CURSOR = (
    "The usage screen reads the index through the engine's read cursor or its query endpoint, "
    "and this engine offers neither."
)
Figure = Literal["tokens", "cost"]
CHARTS: tuple[tuple[Figure, str], ...] = (("tokens", "tokens per day"), ("cost", "cost per day"))


@dataclass(frozen=True, slots=True)
class Series:
    """Per-day figures of the chart, one tuple per model, every day of the window present."""

    days: tuple[dt.date, ...]
    models: tuple[str, ...]
    tokens: tuple[tuple[int, ...], ...]
    cost: tuple[tuple[float, ...], ...]

    def colour(self, index: int) -> RGB:
        return OTHER if self.models[index] == "other" else COLOURS[index % len(COLOURS)]


def series(rows: Sequence[DayModel], days: int = DAYS, apart: int = MODELS_APART) -> Series:
    """The chart's series: the `days` days up to the newest, the `apart` costliest models on
    their own and the rest summed as 'other'."""
    if not rows:
        return Series((), (), (), ())
    last = max(r.day for r in rows)
    window = tuple(last - dt.timedelta(days=days - 1 - i) for i in range(days))
    at = {day: i for i, day in enumerate(window)}
    rows = [r for r in rows if r.day in at]
    spent: dict[str, tuple[float, int]] = {}
    for r in rows:
        so_far = spent.get(r.model, (0.0, 0))
        spent[r.model] = (so_far[0] + r.cost, so_far[1] + r.tokens)
    ranked = sorted(spent, key=lambda m: (-spent[m][0], -spent[m][1], m))
    shown = ranked if len(ranked) <= apart else [*ranked[: apart - 1], "other"]
    tokens = [[0] * days for _ in shown]
    cost = [[0.0] * days for _ in shown]
    for r in rows:
        line = shown.index(r.model) if r.model in shown else len(shown) - 1
        tokens[line][at[r.day]] += r.tokens
        cost[line][at[r.day]] += r.cost
    return Series(window, tuple(shown), tuple(map(tuple, tokens)), tuple(map(tuple, cost)))


def data_mark(snapshot: IndexerSnapshot | None) -> object:
    """What changes when the engine commits: its newest batch (None before the first)."""
    if snapshot is None or not snapshot.recent_batches:
        return None
    newest = snapshot.recent_batches[0]
    return (newest.indexer_version, newest.batch_id, newest.committed_at)


def money(x: float) -> str:
    """'$0.42', '$12.30', '$1.2k'."""
    return f"${x:,.2f}" if abs(x) < 1_000 else f"${fmt.number(x)}"


def legend(s: Series) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, model in enumerate(s.models):
        r, g, b = s.colour(i)
        text.append("■ ", style=f"rgb({r},{g},{b})")
        text.append(f"{model}   ")
    return text


class UsageChart(PlotextPlot):  # type: ignore[misc]
    """Stacked bars of one figure per day, one colour per model; drawn at render time, so the
    ticks follow the widget's size."""

    def __init__(self, figure: Figure, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.figure: Figure = figure
        self._series = Series((), (), (), ())

    def plot(self, s: Series) -> None:
        if s != self._series:
            self._series = s
            self.refresh()

    def render(self) -> RenderResult:
        self._draw()
        result: RenderResult = super().render()
        return result

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        s = self._series
        if not s.days:
            return
        values: Sequence[Sequence[float]] = s.tokens if self.figure == "tokens" else s.cost
        xs = [float(x) for x in range(1, len(s.days) + 1)]
        # Stacked by overdrawing: the bar of every model's sum first, then the sums of fewer
        # models over it, so a model missing on a day leaves no gap (plotext's stacked_bar does).
        stack = [0.0] * len(xs)
        sums = []
        for line in values:
            stack = [a + b for a, b in zip(stack, line, strict=True)]
            sums.append(stack)
        for i in reversed(range(len(sums))):
            for x, y in zip(xs, sums[i], strict=True):
                # One bar per call: plotext scales a call's widths by its x spacing, and a bar
                # of height 0 would blank the axis cell under the taller bars drawn before.
                if y > 0:
                    plt.bar([x], [y], color=s.colour(i), width=0.6, reset_ticks=False)
        plt.xlim(0.4, len(xs) + 0.6)
        # labels far enough apart that plotext drops none (which one it drops varies by run)
        every = max(1, -(-len(xs) * 8 // max(8, self.size.width - 10)))
        ticks = xs[::-1][::every][::-1]
        plt.xticks(ticks, [f"{s.days[int(x) - 1]:%m-%d}" for x in ticks])
        peak = max(stack, default=0.0) or 1.0
        steps = [0.0, peak / 2, peak] if self.size.height >= 8 else [0.0, peak]
        label = fmt.number if self.figure == "tokens" else money
        plt.yticks(steps, [label(v) for v in steps])
        plt.ylim(0, peak)


class UsageRead(Message):
    """A worker's read of the views: the overview, or one line saying why it failed."""

    def __init__(self, overview: UsageOverview | None, took_s: float, error: str = "") -> None:
        super().__init__()
        self.overview = overview
        self.took_s = took_s
        self.error = error


class UsageScreen(ModalScreen[None]):
    """Full screen over the dashboard; `u` or esc closes it. `changes()` is a mark of the
    engine's data (its newest batch): the screen reads again when it differs from the mark of
    its last read, looked at every `check_s` seconds (None: read only on open), and never sooner
    than QUIET_FACTOR times the last read's duration after it."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("usage")

    def __init__(
        self,
        engine: object,
        changes: Callable[[], object] = lambda: None,
        check_s: float | None = CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(classes="usage")
        self._clock = clock
        self._quiet_until = 0.0
        self._engine = engine if isinstance(engine, (HasCursor, Queries)) else None
        self._changes = changes
        self._check_s = check_s
        self._mark: object = None
        self._reading = False
        self.overview: UsageOverview | None = None
        """The overview on screen; None before the first read."""
        self.reads = 0
        """Reads finished, failed ones included."""

    def compose(self) -> ComposeResult:
        with Vertical(id="usage-body") as body:
            body.border_title = TITLE
            yield Static("reading the index…", id="usage-state", markup=False)
            yield Static("", id="usage-empty", markup=False)
            with Vertical(id="usage-data"):
                yield Static("", id="usage-legend", markup=False)
                with Horizontal(id="usage-charts"):
                    for figure, title in CHARTS:
                        with Vertical(classes="usage-chart") as box:
                            box.border_title = title
                            yield UsageChart(figure, id=f"usage-{figure}")
                with Horizontal(id="usage-tables"):
                    for name, title in (
                        ("sessions", "costliest sessions"),
                        ("tools", "failing tools"),
                    ):
                        with Vertical(classes="usage-table") as box:
                            box.border_title = title
                            yield DataTable(id=f"usage-{name}", cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#usage-empty").display = False
        self.query_one("#usage-data").display = False
        if self._engine is None:
            self._show_state(Content(NO_CURSOR))
            return
        self._read_now()
        if self._check_s:
            self.set_interval(self._check_s, self._check)

    def _check(self) -> None:
        quiet = self._clock() < self._quiet_until
        if not self._reading and not quiet and self._changes() != self._mark:
            self._read_now()

    def _read_now(self) -> None:
        if self._engine is None:
            return
        self._reading = True
        self._mark = self._changes()
        self._read(self._engine)

    @work(thread=True, group="usage", exit_on_error=False, description="usage_overview()")
    def _read(self, engine: HasCursor | Queries) -> None:
        start = self._clock()
        try:
            with engine_rows(engine) as rows:
                overview = overview_from(rows)
        except Exception as exc:  # an error value for the screen: it says so and stays open
            error = fmt.one_line(str(exc)) or type(exc).__name__
            self.post_message(UsageRead(None, self._clock() - start, error))
            return
        self.post_message(UsageRead(overview, self._clock() - start))

    @on(UsageRead)
    def _got(self, message: UsageRead) -> None:
        self._reading = False
        self._quiet_until = self._clock() + QUIET_FACTOR * message.took_s
        self.reads += 1
        if message.overview is None:
            self._show_state(
                Content.from_markup("[$error]could not read usage: $e[/]", e=message.error)
            )
            return
        self.overview = message.overview
        self._fill(message.overview)

    def _show_state(self, text: Content) -> None:
        self.query_one("#usage-state", Static).update(text)

    def _fill(self, o: UsageOverview) -> None:
        empty = o.empty
        self.query_one("#usage-empty").display = empty
        self.query_one("#usage-data").display = not empty
        if empty:
            self.query_one("#usage-empty", Static).update(EMPTY.format(days=DAYS))
            self._show_state(Content(f"days in {o.time_zone} · refreshed as batches commit"))
            return
        s = series(o.days)
        tokens = sum(sum(line) for line in s.tokens)
        cost = sum(sum(line) for line in s.cost)
        span = f"{s.days[0]:%Y-%m-%d} to {s.days[-1]:%Y-%m-%d}" if s.days else "no day yet"
        self._show_state(
            Content(
                f"{span} (days in {o.time_zone}): {fmt.number(tokens)} tokens, {money(cost)}"
                " · refreshed as batches commit"
            )
        )
        self.query_one("#usage-legend", Static).update(legend(s))
        for chart in self.query(UsageChart):
            chart.plot(s)
        self._fill_tables(o)

    def _fill_tables(self, o: UsageOverview) -> None:
        wide = self.size.width >= WIDE
        room = max(12, self.size.width // 2 - (36 if wide else 22))
        heads: tuple[str, ...] = ("session", "tokens", "cost")
        rows: list[tuple[str, list[str]]] = []
        for ses in o.sessions:
            started = "" if ses.started is None else f"{ses.started:%Y-%m-%d}"
            cells = [fmt.fit(ses.title or ses.session_id, room)]
            cells += [started] if wide else []
            rows.append((ses.session_id, [*cells, fmt.number(ses.tokens), money(ses.cost)]))
        if wide:
            heads = ("session", "started", "tokens", "cost")
        _refill(
            self.query_one("#usage-sessions", DataTable), heads, rows, "no session has cost yet"
        )
        heads = ("tool", "failed", "p95")
        rows = []
        for t in o.tools:
            cells = [fmt.fit(t.tool, 16), f"{fmt.compact(t.failures)} of {fmt.compact(t.calls)}"]
            cells += [fmt.compact(t.nonzero_exits), fmt.compact(t.interrupted)] if wide else []
            rows.append((t.tool, [*cells, fmt.ms(t.p95_ms)]))
        if wide:
            heads = ("tool", "failed", "exit≠0", "stopped", "p95")
        _refill(self.query_one("#usage-tools", DataTable), heads, rows, "no tool call has failed")

    def on_resize(self) -> None:
        if self.overview is not None and not self.overview.empty:
            self._fill_tables(self.overview)

    def action_close(self) -> None:
        self.dismiss(None)


def _refill(
    table: DataTable[Any],
    heads: tuple[str, ...],
    rows: Sequence[tuple[str, Sequence[str]]],
    none: str,
) -> None:
    """Replace the table's rows, the cursor kept on its row; the first column is a name
    (left-aligned), the others figures (right-aligned); `none` says why there is no row."""
    at = table.cursor_row
    table.clear(columns=True)
    for i, head in enumerate(heads):
        table.add_column(Text(head, justify="left" if i == 0 else "right"))
    for key, cells in rows:
        table.add_row(
            *(Text(v, justify="left" if i == 0 else "right") for i, v in enumerate(cells)),
            key=key,
        )
    if not rows:
        table.add_row(Text(none, style="dim italic"))
    table.show_cursor = bool(rows)
    if rows:
        table.move_cursor(row=min(at, len(rows) - 1), animate=False)
