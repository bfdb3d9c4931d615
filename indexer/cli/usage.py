"""`ocindex usage`: tokens and cost per day, week, month, session, model or project, read from
the `usage_messages` view, so the report and SQL agree. Never writes the index.

The index is opened read-only and the views are defined for this connection only, so the report
works on an idle index of any ocindex that wrote schema 6. Days are local dates in --tz (default
the machine's time zone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from indexer.cli.options import Fatal, Subparsers, add_day_range, flags
from indexer.config import ConfigError, Paths, process_env
from indexer.read_model import existing_tables
from indexer.store.database import DatabaseLocked, open_database
from indexer.store.schema import get_meta
from indexer.store.views import create_views

VIEWS_SINCE_SCHEMA = 6
CLASSES = ("input", "output", "reasoning", "cache_read", "cache_write", "total")
FIGURES = ("messages", *(f"tokens_{c}" for c in CLASSES), "cost")


@dataclass(frozen=True, slots=True)
class Grouping:
    keys: tuple[str, ...]
    """Output column names, in order."""
    select: str
    """The SQL of those columns over `usage_messages u` (sessions s, projects p joined)."""
    order: str
    group_by: str = "1"
    """The positions grouped on: a label read with any_value() is not one."""


GROUPINGS: dict[str, Grouping] = {
    "day": Grouping(("day",), "u.day", "1"),
    "week": Grouping(("week",), "CAST(date_trunc('week', u.day) AS DATE)", "1"),
    "month": Grouping(("month",), "strftime(u.day, '%Y-%m')", "1"),
    "model": Grouping(
        ("provider", "model"), "u.provider_id, u.model_id", "cost DESC, 1, 2", "1, 2"
    ),
    "project": Grouping(
        ("project", "worktree"), "u.project_id, any_value(p.worktree)", "cost DESC, 1"
    ),
    "session": Grouping(("session", "title"), "u.session_id, any_value(s.title)", "cost DESC, 1"),
}
_ZONE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")


def add_usage(sub: Subparsers) -> None:
    p = sub.add_parser(
        "usage",
        help="tokens and cost per day, week, month, session, model or project",
        description="Tokens and cost from the index, each message counted once (fork copies "
        "left out, step-finish parts never added), per local day by default.",
    )
    p.add_argument(
        "--db", type=Path, help="ocindex DuckDB file (default $XDG_DATA_HOME/ocindex/index.duckdb)"
    )
    p.add_argument("--by", choices=tuple(GROUPINGS), default="day", help="grouping (default day)")
    add_day_range(p, "time zone of the days, e.g. UTC or Europe/Paris (default: this machine's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    db = Paths.from_env(flags(args), process_env()).db_path
    if not db.exists():
        raise Fatal(f"no database at {db}; run `ocindex index --db {db}` first")
    try:
        conn = open_database(db, read_only=True, wait_s=1.0)
    except DatabaseLocked as exc:
        raise Fatal(
            f"{db} is held by a running ocindex ({exc.holder}); stop it to read usage"
        ) from None
    try:
        report = usage_report(conn, args.by, args.since, args.until, args.tz)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for line in table_lines(report):
            print(line)
    return 0


def usage_report(
    conn: duckdb.DuckDBPyConnection,
    by: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    tz: str | None = None,
) -> dict[str, Any]:
    """Rows of the grouping and their totals, as plain values (dates as ISO text); the part of
    the totals that 2.x compaction requests spent is repeated under `compaction`."""
    version = get_meta(conn, "schema_version") if "meta" in existing_tables(conn) else None
    if version is None or int(version) < VIEWS_SINCE_SCHEMA:
        raise Fatal(
            f"the index is at schema {version or 'none'}; run `ocindex index` once to "
            f"upgrade it to {VIEWS_SINCE_SCHEMA}"
        )
    if tz is not None:
        if not _ZONE.match(tz):
            raise ConfigError(f"--tz {tz!r}: expected a time zone name such as Europe/Paris")
        try:
            conn.execute(f"SET TimeZone = '{tz}'")
        except duckdb.Error:
            raise ConfigError(f"--tz {tz!r}: unknown time zone") from None
    create_views(conn, temporary=True)
    grouping = GROUPINGS[by]
    where, params = ["TRUE"], []
    if since is not None:
        where.append("u.day >= ?")
        params.append(since)
    if until is not None:
        where.append("u.day <= ?")
        params.append(until)
    sums = ", ".join(
        ["count(*) AS messages"]
        + [f"CAST(sum(u.tokens_{c}) AS BIGINT) AS tokens_{c}" for c in CLASSES]
        + ["sum(u.cost) AS cost"]
    )
    cond = " AND ".join(where)
    sql = (
        f"SELECT {grouping.select}, {sums} FROM usage_messages u "
        "LEFT JOIN sessions s ON s.id = u.session_id "
        "LEFT JOIN projects p ON p.id = u.project_id "
        f"WHERE {cond} GROUP BY {grouping.group_by} ORDER BY {grouping.order}"
    )
    names = (*grouping.keys, *FIGURES)
    rows = [_plain(dict(zip(names, r, strict=True))) for r in conn.execute(sql, params).fetchall()]
    total_row = conn.execute(f"SELECT {sums} FROM usage_messages u WHERE {cond}", params).fetchone()
    totals = _plain(dict(zip(FIGURES, total_row or (), strict=True)))
    # 2.x compaction requests carry usage of their own: in the figures, and also shown apart.
    part_row = conn.execute(
        f"SELECT {sums} FROM usage_messages u WHERE {cond} AND u.kind = 'compaction'", params
    ).fetchone()
    compaction = _plain(dict(zip(FIGURES, part_row or (), strict=True)))
    zone = conn.execute("SELECT current_setting('TimeZone')").fetchone()
    return {
        "by": by,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "time_zone": zone[0] if zone else None,
        "rows": rows,
        "totals": totals,
        "compaction": compaction,
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif name.startswith("tokens_") or name == "messages":
            value = int(value or 0)
        elif name == "cost":
            value = round(float(value or 0.0), 9)
        out[name] = value
    return out


def table_lines(report: dict[str, Any]) -> list[str]:
    """A readable table: one line per group, then the totals."""
    rows: list[dict[str, Any]] = report["rows"]
    keys = GROUPINGS[report["by"]].keys
    heads = (*keys, "msgs", "input", "output", "reasoning", "cache read", "cache write", "total")
    heads = (*heads, "cost $")

    def cells(row: dict[str, Any], label: tuple[str, ...]) -> list[str]:
        figures = [f"{row[f]:,}" for f in FIGURES[:-1]]
        return [*label, *figures, f"{row['cost']:,.4f}"]

    body = [cells(r, tuple(_short(r[k]) for k in keys)) for r in rows]
    total = cells(report["totals"], ("TOTAL", *("" for _ in keys[1:])))
    widths = [max(len(x) for x in col) for col in zip(heads, *body, total, strict=True)]

    def line(values: list[str] | tuple[str, ...]) -> str:
        return "  ".join(
            v.ljust(w) if i < len(keys) else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    zone = report["time_zone"]
    out = [f"usage by {report['by']} (days in {zone})", line(heads)]
    out += [line(b) for b in body]
    out += ["-" * len(line(heads)), line(total)]
    if not rows:
        out.insert(2, "(no usage in this range)")
    return out


def _short(value: object, width: int = 40) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
