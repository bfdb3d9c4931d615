"""Walks a big storage tree on more than one core: the calling thread and helper processes each
list and lstat a share of its folders. Yields the same stamps as `indexer.scan.walk_columns`
(in another order). Never parses a file.

A million files cost a million lstat calls, ~3 µs each on one core even in C: the walk is most
of a reconcile. Helpers are plain `python -m indexer.parallel_walk` subprocesses (never a fork
of this threaded process), so the walk in Python, where each lstat hands the GIL over, is
shared as well as the one in C; each sends its chunks as Arrow IPC. A helper sends its chunks with the count
of its folders walked whole; one that cannot start or dies leaves the rest of its folders to
the calling thread, so nothing is lost or listed twice, only speed.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from indexer.config import child_env
from indexer.listing import STAMPS, Folder, Lister, new_lister
from indexer.scan import walk_columns, walk_stack

log = logging.getLogger(__name__)

FOLDERS_PER_PROCESS = 8
"""Folders to share out per process at least, found level by level from the root: enough that
shares of whole subtrees come out even."""


def walk_parallel(
    root: Path, links: bool = False, chunk_rows: int = 50_000, processes: int = 2
) -> Iterator[pa.RecordBatch]:
    """`walk_columns(root, links, chunk_rows)` shared with processes - 1 helper processes."""
    if processes < 2:
        yield from walk_columns(root, links, chunk_rows)
        return
    lister = new_lister(links)
    folders = _first_levels(os.fspath(root), lister, FOLDERS_PER_PROCESS * processes)
    shares = [folders[i::processes] for i in range(processes)]
    helpers: list[_Helper] = []
    try:
        helpers.extend(_Helper(share, links, chunk_rows) for share in shares[1:] if share)
        yield from lister.take()
        for stamps in walk_stack(shares[0], links, chunk_rows):
            yield stamps
            for helper in helpers:  # theirs too as they come: few chunks wait at once
                yield from helper.chunks(block=False)
        for helper in helpers:
            yield from helper.chunks(block=True)
            if helper.left:  # it failed: its folders not walked whole are walked here
                yield from walk_stack(helper.left, links, chunk_rows)
    finally:
        for helper in helpers:
            helper.close()


def _first_levels(root: str, lister: Lister, enough: int) -> list[Folder]:
    """List the tree level by level until a level has `enough` folders (or none is left); return
    that level, the files above it listed by lister."""
    level: list[Folder] = [(root, "")]
    while level and len(level) < enough:
        below: list[Folder] = []
        for folder, prefix in level:
            lister.list_folder(folder, prefix, below)
        level = below
    return level


_END = None


class _Helper:
    """One helper process walking a share of the folders, its chunks read by a thread of ours
    as they come (the pipe never fills)."""

    def __init__(self, folders: list[Folder], links: bool, chunk_rows: int) -> None:
        self.folders = folders
        self.left: list[Folder] = []
        """After the end: the folders it did not walk whole, when it failed."""
        self._walked = 0
        self._ended = self._closing = False
        self._chunks: queue.SimpleQueue[tuple[int, list[pa.RecordBatch]] | None] = (
            queue.SimpleQueue()
        )
        try:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "indexer.parallel_walk"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env(),
            )
        except OSError as e:
            log.warning("walking on one core: a helper process could not start: %s", e)
            self.process = None
            self._chunks.put(_END)
            return
        self._thread = threading.Thread(
            target=self._relay, args=(links, chunk_rows), name="ocindex-walk-relay", daemon=True
        )
        self._thread.start()

    def chunks(self, block: bool) -> Iterator[pa.RecordBatch]:
        """The chunks come so far (block=False) or all of them up to the helper's end."""
        while not self._ended:
            try:
                item = self._chunks.get(block=block)
            except queue.Empty:
                return
            if item is _END:
                self._ended = True
                self.left = self.folders[self._walked :]
                return
            self._walked, batches = item
            yield from batches

    def _relay(self, links: bool, chunk_rows: int) -> None:
        process = self.process
        assert process is not None and process.stdin and process.stdout
        why = ""
        try:
            _send((links, chunk_rows, self.folders), process.stdin)
            process.stdin.close()
            while (walked := _receive(process.stdout)) is not _END:
                self._chunks.put(_receive_batches(walked, process.stdout))
        except (EOFError, OSError, ValueError, TypeError, pa.ArrowException) as e:
            why = f"{type(e).__name__}: {e}"
        finally:
            process.wait()
            if (process.returncode != 0 or why) and not self._closing:
                stderr = _last_line(process.stderr)
                log.warning(
                    "a walking helper failed (%s); its folders are walked on this core",
                    stderr or why or f"exit status {process.returncode}",
                )
            self._chunks.put(_END)

    def close(self) -> None:
        if self.process is None:
            return
        self._closing = True
        if self.process.poll() is None:
            self.process.kill()  # the walk was left before its end
        self._thread.join()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # stdin of a helper that died unread
                    stream.close()


def _last_line(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    lines = stream.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else ""


def _send(item: Any, sink: IO[bytes]) -> None:
    # One read of a known length: marshal.load on a pipe reads it a few bytes at a time.
    data = marshal.dumps(item)
    sink.write(len(data).to_bytes(8, "little"))
    sink.write(data)


def _receive(source: IO[bytes]) -> Any:
    size = int.from_bytes(_read_exactly(source, 8), "little")
    return marshal.loads(_read_exactly(source, size))


def _send_batches(walked: int, batches: list[pa.RecordBatch], sink: IO[bytes]) -> None:
    """One chunk: the count of folders walked whole, then their batches, taken as one (a helper
    that dies within it has sent none of them)."""
    _send(walked, sink)
    _send(len(batches), sink)
    for batch in batches:
        data = batch.serialize()
        sink.write(data.size.to_bytes(8, "little"))
        sink.write(data)


def _receive_batches(walked: int, source: IO[bytes]) -> tuple[int, list[pa.RecordBatch]]:
    batches = []
    for _ in range(_receive(source)):
        size = int.from_bytes(_read_exactly(source, 8), "little")
        batches.append(pa.ipc.read_record_batch(pa.py_buffer(_read_exactly(source, size)), STAMPS))
    return walked, batches


def _read_exactly(source: IO[bytes], size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError(f"the pipe ended after {len(data)} of {size} bytes")
    return data


def _serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The helper's side: walk each folder given whole, sending chunks of at least chunk_rows
    rows with the count of folders walked so far, then the end."""
    links, chunk_rows, folders = _receive(source)
    lister = new_lister(links)
    for walked, top in enumerate(folders, 1):
        stack: list[Folder] = [top]
        while stack:
            lister.list_folder(*stack.pop(), stack)
        if lister.rows >= chunk_rows or walked == len(folders):
            _send_batches(walked, lister.take(), sink)
    _send(_END, sink)
    sink.flush()


if __name__ == "__main__":
    # Ctrl-C in a terminal, or a service manager's SIGTERM, reaches the whole process group: the
    # reconciler decides when the walk ends, and a helper whose reader is gone ends at its write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _serve(sys.stdin.buffer, sys.stdout.buffer)
