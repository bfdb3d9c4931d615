"""`ocindex status` (what the index holds, which indexer would run) and `ocindex rollback`.
Never starts an engine or reads a pipeline setting: a bad tunable must not block either.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from indexer.cli.options import Fatal, Subparsers, add_opencode_db, db_path, flags
from indexer.config import Paths, Rollout, process_env
from indexer.metrics import compare
from indexer.pipeline.writer import IndexWriter
from indexer.rollout import RolloutState, choose
from indexer.sources.sqlite import discover_databases, format_sources, sources_status
from indexer.status import collect_status, existing_tables
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
        type=float,
        default=3600.0,
        help="seconds of history for the per-version figures (default 3600)",
    )
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    env = process_env()
    paths = Paths.from_env(flags(args), env)
    rollout = Rollout.from_env(env)
    db = paths.db_path
    if not db.exists():
        raise Fatal(f"no database at {db}; run `ocindex index --db {db}` first")
    choice = choose(None, RolloutState(db), rollout)
    conn = open_database(db, read_only=True)
    try:
        indexed_root = get_meta(conn, "storage_root") if "meta" in existing_tables(conn) else None
        # The root this database was built from, unless --storage names another.
        root = paths.storage_root
        if indexed_root and paths.storage_source != "--storage":
            root = Path(indexed_root)
        status = collect_status(conn)
        versions = compare(conn, args.window) if "batch_log" in existing_tables(conn) else None
        databases = discover_databases(root, paths.opencode_db, paths.opencode_env)
        sources = sources_status(conn, databases, root)
    finally:
        conn.close()
    status.update(active=choice.version, why=choice.reason, rollout_percent=choice.rollout_percent)
    status["versions"] = {
        v.version: {
            "files_per_s": round(v.files_per_s, 1),
            "files": v.files,
            "batches": v.batches,
            "errors": v.errors,
            "reconciler_catches": v.reconciler_catches,
            "processing_ms": asdict(v.processing_ms),
            "event_latency_ms": asdict(v.event_latency_ms),
        }
        for v in ((versions.v1, versions.v2) if versions else ())
    }
    status["sources"] = sources
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    fi = status["file_index"]
    print(f"database        {db} (schema {status['schema_version']})")
    print(f"indexer         {choice.version}: {choice.reason}")
    print("file_index      " + ", ".join(f"{k} {v}" for k, v in fi.items()))
    print("tables          " + ", ".join(f"{k} {v}" for k, v in status["tables"].items()))
    for line in format_sources(sources):
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
