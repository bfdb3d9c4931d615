"""`ocindex simulate`: realistic OpenCode activity written under a storage root, as JSON files or
OpenCode 1.2's SQLite store. Never indexes anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from indexer.cli.options import Fatal, Subparsers


def add_simulate(sub: Subparsers) -> None:
    p = sub.add_parser(
        "simulate",
        help="write realistic OpenCode activity under a storage root",
        description="Write realistic OpenCode activity (projects, sessions, messages, parts "
        "rewritten in place, todos, diffs) under ROOT, laid out as OpenCode lays it out.",
    )
    p.add_argument("--root", required=True, type=Path, help="storage root to write into")
    p.add_argument(
        "--sessions", default=20, help="sessions to write with --once, 0 to 100000 (default 20)"
    )
    p.add_argument(
        "--seed",
        default=0,
        help="random seed, 0 to 4294967295: same seed, same bytes (default 0)",
    )
    p.add_argument(
        "--rate",
        default=None,
        help="live mode: file writes per second, 0 to 100000 (0 = as fast as possible)",
    )
    p.add_argument(
        "--duration", default=10.0, help="live mode: seconds to run, 0 to 86400 (default 10)"
    )
    p.add_argument("--once", action="store_true", help="write --sessions whole sessions and exit")
    p.add_argument(
        "--faults", action="store_true", help="mix in partial writes, corrupt files and deletions"
    )
    p.add_argument(
        "--sqlite",
        action="store_true",
        help="write OpenCode 1.2's SQLite store instead: opencode.db (WAL) beside ROOT, rows "
        "updated in place, sessions deleted with their cascade; session_diff stays JSON in ROOT",
    )
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from indexer.simulate import OpenCodeSimulator, SqliteSimulator

    if args.sqlite and args.faults:
        raise Fatal("--faults applies to JSON files only (SQLite writes are transactions)")
    args.root.mkdir(parents=True, exist_ok=True)
    sim = (
        SqliteSimulator(args.root, seed=args.seed)
        if args.sqlite
        else OpenCodeSimulator(args.root, seed=args.seed, faults=args.faults)
    )
    try:
        if args.once or args.rate is None:
            report = sim.write_sessions(args.sessions)
        else:
            report = sim.run(args.rate, args.duration)
    finally:
        if isinstance(sim, SqliteSimulator):
            sim.close()
    out = report.to_dict()
    if isinstance(sim, SqliteSimulator):
        out["database"] = str(sim.db_path)
    print(json.dumps(out, indent=2))
    return 0
