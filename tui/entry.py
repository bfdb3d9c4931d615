"""The dashboard process: open the engine, run the app with log lines held off the screen, then
stop the engine within a deadline. Never draws: what the user sees is tui/app.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from indexer.config import ConfigError, default_db_path
from indexer.snapshot import IndexerFacade
from indexer.storage import resolve_storage_root
from indexer.store.database import DatabaseError
from tui import format as fmt
from tui.app import OcindexApp

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0
HELD_LOG_LINES = 20
"""Warnings logged during the session that are shown once the dashboard has closed."""


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


class _HeldLogs(logging.Handler):
    """Keeps the last `keep` WARNING+ records while the dashboard owns the terminal."""

    def __init__(self, keep: int) -> None:
        super().__init__(logging.WARNING)
        self.records: deque[logging.LogRecord] = deque(maxlen=keep)
        self.total = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.total += 1
        self.records.append(record)


@contextmanager
def logs_held_off_the_terminal(keep: int = HELD_LOG_LINES) -> Iterator[None]:
    """While the dashboard draws, log lines must not be written over it: detach the root
    handlers that write to the terminal, keep the last warnings, and replay them afterwards."""
    root = logging.getLogger()
    terminal = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    detached = [
        h
        for h in root.handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and id(h.stream) in terminal
    ]
    held = _HeldLogs(keep)
    for handler in detached:
        root.removeHandler(handler)
    root.addHandler(held)
    try:
        yield
    finally:
        root.removeHandler(held)
        for handler in detached:
            root.addHandler(handler)
        if held.total:
            outputs: list[logging.Handler | None] = [*detached] or [logging.lastResort]
            hidden = held.total - len(held.records)
            if hidden:
                print(f"ocindex: {hidden} earlier log lines were not shown", file=sys.stderr)
            for record in held.records:
                for output in outputs:
                    if output is not None and record.levelno >= output.level:
                        output.handle(record)


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


def run_dashboard(args: argparse.Namespace) -> int:
    """Open the engine, run the dashboard until q, stop the engine; the exit code."""
    try:
        storage_root, _source = resolve_storage_root(args.storage)
        demo = bool(args.demo) or (args.storage is None and not storage_root.exists())
        db_path = None if demo else (args.db or default_db_path())

        from indexer.service import open_service

        service = open_service(
            storage_root=None if demo else storage_root,
            db_path=db_path,
            indexer=args.indexer,
            demo=demo,
            opencode_db=getattr(args, "opencode_db", None),
        )
    except (DatabaseError, ConfigError, OSError, ValueError) as exc:
        return _error(fmt.one_line(str(exc)) or type(exc).__name__)

    loop = asyncio.new_event_loop()
    try:
        # An own loop: asyncio.run() would wait for a worker thread still inside the engine.
        app = OcindexApp(service)
        with logs_held_off_the_terminal(), quitting_on_hangup(app, loop):
            app.run(loop=loop)
    finally:
        stopped = stop_service(service, STOP_TIMEOUT_S)
        loop.close()
    if not stopped:
        _error(f"the indexer did not stop within {STOP_TIMEOUT_S:.0f}s; exiting anyway")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)
    return 0
