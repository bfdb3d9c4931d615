"""`ocindex export --parquet DIR`: the data tables as Parquet partitioned by day, only what changed
since the last export rewritten. Never writes the index: indexer.export reads it read-only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from indexer.cli.options import Fatal, Subparsers, db_path
from indexer.export import DEFAULT_TIMEOUT_S, ExportError, ExportReport, export_parquet
from indexer.live.readonly import QueryError


def add_export(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export",
        help="export the tables as Parquet partitioned by day, incrementally (live or idle)",
        description="Write projects, sessions, messages, parts, todos and session_diffs as "
        "Parquet under DIR/<table>/day=YYYY-MM-DD/part-0.parquet (hive style; projects whole). "
        "Only the partitions whose rows changed since the last export into DIR are rewritten, "
        "each atomically; partitions whose rows are gone are removed. Works while an ocindex "
        "process indexes the database (through its socket) or not (the file, read-only). "
        "Merging several people's exports: docs/export.md.",
        epilog="exit codes: 0 the export is up to date; 1 it could not run or finish (one "
        "`ocindex: error:` line; what was written is complete and the next run resumes); "
        "2 a usage error.",
    )
    p.add_argument("--parquet", type=Path, required=True, metavar="DIR", help="export folder")
    p.add_argument("--db", type=Path, help="ocindex DuckDB file")
    p.add_argument(
        "--timeout",
        default=DEFAULT_TIMEOUT_S,
        help=f"stop a read of the index after this many seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    try:
        report = export_parquet(db_path(args), args.parquet, float(args.timeout))
    except (ExportError, QueryError) as exc:
        raise Fatal(str(exc)) from None
    except OSError as exc:
        raise Fatal(f"cannot write the export: {exc.strerror or exc} ({exc.filename})") from None
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print("\n".join(lines(report)))
    return 0


def lines(report: ExportReport) -> list[str]:
    source = (
        f"live, through process {report.live_pid}"
        if report.live_pid is not None
        else "the database file"
    )
    head = (
        f"exported to {report.directory} from {source}: {report.files_written} files written "
        f"({report.rows_written} rows), {report.files_deleted} removed, "
        f"{report.files_unchanged} unchanged in {report.seconds:.2f}s"
    )
    return [head] + [
        f"  {t.name:<14} {t.partitions:>5} partitions: {t.written} written ({t.rows_written} "
        f"rows), {t.deleted} removed, {t.unchanged} unchanged"
        for t in report.tables
    ]
