"""Walks the storage tree with os.scandir and yields each file's path and stamp, and says how a
path is stored. Never parses a file or keeps state between calls: the single discovery function.

Paths are stored as valid UTF-8: a name that is not (Python hands it over surrogate-escaped,
which DuckDB and Arrow refuse) is stored with its bad bytes as `\\xNN`; `disk_name` maps it back.
Symlinks are never followed: a folder link is not entered, and a file link is listed only when
the caller asks (`links=True`), so the reconciler can record it as skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_IFDIR, S_IFLNK, S_IFREG

from indexer.kinds import FileKey, classify
from indexer.outcome import FileStamp
from indexer.storage import is_ignored


@dataclass(frozen=True, slots=True)
class FileStat:
    key: FileKey
    stamp: FileStamp


def stored_path(rel: str) -> str:
    """The path as file_index stores it: itself when valid UTF-8, else with `\\xNN` escapes."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")
    return rel


_ESCAPE = re.compile(rb"\\x([0-9a-f]{2})")


def disk_name(rel: str) -> str | None:
    """The name on disk of a stored path that `stored_path` escaped, else None."""
    if "\\x" not in rel:
        return None
    raw = _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), rel.encode("utf-8"))
    name = os.fsdecode(raw)
    return None if name == rel or stored_path(name) != rel else name


Stamps = tuple[list[str], list[int], list[int]]
"""Columns of stored paths, mtime_ns and sizes, row i of each the same file."""

_FOLDER = os.O_RDONLY | os.O_DIRECTORY
_TYPE_BITS = 0o170000  # stat.S_IFMT's mask, without a call per file


def walk_columns(root: Path, links: bool = False, chunk_rows: int = 50_000) -> Iterator[Stamps]:
    """Yield the stamps of every regular, non-ignored file under root (with links=True of every
    symlink too: to a file or a folder, never followed; the link's own stamp) as columns, a
    chunk once it holds chunk_rows rows or more (whole folders: a big folder overshoots).

    Folders that vanish or cannot be listed are passed over, and files that vanish between
    listing and stat: the next scan sees them again.
    """
    yield from walk_stack([(os.fspath(root), "")], links, chunk_rows)


Folder = tuple[str, str]
"""A folder to walk: its path on disk and its stored path's prefix ("" or ending in "/")."""


def walk_stack(stack: list[Folder], links: bool, chunk_rows: int) -> Iterator[Stamps]:
    """`walk_columns` of the subtrees of the folders in stack (which it empties)."""
    out: Stamps = ([], [], [])
    while stack:
        list_folder(*stack.pop(), links, out, stack)
        if len(out[0]) >= chunk_rows:
            yield out
            out = ([], [], [])
    if out[0]:
        yield out


def list_folder(
    folder: str, prefix: str, links: bool, out: Stamps, subfolders: list[Folder]
) -> None:
    """Append the stamps of one folder's files to out and its subfolders to subfolders. A folder
    that vanished or cannot be listed, or a file that vanished since the listing, is passed
    over: the next scan sees it again."""
    # A million files cost a million lstat calls, which no listing can spare (a rewrite in
    # place changes no folder), so each name costs that one call and as few Python operations
    # as can be: the lstat is relative to its folder's descriptor (the kernel resolves one
    # name, not the whole path) and its mode gives the kind (no DirEntry, no second test).
    paths, mtimes, sizes = out
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
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and stat
            kind = st.st_mode & _TYPE_BITS
            if kind == S_IFREG or (links and kind == S_IFLNK):
                paths.append(prefix + (name if name.isascii() else stored_path(name)))
                mtimes.append(st.st_mtime_ns)
                sizes.append(st.st_size)
            elif kind == S_IFDIR:
                rel = prefix + stored_path(name)
                if not is_ignored(rel):
                    subfolders.append((f"{folder}/{name}", rel + "/"))
    except OSError:
        return  # the folder could not be listed
    finally:
        os.close(fd)


def walk_files(root: Path, links: bool = False) -> Iterator[tuple[str, int, int]]:
    """Yield (rel_path, mtime_ns, size) of every regular, non-ignored file under root; with
    links=True of every file symlink too (the link's own stamp: it is never followed)."""
    for paths, mtimes, sizes in walk_columns(root, links, 1):
        yield from zip(paths, mtimes, sizes, strict=True)


def list_files(root: Path, links: bool = False) -> Iterator[str]:
    """Yield the stored path of every regular, non-ignored file under root (and of every
    symlink with links=True)."""
    for paths, _, _ in walk_columns(root, links, 1):
        yield from paths


def scan_tree(root: Path) -> Iterator[FileStat]:
    """Yield every file under root with its key and stamp."""
    for rel, mtime_ns, size in walk_files(root):
        key = classify(rel)
        if key is not None:
            yield FileStat(key, FileStamp(mtime_ns, size))
