"""Turns watchdog events under the storage root into keys for the accumulator, and notices when
events were lost (inotify overflow, dead observer). Never parses a file or decides a status.

watchdog only logs an overflow, so a logging handler on its inotify loggers reports it; a health
thread restarts an observer that died. Either asks the reconciler for an immediate scan.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from indexer.kinds import FileKey, classify
from indexer.pipeline.accumulator import Trigger
from indexer.scan import list_files
from indexer.storage import relative_path

log = logging.getLogger(__name__)

EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileClosedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]
_WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


@dataclass(frozen=True, slots=True)
class WatcherStats:
    events: int
    overflows: int
    restarts: int
    """Observers restarted after they died."""


class _OverflowSpotter(logging.Handler):
    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._on_overflow()


class StorageWatcher(FileSystemEventHandler):
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
        self.events = 0
        self.overflows = 0
        self.restarts = 0

    # --- lifecycle --------------------------------------------------------------------------

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

    def is_alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

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
                    self.restarts += 1
                self._on_events_lost("observer restarted")

    def _overflowed(self) -> None:
        with self._lock:
            self.overflows += 1
        self._on_events_lost("inotify queue overflow")

    # --- events -----------------------------------------------------------------------------

    def on_any_event(self, event: FileSystemEvent) -> None:
        with self._lock:
            self.events += 1
        paths = [os.fsdecode(event.src_path)]
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            paths.append(os.fsdecode(event.dest_path))  # a move is a delete plus a create
        if isinstance(event, DirCreatedEvent | DirMovedEvent):
            # Files written before the new folder's watch existed raise no event: list them now.
            self._submit_folder(Path(paths[-1]))
            return
        if isinstance(event, DirDeletedEvent):
            self._on_events_lost("folder deleted")
            return
        keys = []
        for abs_path in paths:
            rel = relative_path(self.root, abs_path)
            key = classify(rel) if rel else None
            if key is not None:
                keys.append(key)
        self._submit_keys(keys)

    def _submit_folder(self, folder: Path) -> None:
        prefix = relative_path(self.root, folder)
        if prefix is None:
            return
        keys = []
        for rel in list_files(folder):
            key = classify(f"{prefix}/{rel}")
            if key is not None:
                keys.append(key)
        self._submit_keys(keys)

    def _submit_keys(self, keys: list[FileKey]) -> None:
        if keys:
            self._submit(keys, Trigger.WATCHER)

    def get_stats(self) -> WatcherStats:
        with self._lock:
            return WatcherStats(
                events=self.events,
                overflows=self.overflows,
                restarts=self.restarts,
            )
