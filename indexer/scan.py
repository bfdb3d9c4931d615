"""Walks the storage tree and yields each file's path and stamp, and says how a path is stored.
Never parses a file or keeps state between calls: the single discovery function. Each folder is
listed by indexer.listing (in C when built, else in Python).

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

import pyarrow as pa

from indexer.kinds import FileKey, classify
from indexer.listing import Folder, PythonLister, new_lister, stored_path
from indexer.outcome import FileStamp


@dataclass(frozen=True, slots=True)
class FileStat:
    key: FileKey
    stamp: FileStamp


_ESCAPE = re.compile(rb"\\x([0-9a-f]{2})")


def disk_name(rel: str) -> str | None:
    """The name on disk of a stored path that `stored_path` escaped, else None."""
    if "\\x" not in rel:
        return None
    raw = _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), rel.encode("utf-8"))
    name = os.fsdecode(raw)
    return None if name == rel or stored_path(name) != rel else name


def walk_columns(
    root: Path, links: bool = False, chunk_rows: int = 50_000
) -> Iterator[pa.RecordBatch]:
    """Yield the stamps of every regular, non-ignored file under root (with links=True of every
    symlink too: to a file or a folder, never followed; the link's own stamp) as Arrow batches
    of `indexer.listing.STAMPS`, once chunk_rows rows or more are listed (whole folders: a big
    folder overshoots).

    Folders that vanish or cannot be listed are passed over, and files that vanish between
    listing and stat: the next scan sees them again.
    """
    yield from walk_stack([(os.fspath(root), "")], links, chunk_rows)


def walk_stack(stack: list[Folder], links: bool, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """`walk_columns` of the subtrees of the folders in stack (which it empties)."""
    lister = new_lister(links)
    while stack:
        lister.list_folder(*stack.pop(), stack)
        if lister.rows >= chunk_rows:
            yield from lister.take()
    yield from lister.take()


def walk_files(root: Path, links: bool = False) -> Iterator[tuple[str, int, int]]:
    """Yield (rel_path, mtime_ns, size) of every regular, non-ignored file under root; with
    links=True of every file symlink too (the link's own stamp: it is never followed). Listed in
    Python, folder by folder: its callers want Python values, and a watcher's new folder of two
    files would cost more in Arrow than in listing."""
    lister = PythonLister(links)
    stack: list[Folder] = [(os.fspath(root), "")]
    while stack:
        lister.list_folder(*stack.pop(), stack)
        yield from lister.take_rows()


def list_files(root: Path, links: bool = False) -> Iterator[str]:
    """Yield the stored path of every regular, non-ignored file under root (and of every
    symlink with links=True)."""
    for path, _, _ in walk_files(root, links):
        yield path


def scan_tree(root: Path) -> Iterator[FileStat]:
    """Yield every file under root with its key and stamp."""
    for rel, mtime_ns, size in walk_files(root):
        key = classify(rel)
        if key is not None:
            yield FileStat(key, FileStamp(mtime_ns, size))
