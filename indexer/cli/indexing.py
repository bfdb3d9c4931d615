"""`ocindex index` (catch up once and exit) and `ocindex run` (the headless daemon), both on an
engine from indexer.engine. Never builds an engine's parts itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from indexer.cli.options import Fatal, Subparsers, add_engine_options, engine_config
from indexer.cli.progress import Progress
from indexer.config import ConfigError
from indexer.engine import assemble
from indexer.live.client import reach
from indexer.pipeline import first_load
from indexer.pipeline.reconciler import PARALLEL_WALK_MIN_FILES
from indexer.read_model import file_status_counts
from indexer.rollout import Indexer
from indexer.sources.sqlite import SourceState
from indexer.status import V1_NOTE
from indexer.store.database import open_database

if TYPE_CHECKING:
    from indexer.live.server import LiveServer
    from indexer.service import IndexerService

SOURCE_FIELDS = ("name", "kind", "path", "state", "message", "generation", "rows")
"""What the --json summary says of each discovered source (from its describe())."""
NOT_READ = "not_read"
"""The state the summary gives a source under v1, which never reads one."""
EXIT_CODES = (
    "exit codes: 0 everything found was read; 1 a discovered OpenCode database ended the run in "
    "a state other than ok (busy, unreadable, unknown_schema, missing, initializing: one "
    "`ocindex: error: could not read PATH (STATE: MESSAGE)` line each on stderr), files were "
    "left pending, or a fatal error; 2 a usage error or a setting out of range. The summary is "
    "printed either way."
)


def add_index(sub: Subparsers) -> None:
    p = sub.add_parser(
        "index",
        help="index everything once and exit",
        description="One-shot catch-up: scan the storage fully, index every file, wait until "
        "nothing is pending (or --settle-timeout passes), print a summary. A store's records "
        "are read in batches of 1,000 or more on one worker process per core "
        "(OCINDEX_READ_WORKERS; 0 turns them off). Into an empty index, a tree of "
        f"{first_load.MIN_FILES:,} files or more with no store beside it is loaded in bulk, "
        f"{first_load.BATCH_FILES:,} files a commit, read on those "
        "workers (OCINDEX_FIRST_LOAD=0 turns it off). Exits 1 when a source "
        "could not be read or files were left pending.",
        epilog=EXIT_CODES,
    )
    add_engine_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--settle-timeout",
        default=600.0,
        help="seconds to wait for pending files, 0 to 86400 (default 600)",
    )
    p.set_defaults(func=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    config = engine_config(args)
    live = reach(config.paths.db_path)
    if live is not None:
        live.close()
        raise Fatal(
            f"database {config.paths.db_path} is live: ocindex process {live.pid} is already "
            "indexing it (see `ocindex status`, `ocindex query`)"
        )
    engine = assemble(config, watch=False, bulk=True)
    indexer, writer, sources = engine.indexer, engine.writer, engine.sources
    version = engine.choice.version
    read = sources if version == "v2" else ()  # v1 never reads OpenCode's SQLite store
    try:
        t0 = time.monotonic()
        progress = Progress(enabled=not args.json and sys.stderr.isatty())
        with progress.meanwhile(indexer.stats, t0):  # a first catch-up is loaded inside start()
            indexer.start()
        deadline = t0 + args.settle_timeout
        settle(indexer, deadline, progress, t0)
        # A store busy at the end (a writer's exclusive lock, a checkpoint) is scanned again
        # for as long as a held database is waited for.
        retry_until = min(deadline, time.monotonic() + config.lock_wait_s)
        while (
            any(s.describe()["state"] == SourceState.BUSY for s in read)
            and time.monotonic() < retry_until
        ):
            time.sleep(0.2)
            indexer.rescan()
            settle(indexer, deadline, progress, t0)
        fatal = indexer.stats().fatal
        indexer.stop(flush=True, close=False)
        if fatal:
            raise Fatal(f"the index writer stopped: {fatal}")
        seconds = time.monotonic() - t0
        progress.done()
        counts = writer.run(file_status_counts, writes=False)
    finally:
        writer.close()
    seen = sum(counts.values()) - counts["deleted"]
    summary: dict[str, object] = {
        "indexer": version,
        "files_seen": seen,
        **counts,
        "seconds": round(seconds, 3),
        "files_per_s": round(seen / seconds, 1) if seconds > 0 else 0.0,
    }
    described = [source_summary(s.describe(), read=version == "v2") for s in sources]
    summary["sources"] = described
    if sources and version == "v1":
        summary["note"] = V1_NOTE
    unread = [d for d in described if d["state"] not in (SourceState.OK, NOT_READ)]
    errors = [
        f"could not read {d['path']} ({d['state']}: {str(d['message']).removesuffix(': retrying')})"
        for d in unread
    ]
    if counts["pending"]:
        errors.append(
            f"{counts['pending']} file(s) left pending after --settle-timeout "
            f"{args.settle_timeout:g}s (see `ocindex status`)"
        )
    if errors:
        summary["failures"] = errors
        summary["unread_sources"] = [
            {k: d[k] for k in ("path", "state", "message")} for d in unread
        ]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        if sources and version == "v1":
            print(f"note: {V1_NOTE}", file=sys.stderr)
        print(
            f"indexed {counts['indexed']} of {seen} files with {version} in {seconds:.1f}s "
            f"({summary['files_per_s']} files/s): {counts['error']} error, "
            f"{counts['pending']} pending, {counts['skipped']} skipped, {counts['deleted']} deleted"
        )
    for error in errors:
        print(f"ocindex: error: {one_line(error)}", file=sys.stderr)
    return 1 if errors else 0


def source_summary(described: Mapping[str, object], read: bool) -> dict[str, object]:
    """One discovered source as the --json summary lists it; v1 never reads one."""
    summary = {field: described.get(field) for field in SOURCE_FIELDS}
    if not read:
        summary.update(state=NOT_READ, message=V1_NOTE)
    return summary


def one_line(text: str) -> str:
    """`text` on one line, whatever a message from a source holds."""
    return " ".join(text.split())


def settle(indexer: Indexer, deadline: float, progress: Progress, t0: float) -> None:
    """Wait until nothing is pending or the deadline passes, showing progress."""
    while not indexer.is_idle() and time.monotonic() < deadline and not indexer.stats().fatal:
        progress.show(indexer.stats(), time.monotonic() - t0)
        time.sleep(0.1)


def add_run(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        help="run the indexer headless until Ctrl-C",
        description="The headless daemon: index, watch and reconcile until Ctrl-C or SIGTERM, "
        "then flush everything pending and print one summary line (a stop during a long first "
        "catch-up ends it after the batches in hand; the next start finishes it). v2 watches "
        "the storage folder from a child process of its own (OCINDEX_WATCHER_PROCESS=0 keeps it "
        "in this one), "
        f"and a tree of {PARALLEL_WALK_MIN_FILES:,} files or more is reconciled with threads "
        "sharing the walk "
        "(OCINDEX_WALK_THREADS=1 keeps it on one).",
    )
    add_engine_options(p)
    p.add_argument("--metrics-port", help="serve Prometheus metrics on 127.0.0.1:PORT (1 to 65535)")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="also serve the live endpoint on loopback TCP (127.0.0.1 or [::1] only; "
        "no authentication: any local user can query it and switch the indexer)",
    )
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from indexer.service import IndexerService

    config = engine_config(args)
    exporter = None
    if args.metrics_port is not None:
        from indexer.metrics import PrometheusExporter

        try:
            exporter = PrometheusExporter(args.metrics_port)
        except OSError as exc:
            raise Fatal(
                f"cannot serve metrics on port {args.metrics_port}: {exc.strerror}"
            ) from None
    listen = None if args.listen is None else live_address(args.listen)
    service = IndexerService.from_config(config, exporter=exporter)
    stop = threading.Event()

    def stopping(*_: object) -> None:
        stop.set()
        service.interrupt()  # a long first catch-up ends after its current batch

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stopping)
    t0 = time.monotonic()
    progress = Progress(enabled=sys.stderr.isatty())
    with progress.meanwhile(service.indexer_stats, t0):  # a long first catch-up shows
        service.start()
    progress.done()
    tcp = None if listen is None or stop.is_set() else serve_tcp_or_stop(service, listen)
    if not stop.is_set():
        logging.getLogger("ocindex").info(
            "running %s on %s into %s (%s)",
            service.active,
            service.root,
            service.db_path,
            service.choice.reason if service.choice else "",
        )
    fatal = None
    while not stop.wait(1.0):
        stats = service.current.stats() if service.current is not None else None
        if exporter is not None and stats is not None:
            exporter.set_pending(service.active, stats.pending_files)
        if stats is not None and stats.fatal:  # never a process that runs but indexes nothing
            fatal = stats.fatal
            break
    version = service.active
    if tcp is not None:
        tcp.stop()
    service.stop()
    if fatal:
        raise Fatal(f"the index writer stopped: {fatal}")
    conn = open_database(service.db_path, read_only=True)
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


def live_address(text: str) -> str:
    """`--listen` checked before anything starts: a loopback HOST:PORT, else exit code 2."""
    from indexer.live.address import AddressError, loopback

    try:
        loopback(text)
    except AddressError as exc:
        raise ConfigError(str(exc)) from None
    return text


def serve_tcp_or_stop(service: IndexerService, address: str) -> LiveServer:
    """The loopback TCP endpoint of `ocindex run --listen`; the engine stops if it cannot bind."""
    from indexer.live.address import AddressError
    from indexer.live.host import ServiceHost
    from indexer.live.server import serve_tcp

    try:
        return serve_tcp(ServiceHost(service), service.db_path, address)
    except AddressError as exc:
        service.stop()
        raise Fatal(str(exc)) from None
