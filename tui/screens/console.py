"""The SQL console: a query typed at the bottom runs in a worker, its rows fill a table, the views
and their columns are listed beside, earlier queries come back with up and down. Never decides
what may run: indexer.live.readonly does (one SELECT or EXPLAIN, in a READ ONLY transaction).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static, Tree

from indexer.live.reading import Queries
from indexer.live.readonly import QueryError, QueryResult, TimedOut, run_read
from indexer.usage_read import HasCursor, ViewColumns, engine_rows, views_from
from tui import format as fmt
from tui import keys

ROW_LIMIT = 1_000
TIMEOUT_S = 10.0
CELL_CHARS = 120
"""A cell is cut to this many characters: a text part can hold a megabyte."""
TITLE = "SQL console · read-only · first {limit:,} rows · {timeout:g} s at most"
HINT = (
    "Type a query below and press enter: SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN "
    "(anything that writes is refused). ↑/↓ bring back earlier queries; the views are listed "
    "on the right."
)
NULL = "NULL"
NO_CURSOR = (
    "The console reads the index through the engine's read cursor or its query endpoint; "
    "this engine offers neither."
)


@dataclass(frozen=True, slots=True)
class Answer:
    """One query's outcome, its cells already text; `error` is '' when it ran."""

    sql: str
    columns: tuple[str, ...] = ()
    numeric: tuple[bool, ...] = ()
    """Per column: figures, shown right-aligned."""
    rows: tuple[tuple[str, ...], ...] = ()
    truncated: bool = False
    elapsed_s: float = 0.0
    error: str = ""


class Answered(Message):
    def __init__(self, run: int, answer: Answer) -> None:
        super().__init__()
        self.run = run
        self.answer = answer


class ViewsListed(Message):
    def __init__(self, views: tuple[ViewColumns, ...], error: str = "") -> None:
        super().__init__()
        self.views = views
        self.error = error


def cell(value: object) -> str:
    """A value as one line of at most CELL_CHARS characters; NULL for None, floats to ten
    significant digits (0.234, not 0.23399999999999999)."""
    if value is None:
        return NULL
    text = format(value, ".10g") if isinstance(value, float) else str(value)
    return fmt.fit(" ".join(text.splitlines()), CELL_CHARS)


def ask(
    engine: HasCursor | Queries,
    sql: str,
    limit: int,
    timeout_s: float,
    cancelled: Callable[[], bool],
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """Run `sql` read-only as the query socket does: at most `limit` rows, interrupted after
    `timeout_s`; in this process on a fresh cursor of the engine (closed after), also once
    `cancelled()`; attached, through the engine's own endpoint."""
    start = clock()
    try:
        result = _read(engine, sql, limit, timeout_s, cancelled)
    except TimedOut:
        error = f"stopped after {timeout_s:g} s, the console's limit (`ocindex query` has none)"
        return Answer(sql, elapsed_s=clock() - start, error=error)
    except QueryError as exc:
        return Answer(sql, elapsed_s=clock() - start, error=str(exc))
    except Exception as exc:  # the engine could not hand out a cursor: said inline
        return Answer(sql, elapsed_s=clock() - start, error=fmt.one_line(str(exc)))
    table = result.table
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = tuple(tuple(cell(v) for v in row) for row in zip(*columns, strict=True))
    numeric = tuple(_is_number(f.type) for f in table.schema)
    return Answer(sql, tuple(table.column_names), numeric, rows, result.truncated, clock() - start)


def _read(
    engine: HasCursor | Queries,
    sql: str,
    limit: int,
    timeout_s: float,
    cancelled: Callable[[], bool],
) -> QueryResult:
    if isinstance(engine, Queries):
        return engine.query(sql, limit, timeout_s)
    cursor = engine.cursor()
    try:
        return run_read(cursor, sql, limit, timeout_s, cancelled)
    finally:
        cursor.close()


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


class HistoryInput(Input):
    """The query line; up and down walk through the queries run before, newest first."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("console_input")

    def __init__(self, history: list[str], *, id: str | None = None) -> None:
        super().__init__(
            placeholder="SELECT day, model_id, cost FROM usage_daily ORDER BY day DESC",
            id=id,
        )
        self.history = history
        """The queries run, oldest first (shared with the console)."""
        self._at = 0
        self._draft = ""

    def rewind(self) -> None:
        """Back at the end of the history, after a query was run."""
        self._at = len(self.history)
        self._draft = ""

    def action_history(self, step: int) -> None:
        if self._at >= len(self.history):
            self._draft = self.value
        at = min(max(self._at + step, 0), len(self.history))
        if at == self._at:
            return
        self._at = at
        self.value = self.history[at] if at < len(self.history) else self._draft
        self.cursor_position = len(self.value)


class ConsoleScreen(ModalScreen[None]):
    """Full screen over the dashboard; esc closes it (and stops a query still running). The
    dashboard keeps one console, so its history and last result stay between visits."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("console")
    AUTO_FOCUS = "#console-input"

    def __init__(
        self,
        engine: object,
        clock: Callable[[], float] = time.monotonic,
        limit: int = ROW_LIMIT,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        super().__init__(classes="console")
        self._clock = clock
        self._engine = engine if isinstance(engine, (HasCursor, Queries)) else None
        self._limit = limit
        self._timeout_s = timeout_s
        self.history: list[str] = []
        self.answer: Answer | None = None
        """The last query's outcome on screen."""
        self.views: tuple[ViewColumns, ...] = ()
        self._runs = 0
        self._cancel: threading.Event | None = None
        """Set to stop the query in flight; None when none runs."""

    def compose(self) -> ComposeResult:
        with Vertical(id="console-body") as body:
            body.border_title = TITLE.format(limit=self._limit, timeout=self._timeout_s)
            with Horizontal(id="console-main"):
                yield DataTable(id="console-results", zebra_stripes=True)
                tree: Tree[str] = Tree("views", id="console-views")
                tree.show_root = False
                yield tree
            yield Static(HINT, id="console-status")
            yield HistoryInput(self.history, id="console-input")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self._engine is None:
            self._status(Content(NO_CURSOR))
            return
        self._list_views(self._engine)

    @property
    def running(self) -> bool:
        return self._cancel is not None

    @work(thread=True, group="console-views", exit_on_error=False, description="views")
    def _list_views(self, engine: HasCursor | Queries) -> None:
        try:
            with engine_rows(engine) as rows:
                views = views_from(rows)
        except Exception as exc:  # listed inline in the tree's place; the console still works
            self.post_message(ViewsListed((), fmt.one_line(str(exc)) or type(exc).__name__))
            return
        self.post_message(ViewsListed(views))

    @on(ViewsListed)
    def _views_listed(self, message: ViewsListed) -> None:
        self.views = message.views
        tree: Tree[str] = self.query_one("#console-views", Tree)
        tree.clear()
        if message.error or not message.views:
            tree.root.add_leaf(message.error or "no view yet: the index predates schema 6")
            return
        for number, view in enumerate(message.views):
            label = Text(view.name)
            label.append(f" {len(view.columns)}", style="dim")
            node = tree.root.add(label, data=view.name, expand=number == 0)
            for column, kind in view.columns:
                leaf = Text(column)
                leaf.append(f" {kind}", style="dim")
                node.add_leaf(leaf, data=column)

    @on(Input.Submitted, "#console-input")
    def _submitted(self, event: Input.Submitted) -> None:
        sql = event.value.strip()
        if not sql or self._engine is None:
            return
        if not self.history or self.history[-1] != sql:
            self.history.append(sql)
        self.query_one(HistoryInput).rewind()
        if self._cancel is not None:
            self._cancel.set()  # a newer query replaces the one in flight
        self._runs += 1
        self._cancel = threading.Event()
        self._status(Content(f"running… (stopped after {self._timeout_s:g} s)"))
        self._run(self._engine, self._runs, sql, self._cancel)

    @work(thread=True, group="console", exit_on_error=False, description="console query")
    def _run(
        self, engine: HasCursor | Queries, run: int, sql: str, cancel: threading.Event
    ) -> None:
        answer = ask(engine, sql, self._limit, self._timeout_s, cancel.is_set, self._clock)
        self.post_message(Answered(run, answer))

    @on(Answered)
    def _answered(self, message: Answered) -> None:
        if message.run != self._runs:
            return  # replaced by a newer query
        self._cancel = None
        answer = message.answer
        self.answer = answer
        elapsed = fmt.ms(answer.elapsed_s * 1000)
        table = self.query_one("#console-results", DataTable)
        table.clear(columns=True)
        if answer.error:
            self._status(
                Content.from_markup("[$error]$e[/] [dim]($t)[/]", e=answer.error, t=elapsed)
            )
            return
        for name, numeric in zip(answer.columns, answer.numeric, strict=True):
            table.add_column(Text(name, justify="right" if numeric else "left"))
        for row in answer.rows:
            table.add_row(*(_shown(v, n) for v, n in zip(row, answer.numeric, strict=True)))
        shown = fmt.plural(len(answer.rows), "row")
        more = f" · only the first {self._limit:,} are shown" if answer.truncated else ""
        self._status(Content(f"{shown} in {elapsed}{more}"))

    def _status(self, text: Content) -> None:
        self.query_one("#console-status", Static).update(text)

    def action_close(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        self.dismiss(None)


def _shown(value: str, numeric: bool) -> Text:
    if value == NULL:
        return Text(NULL, style="dim", justify="right" if numeric else "left")
    return Text(value, justify="right" if numeric else "left")
