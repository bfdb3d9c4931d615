"""`ocindex simulate`: realistic OpenCode activity written under a storage root, as JSON files or
an OpenCode SQLite store of a chosen generation. Never indexes anything.
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
        help="write an OpenCode SQLite store instead: opencode.db (WAL) beside ROOT, rows "
        "updated in place, sessions deleted with their cascade; session_diff stays JSON in ROOT",
    )
    p.add_argument(
        "--generation",
        choices=("1.2", "1.18", "2.x", "upgraded"),
        default=None,
        help="with --sqlite, which store to write (default 2.x): "
        "1.2 = session/message/part tables only; "
        "1.18 = the 1.x tables plus session rollups, an event table repeating every update and "
        "session_message holding model/agent switch rows; "
        "2.x = a fresh 2.x file: session_v2 and session_message rows (assistant rows inserted "
        "empty, then updated in place while they stream), forks, reverts, archives, deletes; "
        "upgraded = 1.18 history, then OpenCode's 1.x->2.x migration (partial: some sessions "
        "left unmigrated), one migrated session deleted in 2.x, then 2.x activity",
    )
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from indexer.simulate import OpenCodeSimulator, SqliteSimulator

    if args.sqlite and args.faults:
        raise Fatal("--faults applies to JSON files only (SQLite writes are transactions)")
    if args.generation is not None and not args.sqlite:
        raise Fatal("--generation applies to the SQLite store: add --sqlite")
    args.root.mkdir(parents=True, exist_ok=True)
    sim = (
        SqliteSimulator(args.root, seed=args.seed, generation=args.generation or "2.x")
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
        out["generation"] = sim.generation
    print(json.dumps(out, indent=2))
    return 0
