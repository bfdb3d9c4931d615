"""The dashboard process: open the engine (or attach to the ocindex process that holds the
database), run the app with log lines held off the screen, then stop the engine within a
deadline. Never draws: what the user sees is tui/app.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.cli.progress import Progress
from indexer.config import ConfigError, default_db_path, resolve_storage_root
from indexer.live.remote import RemoteService, attach
from indexer.snapshot import IndexerFacade
from indexer.store.database import DatabaseError
from tui import format as fmt
from tui.app import OcindexApp
from tui.attach import AttachedApp
from tui.logbook import LogBook

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0


def _error(message: str) -> int:
    print(f"ocindex: error: {message}", file=sys.stderr)
    return 1


def stop_service(facade: IndexerFacade, timeout_s: float) -> bool:
    """Call facade.stop() in a helper thread; False when it did not return within timeout_s."""
    failure: list[BaseException] = []

    def stop() -> None:
        try:
            facade.stop()
        except BaseException as exc:  # reported by the caller, never raised into the shell
            failure.append(exc)

    thread = threading.Thread(target=stop, name="ocindex-stop", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return False
    if failure:
        print(f"ocindex: warning: stopping the indexer: {failure[0]}", file=sys.stderr)
    return True


def dashboard_log_path() -> Path:
    """Where the warnings of a dashboard session are written (replaced by the next session)."""
    return default_db_path().parent / "dashboard.log"


@contextmanager
def logs_held_off_the_terminal(book: LogBook) -> Iterator[LogBook]:
    """While the dashboard draws, log lines must not be written over it: the root handlers that
    write to the terminal are detached and every line goes to `book` (the log screen reads it,
    warnings also reach its file). Afterwards the terminal gets one line: how many warnings, and
    the file that holds them."""
    root = logging.getLogger()
    terminal = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    detached = [
        h
        for h in root.handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and id(h.stream) in terminal
    ]
    for handler in detached:
        root.removeHandler(handler)
    level = root.level
    if not root.handlers:  # nobody else listens: the log screen shows the INFO lines too
        root.setLevel(min(level or logging.WARNING, logging.INFO))
    root.addHandler(book)
    try:
        yield book
    finally:
        root.removeHandler(book)
        root.setLevel(level)
        book.close()
        for handler in detached:
            root.addHandler(handler)
        summary = book.summary()
        if summary:
            print(summary, file=sys.stderr)


HANGUP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGHUP", "SIGTERM") if hasattr(signal, name)
)


@contextmanager
def quitting_on_hangup(app: OcindexApp, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """A closed terminal (SIGHUP) or a SIGTERM ends the dashboard as `q` does, so the engine
    stops and a demo's temporary tree is removed; the previous handlers come back after."""

    def quit_app(signum: int, _frame: object) -> None:
        log.info("signal %d: closing the dashboard", signum)
        loop.call_soon_threadsafe(app.exit)

    previous = {sig: signal.signal(sig, quit_app) for sig in HANGUP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def open_engine(args: argparse.Namespace) -> IndexerFacade:
    """The engine of this session: a client of the ocindex process serving the database when
    one answers (attach mode), else an engine started here (or the demo's)."""
    db_given = None if args.demo else (args.db or default_db_path())
    remote = None if db_given is None else attach(db_given)
    if remote is not None:
        return remote
    storage_root, _source = resolve_storage_root(args.storage)
    demo = bool(args.demo) or (args.storage is None and not storage_root.exists())
    db_path = None if demo else db_given

    from indexer.service import open_service

    try:
        service = open_service(
            storage_root=None if demo else storage_root,
            db_path=db_path,
            indexer=args.indexer,
            demo=demo,
            opencode_db=getattr(args, "opencode_db", None),
            start=False,
        )
        if not service.is_running:  # a first catch-up runs inside start(): show it going
            progress = Progress(enabled=sys.stderr.isatty())
            with progress.meanwhile(service.indexer_stats, time.monotonic()):
                service.start()
            progress.done()
        return service
    except DatabaseError:
        # The holder may be an ocindex that started its endpoint after the first look.
        remote = None if db_path is None else attach(db_path)
        if remote is None:
            raise
        return remote


def attached_notes(remote: RemoteService, args: argparse.Namespace) -> None:
    """Log what attach mode means for this session (the log screen shows it)."""
    link = remote.link()
    log.info("%s; its own log stays with it", link.explained)
    ignored = [
        f"--{name}" for name in ("storage", "indexer", "opencode_db") if getattr(args, name, None)
    ]
    if ignored:
        log.warning(
            "%s ignored: %s (pid %d) already indexes %s with its own settings",
            ", ".join(n.replace("_", "-") for n in ignored),
            link.label,
            link.pid,
            link.db,
        )


def run_dashboard(args: argparse.Namespace) -> int:
    """Open the engine, run the dashboard until q, stop the engine; the exit code."""
    try:
        service = open_engine(args)
    except (DatabaseError, ConfigError, OSError, ValueError) as exc:
        return _error(fmt.one_line(str(exc)) or type(exc).__name__)

    loop = asyncio.new_event_loop()
    try:
        # An own loop: asyncio.run() would wait for a worker thread still inside the engine.
        book = LogBook(path=dashboard_log_path())
        app = (
            AttachedApp(service, logbook=book)
            if isinstance(service, RemoteService)
            else OcindexApp(service, logbook=book)
        )
        with logs_held_off_the_terminal(book), quitting_on_hangup(app, loop):
            if isinstance(service, RemoteService):
                attached_notes(service, args)
            app.run(loop=loop)
    finally:
        stopped = stop_service(service, STOP_TIMEOUT_S)
        loop.close()
    if isinstance(service, RemoteService):
        link = service.link()
        still = "keeps indexing" if link.connected else "had stopped answering on"
        print(f"ocindex: {link.label} (pid {link.pid}) {still} {link.db}", file=sys.stderr)
    if not stopped:
        _error(f"the indexer did not stop within {STOP_TIMEOUT_S:.0f}s; exiting anyway")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)
    return 0
