"""Typed reads of the documented views for the dashboard's usage screen and SQL console: usage per
day and model, the costliest sessions, failing tools, the views' columns. Never writes or opens:
it reads through a cursor it is handed (the caller closes it) or an attached engine's endpoint.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import duckdb

from indexer.live.reading import Queries
from indexer.store.views import VIEWS

DAYS = 14
"""The usage chart's window: this many days up to the newest day with usage."""
TOP = 10
READ_TIMEOUT_S = 30.0
"""An attached engine's reads of the views stop after this long."""
Rows = Callable[[str], Sequence[tuple[Any, ...]]]
"""Runs one SELECT and returns its rows."""


@runtime_checkable
class HasCursor(Protocol):
    """An engine that hands out read cursors of its index (IndexerService does)."""

    def cursor(self) -> duckdb.DuckDBPyConnection: ...


@dataclass(frozen=True, slots=True)
class DayModel:
    """One model's usage on one local day, from `usage_daily`."""

    day: dt.date
    model: str
    """`provider/model`, or 'unknown' when the message named none."""
    tokens: int
    cost: float


@dataclass(frozen=True, slots=True)
class SessionCost:
    """One top-level session from `session_summary`, its subagents' usage rolled up."""

    session_id: str
    title: str
    started: dt.datetime | None
    turns: int
    tokens: int
    cost: float
    """Its own cost plus its subagents' (`total_cost`)."""


@dataclass(frozen=True, slots=True)
class ToolFailures:
    """One tool that failed at least once, from `tool_stats`."""

    tool: str
    calls: int
    failures: int
    """Error status or a non-zero exit code."""
    nonzero_exits: int
    interrupted: int
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class UsageOverview:
    time_zone: str
    """The zone the days are local dates in (the cursor's TimeZone setting)."""
    days: tuple[DayModel, ...]
    """The DAYS-day window up to the newest day with usage, by day then model; empty: none."""
    sessions: tuple[SessionCost, ...]
    """The costliest top-level sessions, most expensive first."""
    tools: tuple[ToolFailures, ...]
    """Tools with failures, most failures first."""

    @property
    def empty(self) -> bool:
        return not (self.days or self.sessions or self.tools)


@dataclass(frozen=True, slots=True)
class ViewColumns:
    name: str
    columns: tuple[tuple[str, str], ...]
    """(column, DuckDB type) in the view's order."""


_DAYS_SQL = """
SELECT day, coalesce(provider_id || '/' || model_id, model_id, 'unknown') AS model,
       CAST(sum(tokens_total) AS BIGINT), sum(cost)
FROM usage_daily
WHERE day > (SELECT max(day) FROM usage_daily) - {days:d}
GROUP BY ALL ORDER BY 1, 2
"""
_SESSIONS_SQL = """
SELECT session_id, coalesce(title, ''), started, turns, tokens_total + children_tokens, total_cost
FROM session_summary
WHERE parent_id IS NULL AND (total_cost > 0 OR tokens_total + children_tokens > 0)
ORDER BY total_cost DESC, tokens_total + children_tokens DESC, session_id LIMIT {top:d}
"""
_TOOLS_SQL = """
SELECT tool, calls, failures, nonzero_exits, interrupted, p95_ms
FROM tool_stats WHERE failures > 0 ORDER BY failures DESC, calls DESC, tool LIMIT {top:d}
"""
_VIEWS_SQL = (
    "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
    "JOIN duckdb_views() v ON v.view_name = c.table_name AND v.schema_name = c.table_schema "
    "AND v.database_name = c.table_catalog "
    f"WHERE NOT v.internal AND c.table_name IN ({', '.join(repr(n) for n, _sql in VIEWS)}) "
    "ORDER BY c.table_name, c.ordinal_position"
)


def cursor_rows(cursor: duckdb.DuckDBPyConnection) -> Rows:
    return lambda sql: cursor.execute(sql).fetchall()


@contextlib.contextmanager
def engine_rows(engine: HasCursor | Queries) -> Iterator[Rows]:
    """Reads on the index of the engine a dashboard shows: through the live endpoint when it is
    attached (each read checked read-only there), else on a cursor of its own, closed after."""
    if isinstance(engine, Queries):

        def remote(sql: str) -> Sequence[tuple[Any, ...]]:
            table = engine.query(sql, timeout_s=READ_TIMEOUT_S).table
            return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

        yield remote
        return
    cursor = engine.cursor()
    try:
        yield cursor_rows(cursor)
    finally:
        cursor.close()


def usage_overview(
    cursor: duckdb.DuckDBPyConnection, days: int = DAYS, top: int = TOP
) -> UsageOverview:
    """What the usage screen shows, read from the views usage_daily, session_summary and
    tool_stats (each record counted once, as `ocindex usage` and SQL count it)."""
    return overview_from(cursor_rows(cursor), days, top)


def overview_from(rows: Rows, days: int = DAYS, top: int = TOP) -> UsageOverview:
    """usage_overview through any way of running a SELECT."""
    zone = rows("SELECT current_setting('TimeZone')")
    day_rows = rows(_DAYS_SQL.format(days=days))
    session_rows = rows(_SESSIONS_SQL.format(top=top))
    tool_rows = rows(_TOOLS_SQL.format(top=top))
    return UsageOverview(
        time_zone=str(zone[0][0]) if zone else "",
        days=tuple(
            DayModel(day, str(model), int(tokens or 0), float(cost or 0.0))
            for day, model, tokens, cost in day_rows
        ),
        sessions=tuple(
            SessionCost(str(sid), str(title), started, int(turns), int(tokens), float(cost))
            for sid, title, started, turns, tokens, cost in session_rows
        ),
        tools=tuple(
            ToolFailures(
                str(tool),
                int(calls),
                int(failures),
                int(exits),
                int(interrupted),
                None if p95 is None else float(p95),
            )
            for tool, calls, failures, exits, interrupted, p95 in tool_rows
        ),
    )


def documented_views(cursor: duckdb.DuckDBPyConnection) -> tuple[ViewColumns, ...]:
    """The documented views (indexer/store/views.py) the index holds, in their definition
    order, each with its columns as DuckDB's catalog describes them."""
    return views_from(cursor_rows(cursor))


def views_from(rows: Rows) -> tuple[ViewColumns, ...]:
    """documented_views through any way of running a SELECT."""
    names = [name for name, _sql in VIEWS]
    columns: dict[str, list[tuple[str, str]]] = {}
    for view, column, kind in rows(_VIEWS_SQL):
        columns.setdefault(str(view), []).append((str(column), str(kind)))
    return tuple(ViewColumns(n, tuple(columns[n])) for n in names if n in columns)
