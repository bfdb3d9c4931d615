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
    if _FUNCTION is None or len(keys) < 2:
        return [read_file(root, key, config, 0, wall) for key in keys]
    base = os.fspath(root)
    # A file of no indexed kind is only stat'ed, a name that is not UTF-8 needs its disk name.
    plain = [
        i
        for i, k in enumerate(keys)
        if k.kind is not FileKind.SKIPPED and disk_name(k.rel_path) is None
    ]
    found: dict[int, FileRead] = {}
    start = 0
    while start < len(plain):
        start += _read_some(base, keys, plain[start:], config, wall, found)
    return [found.get(i) or read_file(root, key, config, 0, wall) for i, key in enumerate(keys)]


def _read_some(
    base: str,
    keys: Sequence[FileKey],
    places: list[int],
    config: ProcessorConfig,
    wall: Callable[[], float],
    found: dict[int, FileRead],
) -> int:
    """Read what fits of the keys at these places into one buffer: how many were looked at."""
    assert _FUNCTION is not None
    n = len(places)
    paths = (ctypes.c_char_p * n)(*(f"{base}/{keys[i].rel_path}".encode() for i in places))
    # One buffer per thread, kept: zeroing 4 MiB for every batch cost a millisecond.
    buffer = getattr(_BUFFERS, "buffer", None)
    if buffer is None or len(buffer) < BUFFER_BYTES:
        buffer = _BUFFERS.buffer = ctypes.create_string_buffer(BUFFER_BYTES)
    codes = (ctypes.c_int8 * n)()
    offsets, sizes, mtimes = (ctypes.c_int64 * n)(), (ctypes.c_int64 * n)(), (ctypes.c_int64 * n)()
    done: int = _FUNCTION(
        paths, n, config.max_file_bytes, buffer, BUFFER_BYTES, codes, offsets, sizes, mtimes
    )
    view = memoryview(buffer)
    situation = config.first_read
    for j in range(done):
        if codes[j] == _READ:
            at, size = offsets[j], sizes[j]
            key = keys[places[j]]
            data = bytes(view[at : at + size])
            stamp = FileStamp(mtimes[j], size)
            found[places[j]] = read_bytes(key, data, stamp, config, situation, wall)
    return max(done, 1)  # a file bigger than the buffer is never the plain case
