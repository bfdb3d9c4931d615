"""Walks a big storage tree on more than one core: threads take folders from one shared stack,
each lists its folder (indexer.listing) and puts the subfolders found back. Yields the same
stamps as `indexer.scan.walk_columns` (in another order). Never parses a file.

A million files cost a million lstat calls, ~3 µs each on one core even in C: the walk is most
of a reconcile. The C lister lets the GIL go for a whole folder, so threads share the walk
with no process to start and nothing to send (1M files: 1.5–1.7 s on two threads against
2.2–2.3 s with helper processes, docs/benchmarks.md). The lister in Python holds the GIL
between its lstat calls, and threads would only queue for it: without the C library the walk
stays on one thread.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from indexer.listing import Folder, native_listing, new_lister
from indexer.scan import walk_columns

log = logging.getLogger(__name__)


OnFiles = tuple[int, Callable[[], object]]
"""A count of files and what to call, once, when a walk has listed that many."""


def walk_parallel(
    root: Path,
    links: bool = False,
    chunk_rows: int = 50_000,
    threads: int = 2,
    on_files: OnFiles | None = None,
) -> Iterator[pa.RecordBatch]:
    """`walk_columns(root, links, chunk_rows)` on `threads` threads (one without the C lister).
    `on_files` is called on a walk thread as the count is reached (on two threads or more)."""
    if threads < 2 or not native_listing():
        yield from walk_columns(root, links, chunk_rows)
        return
    walk = _SharedWalk(os.fspath(root), links, chunk_rows, on_files)
    workers = [
        threading.Thread(target=walk.work, name=f"ocindex-walk-{i}", daemon=True)
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    try:
        yield from walk.chunks(threads)
    finally:
        walk.stop()  # a walk left before its end: the threads end at their next folder
        for worker in workers:
            worker.join()


_DONE = None


class _SharedWalk:
    """The stack of folders to list, shared by the threads, and the chunks they list."""

    def __init__(self, root: str, links: bool, chunk_rows: int, on_files: OnFiles | None) -> None:
        self._links, self._chunk_rows = links, chunk_rows
        self._on_files = on_files
        self._files = 0
        self._stack: list[Folder] = [(root, "")]
        self._listing = 0
        """Folders taken and not yet listed: their subfolders may still come."""
        self._changed = threading.Condition()
        self._stopped = False
        self._out: queue.SimpleQueue[list[pa.RecordBatch] | BaseException | None] = (
            queue.SimpleQueue()
        )

    def work(self) -> None:
        lister = new_lister(self._links)
        try:
            while (folder := self._next()) is not None:
                found: list[Folder] = []
                before = lister.rows
                try:
                    lister.list_folder(*folder, found)
                finally:
                    self._listed(found, lister.rows - before)
                if lister.rows >= self._chunk_rows:
                    self._out.put(lister.take())
            self._out.put(lister.take())
        except BaseException as e:  # the caller raises it: no thread ends in silence
            self.stop()
            self._out.put(e)
        finally:
            self._out.put(_DONE)

    def _next(self) -> Folder | None:
        """A folder to list; None once every folder is listed (or the walk is stopped)."""
        with self._changed:
            while not self._stack and self._listing and not self._stopped:
                self._changed.wait()
            if not self._stack or self._stopped:
                self._changed.notify_all()
                return None
            self._listing += 1
            return self._stack.pop()

    def _listed(self, found: list[Folder], files: int) -> None:
        call = None
        with self._changed:
            self._stack.extend(found)
            self._listing -= 1
            if found or not self._listing:
                self._changed.notify_all()
            self._files += files
            if self._on_files is not None and self._files >= self._on_files[0]:
                call, self._on_files = self._on_files[1], None
        if call is not None:
            try:
                call()
            except Exception:  # the walk goes on: the call was only a head start
                log.exception("a walk's call on its count of files failed")

    def chunks(self, threads: int) -> Iterator[pa.RecordBatch]:
        ended = 0
        while ended < threads:
            item = self._out.get()
            if item is _DONE:
                ended += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield from item

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
