"""The headless commands: simulate, status, index, run, rollback, bench.
Never imports the TUI: `tui.cli` adds the dashboard command on top of this parser.

Exit codes: 0 success, 1 fatal error (one clear line, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from indexer.schema import DatabaseError, open_database
from indexer.status import collect_status

Command = Callable[[argparse.Namespace], int]


class Fatal(Exception):
    """A fatal error whose message is one line for the user."""


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="write realistic OpenCode activity under a storage root",
        description="Write realistic OpenCode activity (projects, sessions, messages, parts "
        "rewritten in place, todos, diffs) under ROOT, laid out as OpenCode lays it out.",
    )
    p.add_argument("--root", required=True, type=Path, help="storage root to write into")
    p.add_argument(
        "--sessions", type=int, default=20, help="sessions to write with --once (default 20)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="random seed: same seed, same bytes (default 0)"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="live mode: file writes per second (0 = as fast as possible)",
    )
    p.add_argument(
        "--duration", type=float, default=10.0, help="live mode: seconds to run (default 10)"
    )
    p.add_argument("--once", action="store_true", help="write --sessions whole sessions and exit")
    p.add_argument(
        "--faults", action="store_true", help="mix in partial writes, corrupt files and deletions"
    )
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from indexer.simulate import OpenCodeSimulator

    if args.sessions < 0 or args.duration < 0:
        raise Fatal("--sessions and --duration must not be negative")
    sim = OpenCodeSimulator(args.root, seed=args.seed, faults=args.faults)
    if args.once or args.rate is None:
        report = sim.write_sessions(args.sessions)
    else:
        report = sim.run(args.rate, args.duration)
    print(json.dumps(report.to_dict(), indent=2))
    return 0


def _add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="show what the index holds",
        description="Show the schema version, file_index counts by status and rows per table.",
    )
    p.add_argument("--db", required=True, type=Path, help="the ocindex DuckDB file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    if not args.db.exists():
        raise Fatal(f"no database at {args.db}; run `ocindex index --db {args.db}` first")
    conn = open_database(args.db, read_only=True)
    try:
        status = collect_status(conn)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    fi = status["file_index"]
    print(f"database        {args.db} (schema {status['schema_version']})")
    print("file_index      " + ", ".join(f"{k} {v}" for k, v in fi.items()))
    print("tables          " + ", ".join(f"{k} {v}" for k, v in status["tables"].items()))
    return 0


COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_simulate,
    _add_status,
)


def build_parser(
    prog: str = "ocindex",
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Index OpenCode's storage into DuckDB, live, and show it working.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug lines to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser, sub


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command, turning expected failures into one line and exit code 1."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func: Command = args.func
    try:
        return func(args)
    except (Fatal, DatabaseError) as exc:
        print(f"ocindex: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ocindex: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
