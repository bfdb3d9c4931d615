"""Turns watchdog events under the storage root into keys for the accumulator, and notices when
events were lost (inotify overflow, dead observer). Never parses a file or decides a status.

watchdog only logs an overflow, so a logging handler on its inotify loggers reports it; a health
thread restarts an observer that died. Either asks the reconciler for an immediate scan.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from watchdog import events
from watchdog.observers import Observer

from indexer.kinds import FileKey, classify
from indexer.pipeline.accumulator import Trigger
from indexer.scan import list_files, stored_path
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
_WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


@dataclass(frozen=True, slots=True)
class WatcherStats:
    events: int = 0
    overflows: int = 0
    restarts: int = 0
    """Observers restarted after they died."""


class _OverflowSpotter(logging.Handler):
    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._on_overflow()


class StorageWatcher(events.FileSystemEventHandler):
    """Runs a recursive watchdog observer on the root; events call submit() on its threads."""

    def __init__(
        self,
        root: Path,
        submit: Callable[[list[FileKey], Trigger], None],
        on_events_lost: Callable[[str], None],
        health_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.root = root
        self._submit = submit
        self._on_events_lost = on_events_lost
        self._health_interval_s = health_interval_s
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._stop = threading.Event()
        self._health: threading.Thread | None = None
        self._spotter = _OverflowSpotter(self._overflowed)
        self._lock = threading.Lock()
        self._stats = WatcherStats()

    def start(self) -> None:
        self._stop.clear()
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(self._spotter)
        self._observer = self._new_observer()
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
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self._spotter)

    def get_stats(self) -> WatcherStats:
        return self._stats

    def _new_observer(self) -> Observer:  # type: ignore[valid-type]
        observer = Observer()
        observer.schedule(self, os.fspath(self.root), recursive=True, event_filter=EVENT_TYPES)
        observer.daemon = True
        observer.start()
        return observer

    def _watch_health(self) -> None:
        while not self._stop.wait(self._health_interval_s):
            if self._observer is not None and not self._observer.is_alive():
                log.warning("watcher: the observer thread died; restarting it and reconciling")
                try:
                    self._observer = self._new_observer()
                except OSError as exc:
                    log.error("watcher: cannot restart the observer: %s", exc)
                    continue
                with self._lock:
                    self._stats = replace(self._stats, restarts=self._stats.restarts + 1)
                self._on_events_lost("observer restarted")

    def _overflowed(self) -> None:
        with self._lock:
            self._stats = replace(self._stats, overflows=self._stats.overflows + 1)
        self._on_events_lost("inotify queue overflow")

    def on_any_event(self, event: events.FileSystemEvent) -> None:
        with self._lock:
            self._stats = replace(self._stats, events=self._stats.events + 1)
        paths = [os.fsdecode(event.src_path)]
        if isinstance(event, events.FileMovedEvent | events.DirMovedEvent):
            paths.append(os.fsdecode(event.dest_path))  # a move is a delete plus a create
        if isinstance(event, events.DirCreatedEvent | events.DirMovedEvent):
            # Files written before the new folder's watch existed raise no event: list them now.
            folder = Path(paths[-1])
            prefix = relative_path(self.root, folder)
            if prefix is not None:
                self._submit_paths(f"{prefix}/{rel}" for rel in list_files(folder, links=True))
        elif isinstance(event, events.DirDeletedEvent):
            self._on_events_lost("folder deleted")
        else:
            self._submit_paths(relative_path(self.root, path) for path in paths)

    def _submit_paths(self, rels: Iterable[str | None]) -> None:
        """Submit paths as file_index stores them (a name that is not UTF-8, escaped)."""
        stored = (stored_path(rel) for rel in rels if rel)
        self._submit_keys([key for key in map(classify, stored) if key is not None])

    def _submit_keys(self, keys: list[FileKey]) -> None:
        if keys:
            self._submit(keys, Trigger.WATCHER)
