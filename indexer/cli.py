"""The headless commands: simulate, status, index, run, rollback, bench.
Never imports the TUI: `tui.cli` adds the dashboard command on top of this parser.

Exit codes: 0 success, 1 fatal error (one clear line, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from indexer.config import ConfigError, default_db_path
from indexer.facade import IndexerStats
from indexer.pipeline.writer import IndexWriter
from indexer.read_model import existing_tables, file_status_counts
from indexer.rollout import Choice, RolloutState, choose_version, make_indexer
from indexer.sources.sqlite import ENV_DB, SqliteSource, discover_databases, make_sources
from indexer.status import V1_NOTE, status_report
from indexer.storage import resolve_storage_root
from indexer.store.database import DatabaseError, open_database
from indexer.store.logs import append_switch
from indexer.store.schema import get_meta, set_meta

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
    p.add_argument(
        "--sqlite",
        action="store_true",
        help="write OpenCode 1.2's SQLite store instead: opencode.db (WAL) beside ROOT, rows "
        "updated in place, sessions deleted with their cascade; session_diff stays JSON in ROOT",
    )
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from indexer.simulate import OpenCodeSimulator, SqliteSimulator

    if args.sessions < 0 or args.duration < 0:
        raise Fatal("--sessions and --duration must not be negative")
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


def _storage(args: argparse.Namespace) -> Path:
    root, source = resolve_storage_root(args.storage)
    if not root.is_dir():
        raise Fatal(
            f"no OpenCode storage at {root} (from {source}); pass --storage DIR, "
            "or write a demo tree with `ocindex simulate --root DIR`"
        )
    return root


def _db(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else default_db_path()


def _choose(cli_choice: str | None, db: Path) -> Choice:
    try:
        return choose_version(cli_choice, RolloutState(db))
    except ValueError as exc:  # a malformed rollout environment variable
        raise Fatal(str(exc)) from None


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage", type=Path, help="OpenCode storage root (default: found as documented)"
    )
    p.add_argument(
        "--db", type=Path, help="ocindex DuckDB file (default $XDG_DATA_HOME/ocindex/index.duckdb)"
    )
    p.add_argument("--indexer", choices=("v1", "v2"), help="force an indexer (overrides rollout)")
    _add_opencode_db(p)


def _add_opencode_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--opencode-db",
        type=Path,
        help="OpenCode's SQLite store (default: $OPENCODE_DB, else opencode*.db beside the "
        "storage folder); read by v2 only",
    )


def _sqlite_sources(
    args: argparse.Namespace, root: Path, index: Callable[[], Any] | None = None
) -> list[SqliteSource]:
    databases = discover_databases(root, args.opencode_db)
    return make_sources(databases, root, index=index)


def _add_index(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "index",
        help="index everything once and exit",
        description="One-shot catch-up: scan the storage fully, index every file, wait until "
        "nothing is pending (or --settle-timeout passes), print a summary.",
    )
    _add_engine_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for pending files (default 600)",
    )
    p.set_defaults(func=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    root, db = _storage(args), _db(args)
    choice = _choose(args.indexer, db)
    writer = IndexWriter.open(db)
    try:
        writer.run(partial(set_meta, key="storage_root", value=str(root)))
        sources = _sqlite_sources(args, root, writer.cursor)
        indexer = make_indexer(
            choice.version, root, writer=writer, watch=False, bulk=True, sources=sources
        )
        t0 = time.monotonic()
        indexer.start()
        progress = Progress(enabled=not args.json and sys.stderr.isatty())
        deadline = t0 + args.settle_timeout
        while not indexer.is_idle() and time.monotonic() < deadline:
            progress.show(indexer.stats(), time.monotonic() - t0)
            time.sleep(0.1)
        indexer.stop(flush=True, close=False)
        seconds = time.monotonic() - t0
        progress.done()
        counts = writer.run(file_status_counts, writes=False)
    finally:
        writer.close()
    seen = sum(counts.values()) - counts["deleted"]
    summary = {
        "indexer": choice.version,
        "files_seen": seen,
        **counts,
        "seconds": round(seconds, 3),
        "files_per_s": round(seen / seconds, 1) if seconds > 0 else 0.0,
    }
    if sources:
        summary["sources"] = [s.describe()["path"] for s in sources]
        if choice.version == "v1":
            summary["note"] = V1_NOTE
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        if sources and choice.version == "v1":
            print(f"note: {V1_NOTE}", file=sys.stderr)
        print(
            f"indexed {counts['indexed']} of {seen} files with {choice.version} in {seconds:.1f}s "
            f"({summary['files_per_s']} files/s): {counts['error']} error, "
            f"{counts['pending']} pending, {counts['skipped']} skipped, {counts['deleted']} deleted"
        )
    return 0


class Progress:
    """A one-line progress display on stderr, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._shown = False

    def show(self, stats: IndexerStats, elapsed_s: float) -> None:
        if not self.enabled:
            return
        done, pending = stats.files_processed, stats.pending_files
        rate = done / elapsed_s if elapsed_s > 0 else 0.0
        sys.stderr.write(
            f"\rindexing: {done:,} files done, {pending:,} pending, {rate:,.0f} files/s   "
        )
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\n")


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the indexer headless until Ctrl-C",
        description="The headless daemon: index, watch and reconcile until Ctrl-C or SIGTERM, "
        "then flush everything pending and print one summary line.",
    )
    _add_engine_options(p)
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from indexer.service import IndexerService

    root, db = _storage(args), _db(args)
    exporter = None
    if args.metrics_port is not None:
        from indexer.metrics import PrometheusExporter

        try:
            exporter = PrometheusExporter(args.metrics_port)
        except OSError as exc:
            raise Fatal(
                f"cannot serve metrics on port {args.metrics_port}: {exc.strerror}"
            ) from None
    # --opencode-db reaches the service as $OPENCODE_DB, which it takes over the default place.
    env = {**os.environ, ENV_DB: str(args.opencode_db)} if args.opencode_db else None
    service = IndexerService(root, db, cli_choice=args.indexer, exporter=exporter, env=env)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    t0 = time.monotonic()
    service.start()
    logging.getLogger("ocindex").info(
        "running %s on %s into %s (%s)",
        service.active,
        root,
        db,
        service.choice.reason if service.choice else "",
    )
    while not stop.wait(1.0):
        if exporter is not None and service.current is not None:
            exporter.set_pending(service.active, service.current.stats().pending_files)
    version = service.active
    service.stop()
    conn = open_database(db, read_only=True)
    try:
        counts = file_status_counts(conn)
    finally:
        conn.close()
    print(
        f"ocindex run stopped after {time.monotonic() - t0:.1f}s on {version}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items()),
        flush=True,
    )
    return 0


def _add_rollback(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    db = _db(args)
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


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="measure throughput, latency, reconcile time and memory",
        description="Measure everything side by side on this machine: the plan's proof of "
        "concept, v1 vs v2 realtime, bulk catch-up next to read_json_auto, a 100k-file "
        "reconcile, and peak RSS. Trees are generated once under --dir and reused.",
    )
    p.add_argument(
        "--files", type=int, default=20_000, help="files for the bulk catch-up (default 20000)"
    )
    p.add_argument(
        "--json", type=Path, dest="json_out", help="also write the figures to this JSON file"
    )
    p.add_argument(
        "--quick", action="store_true", help="shorter realtime runs (under 2 minutes in all)"
    )
    p.add_argument("--ab", action="store_true", help="only the v1 vs v2 realtime comparison")
    p.add_argument(
        "--only",
        choices=("poc", "realtime", "bulk", "reconcile"),
        action="append",
        help="run only these sections",
    )
    p.add_argument(
        "--dir",
        type=Path,
        help="where to keep the generated trees (default /dev/shm/ocindex-bench)",
    )
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from indexer.bench import default_bench_dir, format_table, run_bench

    sections = tuple(
        args.only or (("realtime",) if args.ab else ("poc", "realtime", "bulk", "reconcile"))
    )
    result = run_bench(
        args.dir or default_bench_dir(),
        args.files,
        args.quick,
        sections,
        lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_table(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


def _add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    _add_opencode_db(p)
    p.add_argument(
        "--window",
        type=float,
        default=3600.0,
        help="seconds of history for the per-version figures (default 3600)",
    )
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    db = _db(args)
    if not db.exists():
        raise Fatal(f"no database at {db}; run `ocindex index --db {db}` first")
    choice = _choose(None, db)
    conn = open_database(db, read_only=True)
    try:
        indexed_root = get_meta(conn, "storage_root") if "meta" in existing_tables(conn) else None
        # The root this database was built from, unless --storage names another.
        root = args.storage or (Path(indexed_root) if indexed_root else resolve_storage_root()[0])
        databases = discover_databases(root, args.opencode_db)
        report = status_report(conn, db, choice, args.window, databases, root)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        return 0
    for line in report.lines():
        print(line)
    return 0


COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_index,
    _add_run,
    _add_status,
    _add_rollback,
    _add_simulate,
    _add_bench,
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
    except (Fatal, DatabaseError, ConfigError) as exc:
        print(f"ocindex: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ocindex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ocindex status | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
