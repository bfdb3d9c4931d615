"""watchdog's inotify, with each event handled on the thread that reads it: an observer for
StorageWatcher on Linux that keeps watchdog's inotify instance and its recursive watches (new
folders watched, moved folders followed) but hands the handler its events as they are read.

watchdog's own observer passes every kernel event through a move-pairing queue, an emitter
thread that builds event objects (a folder-modified one for each create, close and delete,
which the filter then drops) and a second queue to a dispatch thread: three threads woken per
event. 5,000 new OpenCode files written into new folders cost the watcher 0.30-0.50 s of CPU
that way and 0.11-0.15 s here, with a third fewer keys (tests/benchmarks/bench_events.py; in
docs/benchmarks.md, "the watcher's inotify, files read in C, workers that start in the
background").

What the handler sees is what watchdog's full-events observer gives for the events it
subscribes to (CLOSE_EVENT_TYPES): file created, closed after writing, deleted and moved (a
move from outside the root has no source, one out of it no destination), folder created,
deleted and moved. The two halves of a rename are paired when they come in one read; a half
left alone at the end of a read is handed on alone, which the watcher treats as a move in or
out (the kernel may queue the halves apart: the outcome is the same, a folder's costs a scan).

Imported on Linux only, and used only with the watchdog line it was written against
(`available()`); elsewhere the watcher takes watchdog's own observer.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from collections.abc import Callable
from typing import Any

from watchdog import events
from watchdog.observers.inotify import InotifyWatchGroup
from watchdog.observers.inotify_c import InotifyConstants as _C
from watchdog.observers.inotify_c import InotifyFD, Mask

MASK = Mask(
    _C.IN_CREATE
    | _C.IN_CLOSE_WRITE
    | _C.IN_DELETE
    | _C.IN_MOVED_FROM
    | _C.IN_MOVED_TO
    | _C.IN_DELETE_SELF
)
"""What the watcher subscribes to on Linux (watcher.CLOSE_EVENT_TYPES), as inotify bits."""
_DIR = _C.IN_ISDIR | _C.IN_DELETE_SELF | _C.IN_MOVE_SELF
_SMALLEST_EVENT = 16
"""Bytes of an inotify event with no name: the kernel's queue holds at most its size over this."""

Handle = Callable[[events.FileSystemEvent], None]


def available() -> bool:
    """Whether the installed watchdog has the inotify layer this observer is built on."""
    needed = ("_add_all_callbacks", "_build_event_source_path", "_move_watches", "on_event")
    return all(hasattr(InotifyWatchGroup, n) for n in needed) and hasattr(InotifyFD, "read_events")


class _Group(InotifyWatchGroup):
    """watchdog's watch group (its watches and their paths), handing events on as they come.

    `handle` and `moved` are set before the inotify instance's thread starts."""

    handle: Handle
    moved: dict[int, tuple[str, bool]]
    """The first half of a rename, by cookie, until the second comes or the read ends."""

    def on_event(self, event: Any) -> None:
        with self._lock:
            if not self._is_active:
                return
            raw = self._build_event_source_path(event)
            if raw is None:
                return
            mask: int = event.mask
            is_dir = bool(mask & _DIR)
            path = os.fsdecode(raw)
            found: events.FileSystemEvent | None = None
            if mask & _C.IN_MOVED_FROM:
                self.moved[event.cookie] = (path, is_dir)
            elif mask & _C.IN_MOVED_TO:
                source = self.moved.pop(event.cookie, None)
                # A folder moved here from outside (or whose first half was handed on
                # already) is watched anew; one moved within keeps its watches, re-pathed.
                if (
                    is_dir
                    and self.is_recursive
                    and (source is None or not self._move_watches(os.fsencode(source[0]), raw))
                ):
                    self._add_all_callbacks(raw)
                moved = events.DirMovedEvent if is_dir else events.FileMovedEvent
                found = moved("" if source is None else source[0], path)
            elif mask & _C.IN_CREATE:
                if is_dir and self.is_recursive:
                    self._add_all_callbacks(raw)  # its files: the watcher lists them itself
                found = (events.DirCreatedEvent if is_dir else events.FileCreatedEvent)(path)
            elif mask & _C.IN_DELETE:
                found = (events.DirDeletedEvent if is_dir else events.FileDeletedEvent)(path)
            elif mask & _C.IN_CLOSE_WRITE and not is_dir:
                found = events.FileClosedEvent(path)
            elif mask & _C.IN_DELETE_SELF and raw == self.path:
                found = events.DirDeletedEvent(path)
        if found is not None:
            self.handle(found)

    def end_of_read(self) -> None:
        """Hand on each rename half whose other half did not come in this read."""
        with self._lock:
            alone, self.moved = self.moved, {}
        for path, is_dir in alone.values():
            self.handle((events.DirMovedEvent if is_dir else events.FileMovedEvent)(path, ""))


class _Reader(InotifyFD):
    """watchdog's inotify instance, ending each read by telling the group; also the observer's
    `event_queue`: empty once the last event of a read is being handled."""

    def __init__(self) -> None:
        super().__init__()
        self.group: _Group | None = None
        self._left = 0

    def run(self) -> None:
        while self.should_keep_running():
            read = self.read_events()
            for i, event in enumerate(read):
                self._left = len(read) - 1 - i
                self.handle_event(event)
            group = self.group
            if group is not None:
                group.end_of_read()

    def empty(self) -> bool:
        return self._left == 0

    def qsize(self) -> int:
        """At most this many events wait: those of the read being handled, and those the
        kernel holds (its bytes over the smallest event's)."""
        buffered = bytearray(4)
        try:
            fcntl.ioctl(self._inotify_fd, termios.FIONREAD, buffered)
        except OSError:
            return self._left
        return self._left + int(struct.unpack("i", buffered)[0]) // _SMALLEST_EVENT


class InlineObserver:
    """What StorageWatcher uses of a watchdog observer (schedule, start, stop, join, is_alive,
    daemon, event_queue, _inotify_fd), one handler and one recursive watch, events handled on
    the inotify instance's own thread."""

    def __init__(self) -> None:
        self._inotify_fd = _Reader()
        self.event_queue = self._inotify_fd
        self._scheduled: tuple[Handle, bytes, bool] | None = None

    @property
    def daemon(self) -> bool:
        return bool(self._inotify_fd.daemon)

    @daemon.setter
    def daemon(self, value: bool) -> None:
        self._inotify_fd.daemon = value

    def schedule(
        self,
        handler: events.FileSystemEventHandler,
        path: str,
        *,
        recursive: bool = False,
        event_filter: object = None,
    ) -> None:
        """The handler and the folder; event_filter is the watcher's, whose events MASK holds."""
        self._scheduled = (handler.dispatch, os.fsencode(path), recursive)

    def start(self) -> None:
        """Watch the scheduled folder (OSError if the kernel will not) and start reading."""
        assert self._scheduled is not None, "schedule() first"
        handle, path, recursive = self._scheduled
        group = _Group(self._inotify_fd, path, event_mask=MASK, is_recursive=recursive)
        group.handle, group.moved = handle, {}
        self._inotify_fd.group = group
        self._inotify_fd.start()

    def stop(self) -> None:
        group = self._inotify_fd.group
        if group is not None:
            group.deactivate()
        self._inotify_fd.stop()

    def join(self, timeout: float | None = None) -> None:
        if self._inotify_fd.ident is not None:
            self._inotify_fd.join(timeout)

    def is_alive(self) -> bool:
        return bool(self._inotify_fd.is_alive())

    def on_thread_stop(self) -> None:
        """Release the inotify instance of an observer that never started."""
        reader = self._inotify_fd
        if reader.ident is None:
            reader._is_reading = False  # no thread to close it: close() releases it itself
        reader.close()
