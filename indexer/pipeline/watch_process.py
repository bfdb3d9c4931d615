"""The storage watcher in a process of its own: watchdog's inotify, emitter and dispatch threads
take their GIL there, and the indexer receives each burst's keys over a pipe. Never parses a file
or decides a status: what is watched and submitted is StorageWatcher's business.

The parent side is WatcherProcess (the same start/stop/get_stats as StorageWatcher); the child
is `python -m indexer.pipeline.watch_process ROOT MESSAGES` (an inherited descriptor). The child
forwards its log records and exits when its stdin closes: when the indexer stops it, or dies. It
ignores SIGINT and SIGTERM, which a terminal or a service manager sends the whole group at once:
the indexer decides, and its stop ends the child. A child that ends otherwise is started again
and a reconcile asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import astuple, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from indexer.collector import collect_less
from indexer.config import child_env
from indexer.kinds import FileKey, from_wire, to_wire
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.watcher import StorageWatcher, WatcherStats

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
"""How long a new child may take to import and start watching before it counts as failed."""
RESTARTS = 5
"""A child that keeps ending is started again this many times, then the reconciler polls alone."""

Message = tuple[str, Any, tuple[Any, ...]]
"""(what, payload, the child's WatcherStats as a tuple) for each thing the child tells."""


class WatcherProcess:
    """Runs a StorageWatcher in a child process; submit and the callbacks run on a relay thread."""

    def __init__(
        self,
        root: Path,
        submit: Callable[[list[FileKey], Trigger], None],
        on_events_lost: Callable[[str], None],
        on_unwatched: Callable[[tuple[str, ...]], None] | None = None,
    ) -> None:
        self.root = root
        self._submit = submit
        self._on_events_lost = on_events_lost
        self._on_unwatched = on_unwatched
        self._child: subprocess.Popen[bytes] | None = None
        self._messages: Connection | None = None
        self._stderr: IO[bytes] | None = None
        self._relay: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stats = WatcherStats()
        self._ended = WatcherStats()
        """What children that ended had counted; a new child counts from zero."""
        self._restarts = 0

    @property
    def pid(self) -> int | None:
        child = self._child
        return None if child is None else child.pid

    def start(self) -> None:
        """Start the child and wait until it watches the root; raise OSError if it cannot."""
        self._stopping.clear()
        self._spawn()
        self._relay = threading.Thread(target=self._relay_loop, name="ocindex-watch-relay")
        self._relay.daemon = True
        self._relay.start()

    def stop(self) -> None:
        """Close the child's stdin: it stops its observer, sends what it held and exits."""
        self._stopping.set()
        _close_input(self._child)
        if self._relay is not None:
            self._relay.join(15)
        self._end_child()

    def get_stats(self) -> WatcherStats:
        with self._lock:
            total = _counted(self._ended, self._stats)
            return replace(total, restarts=total.restarts + self._restarts)

    def _spawn(self) -> None:
        """A new child, its message pipe and its stderr file; returns once it watches."""
        read_end, write_end = os.pipe()
        env = child_env()
        stderr = tempfile.TemporaryFile()  # noqa: SIM115  (kept open with the child; read if it dies)
        command = [sys.executable, "-m", __name__, os.fspath(self.root), str(write_end)]
        try:
            child = subprocess.Popen(
                command,
                pass_fds=(write_end,),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # never onto the dashboard's screen
                stderr=stderr,
                env=env,
            )
        except OSError:
            os.close(read_end)
            stderr.close()
            raise
        finally:
            os.close(write_end)  # the child's end: it holds its own copy
        messages = Connection(read_end, writable=False)
        self._child, self._messages, self._stderr = child, messages, stderr
        while True:  # what it tells while it starts (a refused folder, its log) is handed on
            if not messages.poll(START_TIMEOUT_S):
                self._end_child()
                raise OSError(f"the watcher process did not start within {START_TIMEOUT_S:.0f} s")
            try:
                message = messages.recv()
            except (EOFError, OSError) as exc:
                why = self._end_child()
                raise OSError(f"the watcher process ended at start: {why}") from exc
            if message[0] == "ready":
                return
            self._handle(message)

    def _relay_loop(self) -> None:
        while True:
            self._relay_messages()
            if self._stopping.is_set():
                return
            why = self._end_child()
            with self._lock:
                self._restarts += 1
                restarts = self._restarts
            if restarts > RESTARTS:
                log.error(
                    "watcher: its process ended %d times (%s); changes are now found by the "
                    "reconciler's scans only",
                    restarts,
                    why,
                )
                self._on_events_lost("watcher process gone")
                return
            log.warning("watcher: its process ended (%s); starting another and reconciling", why)
            try:
                self._spawn()
            except OSError as exc:
                log.error("watcher: cannot start its process again: %s", exc)
                self._on_events_lost("watcher process gone")
                return
            if self._stopping.is_set():  # stop() came while the new child started
                self._end_child()
                return
            self._on_events_lost("watcher process restarted")

    def _relay_messages(self) -> None:
        """Hand on what the child says until its pipe ends."""
        messages = self._messages
        assert messages is not None
        while True:
            try:
                message = messages.recv()
            except (EOFError, OSError):
                return
            try:
                self._handle(message)
            except Exception:  # a bug on this side: the relay goes on, the reconciler catches up
                log.exception("watcher: handing on %r failed", message[0])
                self._on_events_lost("a watcher message was not handed on")

    def _handle(self, message: Message) -> None:
        what, payload, stats = message
        with self._lock:
            self._stats = WatcherStats(*stats)
        if what == "keys":
            keys = [from_wire(wire) for wire in payload]
            self._submit(keys, Trigger.WATCHER)
        elif what == "lost":
            self._on_events_lost(payload)
        elif what == "unwatched" and self._on_unwatched is not None:
            self._on_unwatched(tuple(payload))
        elif what == "log":
            level, name, text = payload
            logging.getLogger(name).log(level, "%s", text)

    def _end_child(self) -> str:
        """Reap the child (killed if it will not end) and say how it ended."""
        child, messages, stderr = self._child, self._messages, self._stderr
        self._child = self._messages = self._stderr = None
        if messages is not None:
            messages.close()
        why = "never started"
        if child is not None:
            _close_input(child)
            try:
                code = child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
            why = f"exit {code}"
        if stderr is not None:
            stderr.seek(0)
            tail = stderr.read()[-2000:].decode(errors="replace").strip()
            stderr.close()
            if tail:
                why += f": {tail.splitlines()[-1]}"
        with self._lock:
            self._ended, self._stats = _counted(self._ended, self._stats), WatcherStats()
        return why


def _counted(ended: WatcherStats, now: WatcherStats) -> WatcherStats:
    """The counts of the children that ended plus the running one's; its unwatched folders."""
    return WatcherStats(
        events=ended.events + now.events,
        overflows=ended.overflows + now.overflows,
        restarts=ended.restarts + now.restarts,
        refused_watches=ended.refused_watches + now.refused_watches,
        unwatched=now.unwatched,
    )


def _close_input(child: subprocess.Popen[bytes] | None) -> None:
    """Close a child's stdin: it exits when it sees that (harmless when it is gone already)."""
    if child is not None and child.stdin is not None:
        with contextlib.suppress(OSError):
            child.stdin.close()


class _Forward(logging.Handler):
    """The child's log records, sent to the parent, which logs them as its own."""

    def __init__(self, send: Callable[[str, Any], None]) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        self._send("log", (record.levelno, record.name, record.getMessage()))


def main(argv: list[str]) -> int:
    """The child: watch ROOT and tell the parent on descriptor MESSAGES until stdin closes."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # the parent's to handle: its stop ends us
        signal.signal(signum, signal.SIG_IGN)
    collect_less()
    root, messages = Path(argv[0]), Connection(int(argv[1]), readable=False)
    lock = threading.Lock()
    watcher: StorageWatcher | None = None

    def send(what: str, payload: Any) -> None:
        stats = watcher.get_stats() if watcher is not None else WatcherStats()
        # OSError: the parent is gone; stdin closes next and this process ends.
        with lock, contextlib.suppress(OSError):
            messages.send((what, payload, astuple(stats)))

    def submit(keys: list[FileKey], trigger: Trigger) -> None:
        send("keys", [to_wire(k) for k in keys])

    logging.captureWarnings(True)
    logging.getLogger().addHandler(_Forward(send))
    logging.getLogger().setLevel(logging.INFO)
    watcher = StorageWatcher(
        root, submit, lambda why: send("lost", why), on_unwatched=lambda u: send("unwatched", u)
    )
    watcher.start()
    send("ready", None)
    sys.stdin.buffer.read()  # until the parent closes it, or dies
    watcher.stop()  # what its last events held is sent before the pipe closes
    send("stopped", None)
    messages.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
