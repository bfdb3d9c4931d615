"""Walks a storage tree on one or more threads with the C library of indexer/native: its stack
of folders to list is shared in C (listing.NativeWalk), and each thread lists folder after
folder into buffers of its own with the GIL let go, handing Arrow chunks back here. Yields the
same stamps as `indexer.scan.walk_columns` (in another order). Never parses a file.

A million files cost a million lstat calls, ~1.5 µs each in this VM's kernel even in C: the walk
is most of a reconcile. The 20,106-file bench tree: 40-51 ms on two threads, 74-82 ms on one
(a C program alone), against 101-137 ms when each folder cost a call from Python (two threads
then queued for the GIL and gained nothing on one; docs/benchmarks.md). Without the C library
the walk is `walk_columns`, in Python, on the calling thread: threads would only queue for the
GIL between its lstat calls.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from indexer.listing import NativeLister, NativeWalk, native_listing
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
    stamps: bool = True,
) -> Iterator[pa.RecordBatch]:
    """`walk_columns(root, links, chunk_rows)` on `threads` threads (on the calling thread
    without the C library). `on_files` is called on a walk thread as the count is reached
    (with the C library). stamps=False: the caller wants only the paths, and the C library
    leaves the stamps null, with no lstat where a folder's listing says what a name is (in a
    first catch-up's walk, 40% of the kernel's time: its reads stamp every file anyway)."""
    if not native_listing():
        yield from walk_columns(root, links, chunk_rows)
        return
    walk = _SharedWalk(os.fspath(root), links, chunk_rows, on_files, stamps)
    workers = [
        threading.Thread(target=walk.work, name=f"ocindex-walk-{i}", daemon=True)
        for i in range(max(1, threads))
    ]
    try:
        for worker in workers:
            worker.start()
        yield from walk.chunks(len(workers))
    finally:
        walk.stop()  # a walk left before its end: the threads end at their next folder
        for worker in workers:
            if worker.ident is not None:
                worker.join()
        walk.close()


_DONE = None


ON_FILES_STEP = 1_000
"""While a walk's count of files is awaited (on_files), each thread reports after this many."""


class _SharedWalk:
    """The walk shared by the threads (in C), and the chunks they list."""

    def __init__(
        self, root: str, links: bool, chunk_rows: int, on_files: OnFiles | None, stamps: bool
    ) -> None:
        self._walk = NativeWalk(root, links, stamps)
        self._links, self._chunk_rows, self._stamps = links, chunk_rows, stamps
        self._on_files = on_files
        self._files = 0
        self._counting = threading.Lock()
        self._out: queue.SimpleQueue[list[pa.RecordBatch] | BaseException | None] = (
            queue.SimpleQueue()
        )

    def work(self) -> None:
        lister = NativeLister(self._links, stamps=self._stamps)
        counted = 0
        try:
            while True:
                step = self._chunk_rows if self._on_files is None else ON_FILES_STEP
                more = lister.list_walk(self._walk, min(self._chunk_rows, counted + step))
                if self._on_files is not None:
                    self._count(lister.rows - counted)
                counted = lister.rows
                if not more:
                    break
                if lister.rows >= self._chunk_rows:
                    self._out.put(lister.take())
                    counted = 0
            self._out.put(lister.take())
        except BaseException as e:  # the caller raises it: no thread ends in silence
            self.stop()
            self._out.put(e)
        finally:
            self._out.put(_DONE)

    def _count(self, files: int) -> None:
        call = None
        with self._counting:
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
        self._walk.stop()

    def close(self) -> None:
        self._walk.close()
