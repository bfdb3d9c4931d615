"""Turns watchdog events under the storage root into keys for the accumulator, and notices when
events were lost (inotify overflow, dead observer). Never parses a file or decides a status.

watchdog only logs an overflow, so a logging handler on its inotify loggers reports it; a health
thread restarts an observer that died. Either asks the reconciler for an immediate scan.

On Linux the watcher subscribes only to what can change an outcome: a file closed after writing
(not each write, which raises one modify event per write() call), created (only a link or a file
that already has bytes is submitted: a regular file's writer closes it), moved and deleted, and
folders created, moved and deleted. Elsewhere it falls back to modify events.

watchdog also passes over a folder it cannot watch (the inotify limit): on Linux the observer's
inotify instance is one that notices each refusal, logs it once with the limit and the fix,
counts it, and hands the folder to `on_unwatched` (the reconciler then polls it). A root that
cannot be watched at all leaves the watcher in polling mode; a new observer is tried after a
minute, less often while the limit refuses it again, at once when the limit changes.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from watchdog import events
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from indexer.kinds import FileKey, classify
from indexer.listing import stored_path
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.inotify_watches import guard_watch_adds, watch_limit
from indexer.scan import list_files
from indexer.storage import relative_path

log = logging.getLogger(__name__)

EVENT_TYPES: list[type[events.FileSystemEvent]] = [
    events.FileCreatedEvent,
    events.FileClosedEvent,
    events.FileModifiedEvent,
    events.FileMovedEvent,
    events.FileDeletedEvent,
    events.DirCreatedEvent,
    events.DirMovedEvent,
    events.DirDeletedEvent,
]
"""Where no close-after-write event exists (not inotify): every write is seen as a modify."""
CLOSE_EVENT_TYPES: list[type[events.FileSystemEvent]] = [
    t for t in EVENT_TYPES if t is not events.FileModifiedEvent
]
"""inotify: a write is seen once, when its writer closes the file (IN_CLOSE_WRITE)."""
_WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")
REWATCH_AFTER_S = 60.0
"""While a folder or the root is unwatched, a new observer is tried this often, or
REWATCH_COST_SHARE times as long as the last one took to start if longer (250,000 folders take
seconds to watch); past the limit, twice as long after each try refused again, up to
REWATCH_MAX_S, and at once when the limit changes."""
REWATCH_COST_SHARE = 20
REWATCH_MAX_S = 1800.0
HOLD_KEYS = 1000
"""While more events wait in the observer's queue, up to this many keys are held and submitted
at once (one lock and one wake-up of the sealer for a burst, not one per event)."""


@dataclass(frozen=True, slots=True)
class WatcherStats:
    events: int = 0
    overflows: int = 0
    restarts: int = 0
    """Observers restarted after they died."""
    refused_watches: int = 0
    """Folders the kernel refused to watch (the inotify limit); the reconciler polls them."""
    unwatched: tuple[str, ...] = ()
    """The folders (stored paths, "" for the root) not watched now."""


class _OverflowSpotter(logging.Handler):
    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._on_overflow()


def new_observer() -> tuple[BaseObserver, bool]:
    """A new observer for this system, and whether it reports close-after-write (inotify).
    On Linux, watchdog's inotify with each event handled on its reading thread
    (pipeline.inotify_inline) where the installed watchdog allows it; else watchdog's own."""
    if sys.platform.startswith("linux"):
        try:
            from indexer.pipeline import inotify_inline
        except ImportError:  # another watchdog line: its own observer
            return watchdog_observer()
        if inotify_inline.available():
            return inotify_inline.InlineObserver(), True  # type: ignore[return-value]
    return watchdog_observer()


def watchdog_observer() -> tuple[BaseObserver, bool]:
    """watchdog's own observer for this system, and whether it reports close-after-write."""
    if sys.platform.startswith("linux") and getattr(Observer, "__name__", "") == "InotifyObserver":
        from watchdog.observers.inotify import InotifyObserver

        # Full events: a file moved in from outside the root is a move with no source, so a
        # created event always names something made here (open, link, symlink).
        return InotifyObserver(generate_full_events=True), True
    return Observer(), False


def written_later(path: str) -> bool:
    """True for a regular file just created, with one link and no bytes yet: the close of its
    writer raises an event of its own. A link, or a file already written (made elsewhere and
    linked in, or written before this look), is not: only its creation tells of it."""
    try:
        st = os.lstat(path)
    except OSError:
        return True  # gone already: its delete or move raises an event of its own
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size == 0


class StorageWatcher(events.FileSystemEventHandler):
    """Runs a recursive watchdog observer on the root; events call submit() on its threads."""

    def __init__(
        self,
        root: Path,
        submit: Callable[[list[FileKey], Trigger], None],
        on_events_lost: Callable[[str], None],
        health_interval_s: float = 1.0,
        on_unwatched: Callable[[tuple[str, ...]], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.root = root
        self._submit = submit
        self._on_events_lost = on_events_lost
        self._health_interval_s = health_interval_s
        self._observer: BaseObserver | None = None
        self._closes = False
        """The observer reports close-after-write: creations and modifications need no event."""
        self._events = 0  # counted on the observer's one dispatch thread
        self._held: dict[str, FileKey] = {}
        """Keys of events handled while more events waited, by stored path (a burst's create,
        close and folder listing of one file hand on one key); the dispatch thread's own."""
        self._stop = threading.Event()
        self._health: threading.Thread | None = None
        self._spotter = _OverflowSpotter(self._overflowed)
        self._lock = threading.Lock()
        self._stats = WatcherStats()
        self._on_unwatched = on_unwatched
        self._monotonic = monotonic
        self._unwatched: set[str] = set()
        self._unwatched_changed = False
        """Folders were refused since the reconciler was last told (the health thread tells it:
        refusals come by the thousand once the limit is reached)."""
        self._stats_stale = False
        """The stats' tuple of unwatched folders is older than the set (made when asked)."""
        self._unwatched_said = 0
        self._telling = threading.Lock()
        """One telling at a time: the last one told hands on the newest set."""
        self._told: set[str] = set()
        self._rewatch_at: float | None = None
        self._observer_start_s = 0.0
        self._refused_again = 0  # new observers in a row refused at the limit
        self._limit_refused: str | None = None  # the limit then; None if no folder is refused

    def start(self) -> None:
        self._stop.clear()
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(self._spotter)
        try:
            self._observer = self._new_observer()
        except OSError as exc:
            self._observer = None
            self._refused(os.fsencode(self.root), exc)
        self._health = threading.Thread(
            target=self._watch_health, name="ocindex-watch-health", daemon=True
        )
        self._health.start()

    def stop(self) -> None:
        self._stop.set()
        if self._health is not None:
            self._health.join(5)
        observer = self._observer
        if observer is not None:
            observer.stop()
            observer.join(5)
        self._flush_held()  # its dispatch thread has ended: nothing it held is lost
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self._spotter)

    def get_stats(self) -> WatcherStats:
        with self._lock:
            if self._stats_stale:
                self._stats = replace(self._stats, unwatched=tuple(sorted(self._unwatched)))
                self._stats_stale = False
            return replace(self._stats, events=self._events)

    def _new_observer(self) -> BaseObserver:
        started = self._monotonic()
        try:
            return self._start_observer()
        finally:
            self._observer_start_s = self._monotonic() - started

    def _start_observer(self) -> BaseObserver:
        observer, self._closes = new_observer()
        guard_watch_adds(observer, self._refused)
        wanted = CLOSE_EVENT_TYPES if self._closes else EVENT_TYPES
        try:
            observer.schedule(self, os.fspath(self.root), recursive=True, event_filter=wanted)
            observer.daemon = True
            observer.start()
        except OSError:
            try:
                observer.on_thread_stop()  # its inotify instance and thread, never started
            except Exception:  # already half torn down: nothing more to release
                log.debug("watcher: stopping an observer that never started", exc_info=True)
            raise
        return observer

    def _refused(self, path: bytes, exc: OSError) -> None:
        """The kernel will not watch this folder: say so once, count it, have it polled."""
        rel = relative_path(self.root, os.fsdecode(path))
        folder = "" if rel is None else stored_path(rel)
        with self._lock:
            if folder in self._unwatched:
                return
            self._unwatched.add(folder)
            first = len(self._unwatched) == 1
            self._unwatched_changed = self._stats_stale = True
            self._stats = replace(self._stats, refused_watches=self._stats.refused_watches + 1)
            rewatch_s = max(REWATCH_AFTER_S, REWATCH_COST_SHARE * self._observer_start_s)
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                rewatch_s = max(rewatch_s, min(REWATCH_MAX_S, rewatch_s * 2**self._refused_again))
                self._limit_refused = self._limit_refused or watch_limit()
            self._rewatch_at = self._monotonic() + rewatch_s
            told = folder in self._told
            self._told.add(folder)
        if not folder:
            self._tell_unwatched()  # the root: no observer runs, polling starts now
        if told or not first:  # said already, or the count says it (_tell_unwatched)
            return
        where = f"the folder {folder}" if folder else f"the storage root {self.root}"
        if exc.errno == errno.ENOENT:  # deleted, not refused: no limit to raise
            log.warning(
                "watcher: cannot watch %s: it does not exist; polling until it is back", where
            )
            return
        log.warning(
            "watcher: cannot watch %s: %s (fs.inotify.max_user_watches = %s); changes there are "
            "found by polling until watches are available. Raise the limit: sudo sysctl "
            "fs.inotify.max_user_watches=524288",
            where,
            exc.strerror or exc,
            watch_limit(),
        )

    def _tell_unwatched(self) -> None:
        """Hand the unwatched folders to the stats and the reconciler, if they changed; once
        their count is steady, say it when more than one folder is refused (the first is named
        by _refused)."""
        with self._telling:
            with self._lock:
                changed, self._unwatched_changed = self._unwatched_changed, False
                if changed:
                    unwatched = tuple(sorted(self._unwatched))
                    self._stats = replace(self._stats, unwatched=unwatched)
                    self._stats_stale = False
                count = len(self._unwatched)
                say = not changed and count > 1 and count != self._unwatched_said
                if say:
                    self._unwatched_said = count
            if changed and self._on_unwatched is not None:
                self._on_unwatched(unwatched)
        if say:
            log.warning(
                "watcher: %d folders cannot be watched (fs.inotify.max_user_watches = %s); "
                "changes there are found by polling. Raise the limit: sudo sysctl "
                "fs.inotify.max_user_watches=524288",
                count,
                watch_limit(),
            )

    def _watch_health(self) -> None:
        while not self._stop.wait(self._health_interval_s):
            self._tell_unwatched()
            limit = self._limit_refused  # changed (raised): try now
            rewatch = self._rewatch_at is not None and (
                self._monotonic() >= self._rewatch_at
                or (limit is not None and limit != watch_limit())
            )
            observer = self._observer
            dead = observer is not None and not observer.is_alive()
            if dead:
                log.warning("watcher: the observer thread died; restarting it and reconciling")
            if dead or rewatch:
                self._renew_observer()

    def _renew_observer(self) -> None:
        """Start a new observer in place of a dead one, or to try again for unwatched folders."""
        with self._lock:
            before, self._unwatched, self._rewatch_at = set(self._unwatched), set(), None
            self._unwatched_changed = self._stats_stale = True
            self._refused_again += self._limit_refused is not None
            self._limit_refused = None
        old, self._observer = self._observer, None
        if old is not None:  # first: its watches count against the same limit
            old.stop()
            old.join(5)
            self._flush_held()
        try:
            self._observer = self._new_observer()
        except OSError as exc:
            log.debug("watcher: cannot start an observer: %s", exc)
            self._refused(os.fsencode(self.root), exc)
            return
        with self._lock:
            self._stats = replace(self._stats, restarts=self._stats.restarts + 1)
            still = bool(self._unwatched)
        self._tell_unwatched()
        if not still:
            self._refused_again = 0
        if before and not still:
            self._told.clear()
            self._unwatched_said = 0  # the same count refused again later is news
            log.warning("watcher: every folder is watched again")
        self._on_events_lost("observer restarted")

    def _overflowed(self) -> None:
        with self._lock:
            self._stats = replace(self._stats, overflows=self._stats.overflows + 1)
        self._on_events_lost("inotify queue overflow")

    def on_any_event(self, event: events.FileSystemEvent) -> None:
        self._events += 1
        try:
            self._handle(event)
        finally:
            observer = self._observer
            drained = observer is None or observer.event_queue.empty()
            if drained or len(self._held) >= HOLD_KEYS:
                self._flush_held()

    def _handle(self, event: events.FileSystemEvent) -> None:
        paths = [os.fsdecode(event.src_path)]
        if isinstance(event, events.FileMovedEvent | events.DirMovedEvent):
            paths.append(os.fsdecode(event.dest_path))  # a move is a delete plus a create
        if isinstance(event, events.DirCreatedEvent | events.DirMovedEvent):
            if not paths[-1]:  # moved out of the root: what it held is gone
                self._on_events_lost("folder moved away")
                return
            # Files written before the new folder's watch existed raise no event: list them now.
            folder = Path(paths[-1])
            prefix = relative_path(self.root, folder)
            if prefix is not None:
                rels = list(list_files(folder, links=True))
                self._hold_paths(f"{prefix}/{rel}" for rel in rels)
                # Moved within the root: its files' old paths are gone.
                old = relative_path(self.root, paths[0]) if len(paths) == 2 and paths[0] else None
                if old is not None:
                    self._hold_paths(f"{old}/{rel}" for rel in rels)
        elif isinstance(event, events.DirDeletedEvent):
            self._on_events_lost("folder deleted")
            if os.path.normpath(paths[0]) == os.path.normpath(self.root):
                # The watches went with the root: a root made again would never be watched.
                # The health thread starts a new observer, or polls until the root is back.
                with self._lock:
                    self._rewatch_at = self._monotonic()
        elif self._closes and type(event) is events.FileCreatedEvent and written_later(paths[0]):
            return
        else:
            self._hold_paths(relative_path(self.root, path) for path in paths if path)

    def _hold_paths(self, rels: Iterable[str | None]) -> None:
        """Hold the keys of paths as file_index stores them (a name that is not UTF-8, escaped)
        until the observer's queue is drained: one submission for a burst of events."""
        held = self._held
        for rel in rels:
            if rel and (stored := stored_path(rel)) not in held:
                key = classify(stored)
                if key is not None:
                    held[stored] = key

    def _flush_held(self) -> None:
        """Submit what the events held. On the dispatch thread, or once it has ended."""
        if self._held:
            held, self._held = self._held, {}
            self._submit_keys(list(held.values()))

    def _submit_keys(self, keys: list[FileKey]) -> None:
        if keys:
            self._submit(keys, Trigger.WATCHER)
