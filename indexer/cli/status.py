"""`ocindex status` (what the index holds, which indexer would run) and `ocindex rollback`, on the
file, or through the live ocindex that holds it. Never starts an engine or reads a pipeline
setting: a bad tunable must not block either.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexer.cli.options import Fatal, Subparsers, add_opencode_db, db_path, flags
from indexer.config import Paths, Rollout, lock_wait_s, process_env
from indexer.live.client import LiveClient, reach
from indexer.live.readonly import QueryError
from indexer.pipeline.writer import IndexWriter
from indexer.read_model import existing_tables
from indexer.rollout import RolloutState, choose
from indexer.sources.sqlite import discover_databases
from indexer.status import status_report
from indexer.store.database import open_database
from indexer.store.logs import append_switch
from indexer.store.schema import get_meta


def add_status(sub: Subparsers) -> None:
    p = sub.add_parser(
        "status",
        help="show what the index holds",
        description="Show the schema version, file_index counts by status and rows per table.",
    )
    p.add_argument(
        "--db", type=Path, help="ocindex DuckDB file (default $XDG_DATA_HOME/ocindex/index.duckdb)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--storage", type=Path, help="OpenCode storage root, to find its SQLite store beside it"
    )
    add_opencode_db(p)
    p.add_argument(
        "--window",
        default=3600.0,
        help="seconds of history for the per-version figures, 1 to 31536000 (default 3600)",
    )
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    env = process_env()
    paths = Paths.from_env(flags(args), env)
    rollout = Rollout.from_env(env)
    db = paths.db_path
    if not db.exists():
        raise Fatal(f"no database at {db}; run `ocindex index --db {db}` first")
    lock_wait_s(env)  # a bad value stops status too, before it opens anything
    client = reach(db)
    if client is not None:  # the process holding the file reports, with its live figures
        reply = ask(client, lambda: client.status(args.window))
        if args.json:
            print(json.dumps(reply["report"], indent=2))
        else:
            for line in reply["lines"]:
                print(line)
        return 0
    # Status never writes: not the rollout file, not the database (a read-only folder is fine).
    choice = choose(None, RolloutState(db, writable=False), rollout)
    conn = open_database(db, read_only=True)
    try:
        indexed_root = get_meta(conn, "storage_root") if "meta" in existing_tables(conn) else None
        # The root this database was built from, unless --storage names another.
        root = paths.storage_root
        if indexed_root and paths.storage_source != "--storage":
            root = Path(indexed_root)
        databases = discover_databases(root, paths.opencode_db, paths.opencode_env)
        report = status_report(conn, db, choice, args.window, databases, root)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        return 0
    for line in report.lines():
        print(line)
    return 0


def add_rollback(sub: Subparsers) -> None:
    p = sub.add_parser(
        "rollback",
        help="roll v2 back to v1 (persisted)",
        description="Set the v2 rollout to 0%% and record the rollback, so the next start runs v1. "
        "A running ocindex rolls back at once with its `b` key instead.",
    )
    p.add_argument("--db", type=Path, help="ocindex DuckDB file")
    p.add_argument("--reason", default="rollback script", help="why, recorded in switch_log")
    p.set_defaults(func=cmd_rollback)


def cmd_rollback(args: argparse.Namespace) -> int:
    db = db_path(args)
    if not db.exists():
        raise Fatal(f"no database at {db}")
    client = reach(db)
    if client is not None:  # the running process switches now and persists the rollout
        reply = ask(client, lambda: client.rollback(args.reason))
        if not reply["ok"]:
            raise Fatal(f"the running ocindex (process {reply['pid']}): {reply['message']}")
        print(
            f"rolled back live in process {reply['pid']}: {reply['message']}; rollout 0%, "
            "persisted, so the next start runs v1 too"
        )
        return 0
    state = RolloutState(db)
    previous = state.load().get("active_version", "unknown")
    writer = IndexWriter.open(db)  # a running engine holds the lock: stop it, or press b in it
    try:
        writer.run(lambda conn: append_switch(conn, previous, "v1", args.reason))
    finally:
        writer.close()
    state.save(
        rollout_percent=0,
        rolled_back_at=time.time(),
        rollback_reason=args.reason,
        active_version="v1",
    )
    print(f"rolled back: rollout 0%, the next start runs v1 (was {previous})")
    return 0


def ask(client: LiveClient, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One call to the live process, its failure as one Fatal line; the client is closed."""
    try:
        return call()
    except QueryError as exc:
        raise Fatal(f"the running ocindex (process {client.pid}): {exc}") from None
    finally:
        client.close()
