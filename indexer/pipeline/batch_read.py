"""Reads a batch of files: the plain ones (a regular file, its stamp unchanged while read) with
the small C library of indexer/native when `make` has built it, the GIL released for the whole
batch; every other file, and every file without the library, with reader.read_file. The two
give the same reads (tests/unit/test_batch_read.py).

Python's own reads release the GIL five times a file, once per system call, and wait for it
five times: with the writer thread busy, a batch's reads took twice their CPU time.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from indexer import native_load
from indexer.kinds import FileKey, FileKind
from indexer.outcome import FileRead, FileStamp
from indexer.pipeline.reader import ProcessorConfig, read_bytes, read_file
from indexer.scan import disk_name

log = logging.getLogger(__name__)

LIBRARY = Path(__file__).parent.parent / "native" / "_read_files.so"
_ABI = 1
"""read_files.c's ABI: its arguments and codes as this module expects them."""
_READ = 0
BUFFER_BYTES = 4 << 20
"""The bytes one call reads at most; a file bigger than this is read in Python."""


def _load(path: Path = LIBRARY) -> ctypes._NamedFuncPointer | None:
    """read_files.c's function, or None (files are read in Python): not built (no C compiler),
    not loadable here, or built from another version of read_files.c (`make` builds it)."""
    library = native_load.load(path, "ocindex_read_files", _ABI, "files are read in Python")
    if library is None:
        return None
    function = library.ocindex_read_files
    function.restype = ctypes.c_int64
    function.argtypes = [
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    return function


_FUNCTION = _load()
_BUFFERS = threading.local()


def read_files(
    root: Path | str,
    keys: Sequence[FileKey],
    config: ProcessorConfig,
    wall: Callable[[], float] = time.time,
) -> list[FileRead]:
    """Each key's read (read_file's, first read), in the keys' order."""
    found = plain_bytes(root, [plain_path(k.rel_path, k.kind) for k in keys], config)
    situation = config.first_read
    reads = []
    for i, key in enumerate(keys):
        read = found.get(i)
        if read is None:
            reads.append(read_file(root, key, config, 0, wall))
        else:
            data, mtime_ns, size = read
            reads.append(read_bytes(key, data, FileStamp(mtime_ns, size), config, situation, wall))
    return reads


def plain_path(rel_path: str, kind: str) -> str | None:
    """The path to read in C, or None: a file of no indexed kind is only stat'ed, a name that is
    not UTF-8 needs its disk name."""
    return rel_path if kind != FileKind.SKIPPED and disk_name(rel_path) is None else None


PlainRead = tuple[bytes, int, int]
"""A plain file's bytes, mtime_ns and size (its stamp, unchanged while read)."""


def plain_bytes(
    root: Path | str, rel_paths: Sequence[str | None], config: ProcessorConfig
) -> dict[int, PlainRead]:
    """The plain files among these (None: not to be read here), by place; every other file is
    for read_file. None at all without the library, or for a single file."""
    if _FUNCTION is None or len(rel_paths) < 2:
        return {}
    base = os.fspath(root)
    places = [i for i, rel in enumerate(rel_paths) if rel is not None]
    paths = [f"{base}/{rel_paths[i]}".encode() for i in places]
    found: dict[int, PlainRead] = {}
    start = 0
    while start < len(places):
        start += _read_some(paths[start:], places[start:], config.max_file_bytes, found)
    return found


def _read_some(
    paths: list[bytes], places: list[int], max_file_bytes: int, found: dict[int, PlainRead]
) -> int:
    """Read what fits of these paths into one buffer: how many were looked at."""
    assert _FUNCTION is not None
    n = len(paths)
    # One buffer per thread, kept: zeroing 4 MiB for every batch cost a millisecond.
    buffer = getattr(_BUFFERS, "buffer", None)
    if buffer is None or len(buffer) < BUFFER_BYTES:
        buffer = _BUFFERS.buffer = ctypes.create_string_buffer(BUFFER_BYTES)
    codes = (ctypes.c_int8 * n)()
    offsets, sizes, mtimes = (ctypes.c_int64 * n)(), (ctypes.c_int64 * n)(), (ctypes.c_int64 * n)()
    done: int = _FUNCTION(
        (ctypes.c_char_p * n)(*paths), n, max_file_bytes, buffer, BUFFER_BYTES, codes, offsets,
        sizes, mtimes,
    )  # fmt: skip
    view = memoryview(buffer)
    # Slices make lists in one call: an item of a ctypes array costs a call each.
    for place, code, at, size, mtime_ns in zip(
        places, codes[:done], offsets[:done], sizes[:done], mtimes[:done], strict=False
    ):
        if code == _READ:
            found[place] = bytes(view[at : at + size]), mtime_ns, size
    return max(done, 1)  # a file bigger than the buffer is never the plain case
