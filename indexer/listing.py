"""Lists folders of the storage tree into Arrow columns of (stored path, mtime_ns, size): with
the small C library of indexer/native when `make` has built it, else in Python. The two give the
same rows (tests/unit/test_listing.py); indexer.scan decides which folders to list, or the C
library walks the whole tree (NativeWalk, for indexer.parallel_walk).

A million files cost a million lstat calls, which no listing can spare (a rewrite in place
changes no folder). In Python each call also costs a stat_result, a str and three appends:
6.7 s for 1M files on one core against 3.1 s in C (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from stat import S_IFDIR, S_IFLNK, S_IFREG

import pyarrow as pa

from indexer import native_load
from indexer.outcome import clamp_ns
from indexer.storage import is_ignored

log = logging.getLogger(__name__)

STAMPS = pa.schema([("path", pa.string()), ("mtime_ns", pa.int64()), ("size", pa.int64())])
"""A chunk of a walk: each file's stored path and stamp."""

Folder = tuple[str, str]
"""A folder to list: its path on disk and its stored path's prefix ("" or ending in "/")."""

LIBRARY = Path(__file__).parent / "native" / "_list_folder.so"

_FOLDER = os.O_RDONLY | os.O_DIRECTORY
_TYPE_BITS = 0o170000  # stat.S_IFMT's mask, without a call per file


def stored_path(rel: str) -> str:
    """The path as file_index stores it: itself when valid UTF-8, else with `\\xNN` escapes."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")
    return rel


class PythonLister:
    """Lists folders into Python lists; `take()` hands over what was listed as Arrow."""

    def __init__(self, links: bool) -> None:
        self.links = links
        self._paths: list[str] = []
        self._mtimes: list[int] = []
        self._sizes: list[int] = []

    @property
    def rows(self) -> int:
        """Rows listed and not yet taken."""
        return len(self._paths)

    def list_folder(self, folder: str, prefix: str, subfolders: list[Folder]) -> None:
        """Add the stamps of one folder's files and append its subfolders to subfolders. A
        folder that vanished or cannot be listed, or a file that vanished since the listing,
        is passed over: the next scan sees it again."""
        paths, mtimes, sizes, links = self._paths, self._mtimes, self._sizes, self.links
        try:
            fd = os.open(folder, _FOLDER)
        except OSError:
            return
        try:
            for name in os.listdir(fd):
                # Temp files and folders named *.tmp are both ignored: no lstat needed.
                if name[0] == "." or name.endswith(".tmp"):
                    continue
                try:
                    # Relative to the folder's descriptor: the kernel resolves one name.
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue  # vanished between listing and stat
                kind = st.st_mode & _TYPE_BITS
                if kind == S_IFREG or (links and kind == S_IFLNK):
                    paths.append(prefix + (name if name.isascii() else stored_path(name)))
                    mtimes.append(clamp_ns(st.st_mtime_ns))
                    sizes.append(st.st_size)
                elif kind == S_IFDIR:
                    _add_subfolder(folder, prefix, name, subfolders)
        except OSError:
            return  # the folder could not be listed
        finally:
            os.close(fd)

    def take_rows(self) -> Iterator[tuple[str, int, int]]:
        """The rows listed since the last take, as Python values: for a walk of a few folders,
        where Arrow's arrays would cost more than the listing."""
        rows = zip(self._paths, self._mtimes, self._sizes, strict=True)
        self._paths, self._mtimes, self._sizes = [], [], []
        return rows

    def take(self) -> list[pa.RecordBatch]:
        """The rows listed since the last take, as Arrow (none: an empty list)."""
        if not self._paths:
            return []
        columns = [
            pa.array(self._paths, pa.string()),
            pa.array(self._mtimes, pa.int64()),
            pa.array(self._sizes, pa.int64()),
        ]
        self._paths, self._mtimes, self._sizes = [], [], []
        return [pa.RecordBatch.from_arrays(columns, schema=STAMPS)]


def _add_subfolder(folder: str, prefix: str, name: str, subfolders: list[Folder]) -> None:
    rel = prefix + stored_path(name)
    if not is_ignored(rel):
        subfolders.append((f"{folder}/{name}", rel + "/"))


class _Listing(ctypes.Structure):
    """list_folder.c's `listing`: the buffers it appends to."""

    _fields_ = [
        ("paths", ctypes.c_void_p),
        ("paths_cap", ctypes.c_int64),
        ("paths_len", ctypes.c_int64),
        ("offsets", ctypes.c_void_p),
        ("mtimes", ctypes.c_void_p),
        ("sizes", ctypes.c_void_p),
        ("rows_cap", ctypes.c_int64),
        ("rows", ctypes.c_int64),
        ("dirs", ctypes.c_void_p),
        ("dirs_cap", ctypes.c_int64),
        ("dirs_len", ctypes.c_int64),
    ]


_UNLISTABLE, _FULL, _FULL_DIRS = -1, -2, -5
_WALK_DONE, _WALK_HANDED, _WALK_ROWS = 0, 1, 2
_BATCH_ROWS = 4096
"""The buffers start small (a watcher's listing of a new folder of two files allocates little)
and grow to this many rows when full: a walk of a big tree hands over batches of thousands."""
_MAX_PATH_BYTES = 2**31 - 1
"""Arrow's string offsets are 32-bit: a folder whose paths need more is listed in Python."""


_ABI = 4
"""list_folder.c's ABI: its `listing` layout, its walk's calls and rules as this module expects
them."""


def _load(path: Path = LIBRARY) -> ctypes.CDLL | None:
    """The C lister, or None (the walk runs in Python): not built (no C compiler), not loadable
    here, or built from another version of list_folder.c (`make` builds it again)."""
    library = native_load.load(path, "ocindex_list_folder", _ABI, "the tree is walked in Python")
    if library is None:
        return None
    function = library.ocindex_list_folder
    function.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_int64,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(_Listing),
    ]
    function.restype = ctypes.c_int
    walk = ctypes.c_void_p
    for name, args, result in (
        ("ocindex_walk_new", [ctypes.c_char_p, ctypes.c_int, ctypes.c_int], walk),
        ("ocindex_walk_free", [walk], None),
        ("ocindex_walk_stop", [walk], None),
        ("ocindex_walk_push", [walk, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
        ("ocindex_walk_listed", [walk, ctypes.c_void_p], None),
        (
            "ocindex_walk_next",
            [walk, ctypes.POINTER(_Listing), ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p)],
            ctypes.c_int,
        ),
    ):
        function = getattr(library, name)
        function.argtypes, function.restype = args, result
    return library


_LIBRARY = _load()


class NativeLister:
    """Lists folders with list_folder.c into buffers that become Arrow columns; a folder it
    cannot take (a name that is not ASCII, or paths past 2 GiB) is listed by a PythonLister.
    With stamps=False its rows' stamps are null (a folder PythonLister lists keeps them): no
    lstat where the listing says what a name is."""

    def __init__(self, links: bool, rows: int = 64, stamps: bool = True) -> None:
        assert _LIBRARY is not None
        self._function = _LIBRARY.ocindex_list_folder
        self._links = int(links)
        self._stamps = stamps
        self._python = PythonLister(links)
        self._taken: list[pa.RecordBatch] = []
        self._allocate(rows, rows * 64, rows * 64)

    def _allocate(self, rows: int, path_bytes: int, dir_bytes: int) -> None:
        self._paths = ctypes.create_string_buffer(path_bytes)
        self._offsets = (ctypes.c_int32 * (rows + 1))()
        self._mtimes = (ctypes.c_int64 * rows)()
        self._sizes = (ctypes.c_int64 * rows)()
        self._dirs = ctypes.create_string_buffer(dir_bytes)
        self._out = _Listing(
            ctypes.addressof(self._paths), path_bytes, 0,
            ctypes.addressof(self._offsets),
            ctypes.addressof(self._mtimes),
            ctypes.addressof(self._sizes),
            rows, 0,
            ctypes.addressof(self._dirs), dir_bytes, 0,
        )  # fmt: skip
        self._out_ref = ctypes.byref(self._out)

    @property
    def rows(self) -> int:
        taken: int = sum(b.num_rows for b in self._taken)
        return int(self._out.rows) + self._python.rows + taken

    def list_folder(self, folder: str, prefix: str, subfolders: list[Folder]) -> None:
        out = self._out
        folder_bytes, prefix_bytes = os.fsencode(folder), prefix.encode("utf-8")
        while True:
            result = self._function(
                folder_bytes,
                prefix_bytes,
                len(prefix_bytes),
                self._links,
                int(self._stamps),
                self._out_ref,
            )
            if result == _FULL_DIRS:  # the names alone grow: the rows' buffers had room
                self._grow_dirs()
                continue
            if result != _FULL:
                break
            if out.rows:
                out = self._make_room()
            elif out.paths_cap * 2 <= _MAX_PATH_BYTES:
                self._allocate(out.rows_cap * 2, out.paths_cap * 2, out.dirs_cap)
                out = self._out
            else:
                self._python.list_folder(folder, prefix, subfolders)
                return
        if result == _UNLISTABLE:
            return
        if result < 0:  # a name that is not ASCII: Python escapes the ones not UTF-8
            self._python.list_folder(folder, prefix, subfolders)
            return
        if out.dirs_len:
            names = ctypes.string_at(out.dirs, out.dirs_len - 1).decode("ascii")
            for name in names.split("\0"):
                _add_subfolder(folder, prefix, name, subfolders)

    def _grow_dirs(self) -> None:
        """Room for the names of the folder that did not fit (their bytes are in dirs_len), and a
        quarter more for names added before it is listed again."""
        out = self._out
        dir_bytes = max(out.dirs_cap * 2, out.dirs_len + out.dirs_len // 4)
        self._dirs = ctypes.create_string_buffer(dir_bytes)
        out.dirs, out.dirs_cap, out.dirs_len = ctypes.addressof(self._dirs), dir_bytes, 0

    def _make_room(self) -> _Listing:
        """Room made by handing over what the buffers hold; a big walk grows them to batches of
        thousands of rows."""
        out = self._out
        self._taken.extend(self._buffered())
        if out.rows_cap < _BATCH_ROWS:
            self._allocate(out.rows_cap * 4, out.paths_cap * 4, out.dirs_cap)
        return self._out

    def list_walk(self, walk: NativeWalk, rows: int) -> bool:
        """List the walk's folders until this lister holds `rows` rows (True) or no folder is
        left (False). From any number of threads, each with a lister of its own."""
        assert _LIBRARY is not None
        handed = ctypes.c_void_p()
        while True:
            wanted = max(1, rows - self.rows + int(self._out.rows))
            code = _LIBRARY.ocindex_walk_next(walk.handle, self._out_ref, wanted, handed)
            if code == _WALK_ROWS:
                return True
            if code == _WALK_DONE:
                return False
            if code == _FULL:
                self._make_room()
            elif code == _FULL_DIRS:
                self._grow_dirs()
            elif code == _WALK_HANDED:
                walk.list_handed(self, handed.value)
            else:
                raise MemoryError("no memory left for the walk's folders")

    def _buffered(self) -> list[pa.RecordBatch]:
        out = self._out
        n = out.rows
        if not n:
            return []
        # Copied out (the buffers are filled again), a copy per column, not per file.
        offsets = ctypes.string_at(out.offsets, (n + 1) * 4)
        columns = [
            pa.Array.from_buffers(
                pa.string(),
                n,
                [None, pa.py_buffer(offsets), pa.py_buffer(ctypes.string_at(out.paths, out.paths_len))],
            ),
            *(
                pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(ctypes.string_at(b, n * 8))])
                if self._stamps
                else pa.nulls(n, pa.int64())
                for b in (out.mtimes, out.sizes)
            ),
        ]  # fmt: skip
        out.rows = out.paths_len = 0
        return [pa.RecordBatch.from_arrays(columns, schema=STAMPS)]

    def take(self) -> list[pa.RecordBatch]:
        taken, self._taken = [*self._taken, *self._buffered(), *self._python.take()], []
        return taken


Lister = PythonLister | NativeLister


class NativeWalk:
    """The walk of a whole tree by list_folder.c, shared by the threads that list it (each with
    a NativeLister's `list_walk`): its stack of folders lives in C, so a folder costs no Python
    and threads do not queue for the GIL. A folder whose subfolders' names do not fit stays in C:
    the lister grows its buffer of names to the size C asks for. A folder C does not list whole
    (a name that is not ASCII, paths past the buffers) is handed back and listed here, as
    NativeLister does.
    Close it once no thread lists any more."""

    def __init__(self, root: str, links: bool, stamps: bool = True) -> None:
        assert _LIBRARY is not None
        self.handle = _LIBRARY.ocindex_walk_new(os.fsencode(root), int(links), int(stamps))
        if not self.handle:
            raise MemoryError("no memory left for the walk")

    def list_handed(self, lister: NativeLister, handed: int | None) -> None:
        assert _LIBRARY is not None and handed
        folder = ctypes.string_at(handed)
        prefix = ctypes.string_at(handed + len(folder) + 1)
        found: list[Folder] = []
        try:
            lister.list_folder(os.fsdecode(folder), prefix.decode("utf-8"), found)
            for path, stored in found:
                if _LIBRARY.ocindex_walk_push(self.handle, os.fsencode(path), stored.encode()):
                    raise MemoryError("no memory left for the walk's folders")
        finally:
            _LIBRARY.ocindex_walk_listed(self.handle, handed)

    def stop(self) -> None:
        """Every thread returns at its next folder."""
        assert _LIBRARY is not None
        _LIBRARY.ocindex_walk_stop(self.handle)

    def close(self) -> None:
        assert _LIBRARY is not None
        if self.handle:
            _LIBRARY.ocindex_walk_free(self.handle)
            self.handle = None


def native_listing() -> bool:
    """True when the C library is built and loaded."""
    return _LIBRARY is not None


def new_lister(links: bool, native: bool | None = None) -> Lister:
    """A lister of files (with links=True, of symlinks too); native: the C one (None: it when
    built)."""
    if native is None:
        native = _LIBRARY is not None
    return NativeLister(links) if native else PythonLister(links)
