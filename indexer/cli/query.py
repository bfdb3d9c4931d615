"""`ocindex query`: one read-only SQL statement on the index, live (through the process that
holds it) or idle (the file opened read-only), written as a table, CSV, JSON, Parquet or Arrow.
Never writes the index: indexer.live.readonly decides what runs.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import decimal
import io
import json
import logging
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from indexer.cli.options import Fatal, Subparsers, db_path
from indexer.config import ConfigError
from indexer.live.client import answer
from indexer.live.readonly import DEFAULT_LIMIT, DEFAULT_TIMEOUT_S, QueryError

FORMATS = ("table", "csv", "json", "jsonl", "parquet", "arrow")
BINARY = frozenset({"parquet", "arrow"})
CELL_WIDTH = 60
"""The table format cuts longer cells, with an ellipsis; the other formats never cut."""

log = logging.getLogger(__name__)


def add_query(sub: Subparsers) -> None:
    p = sub.add_parser(
        "query",
        help="run one read-only SQL statement on the index (live or idle)",
        description="Run one SQL statement that only reads (SELECT, WITH, DESCRIBE, SHOW, "
        "SUMMARIZE, EXPLAIN) on the index. While an ocindex process indexes the database, the "
        "query runs in that process, through its socket; otherwise on the file, opened "
        "read-only. Anything else is refused (docs/configuration.md, `ocindex query`).",
        epilog="exit codes: 0 the result was written; 1 the query was refused, failed, timed "
        "out, or the database cannot be read (one `ocindex: error:` line); 2 a usage error.",
    )
    p.add_argument("sql", nargs="?", help="the statement; `-` or none reads it from stdin")
    p.add_argument("-f", "--file", type=Path, help="read the statement from FILE")
    p.add_argument("--db", type=Path, help="ocindex DuckDB file")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (table)")
    p.add_argument("-o", "--output", type=Path, help="write the result to FILE, not stdout")
    p.add_argument(
        "--limit",
        default=DEFAULT_LIMIT,
        help=f"at most this many rows, 1 to 100000000 (default {DEFAULT_LIMIT})",
    )
    p.add_argument(
        "--timeout",
        default=DEFAULT_TIMEOUT_S,
        help=f"stop the query after this many seconds, 0.01 to 86400 (default {DEFAULT_TIMEOUT_S:g})",
    )
    p.set_defaults(func=cmd_query)


def cmd_query(args: argparse.Namespace) -> int:
    sql = statement(args)
    if args.format in BINARY and args.output is None and sys.stdout.isatty():
        raise ConfigError(
            f"--format {args.format} is binary: pass --output FILE or redirect stdout"
        )
    try:
        found = answer(sql, db_path(args), int(args.limit), float(args.timeout))
    except QueryError as exc:
        raise Fatal(str(exc)) from None
    if found.live_pid is not None:
        log.debug("answered by the live ocindex process %d", found.live_pid)
    result = found.result
    if args.output is not None:
        try:
            with open(args.output, "wb") as sink:
                write(result.table, args.format, sink)
        except OSError as exc:
            raise Fatal(f"cannot write {args.output}: {exc.strerror}") from None
    else:
        write(result.table, args.format, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    if result.truncated:
        print(
            f"ocindex: note: the first {result.table.num_rows} rows only (--limit)",
            file=sys.stderr,
        )
    return 0


def statement(args: argparse.Namespace) -> str:
    """The SQL given as the argument, in --file, or on stdin."""
    if args.sql is not None and args.sql != "-" and args.file is not None:
        raise ConfigError("give the statement either as an argument or with --file, not both")
    if args.file is not None:
        try:
            return str(args.file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise Fatal(
                f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    if args.sql is not None and args.sql != "-":
        return str(args.sql)
    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("no statement: give SQL as an argument, with --file, or on stdin")
    return sys.stdin.read()


def write(table: pa.Table, fmt: str, sink: IO[bytes]) -> None:
    WRITERS[fmt](table, sink)


def write_table(table: pa.Table, sink: IO[bytes]) -> None:
    sink.write(render(table).encode())


def write_csv(table: pa.Table, sink: IO[bytes]) -> None:
    buffer = io.BytesIO()
    try:
        pacsv.write_csv(table, buffer)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Fatal(f"CSV cannot hold this result ({exc}); use --format json") from None
    sink.write(buffer.getvalue())


def write_json(table: pa.Table, sink: IO[bytes]) -> None:
    sink.write(json.dumps(table.to_pylist(), default=plain, ensure_ascii=False).encode())
    sink.write(b"\n")


def write_jsonl(table: pa.Table, sink: IO[bytes]) -> None:
    for row in table.to_pylist():
        sink.write(json.dumps(row, default=plain, ensure_ascii=False).encode() + b"\n")


def write_parquet(table: pa.Table, sink: IO[bytes]) -> None:
    pq.write_table(table, sink)


def write_arrow(table: pa.Table, sink: IO[bytes]) -> None:
    with ipc.new_file(sink, table.schema) as out:
        out.write_table(table)


WRITERS: dict[str, Callable[[pa.Table, IO[bytes]], None]] = {
    "table": write_table,
    "csv": write_csv,
    "json": write_json,
    "jsonl": write_jsonl,
    "parquet": write_parquet,
    "arrow": write_arrow,
}


def plain(value: Any) -> Any:
    """A JSON value for what json cannot write itself: times as ISO 8601, durations in seconds,
    decimals as numbers, bytes as base64."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def render(table: pa.Table) -> str:
    """The result as an aligned text table: numbers right, text left, NULL for a missing value."""
    names = table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    numeric = [
        pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
        for f in table.schema
    ]
    cells = [[cell(v) for v in column] for column in columns]
    widths = [
        max([len(name), *(len(c) for c in column)])
        for name, column in zip(names, cells, strict=True)
    ]
    lines = [
        "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for r in range(table.num_rows):
        lines.append(
            "  ".join(
                column[r].rjust(w) if right else column[r].ljust(w)
                for column, w, right in zip(cells, widths, numeric, strict=True)
            ).rstrip()
        )
    rows = table.num_rows
    lines.append(f"({rows} row{'' if rows == 1 else 's'})")
    return "\n".join(lines) + "\n"


def cell(value: object) -> str:
    text = "NULL" if value is None else " ".join(str(value).split())
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"
