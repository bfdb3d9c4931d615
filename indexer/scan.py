"""Walks the storage tree with os.scandir and yields each file's path and stamp.
Never parses a file or keeps state between calls: it is the single discovery function.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexer.kinds import FileKey, classify
from indexer.outcome import FileStamp
from indexer.storage import is_ignored


@dataclass(frozen=True, slots=True)
class FileStat:
    key: FileKey
    stamp: FileStamp


def _file_entries(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Yield (rel_path, entry) of every regular, non-ignored file under root.

    Folders that vanish or cannot be listed are passed over: the next scan sees them again.
    """
    stack = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                rel = prefix + entry.name
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not is_ignored(rel):
                            stack.append((entry.path, rel + "/"))
                        continue
                    if entry.is_file(follow_symlinks=False) and not entry.name.endswith(".tmp"):
                        yield rel, entry
                except OSError:
                    continue


def walk_files(root: Path) -> Iterator[tuple[str, int, int]]:
    """Yield (rel_path, mtime_ns, size) of every regular, non-ignored file under root."""
    for rel, entry in _file_entries(root):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # vanished between listing and stat
        yield rel, st.st_mtime_ns, st.st_size


def list_files(root: Path) -> Iterator[str]:
    """Yield the relative path of every regular, non-ignored file under root, without a stat."""
    for rel, _ in _file_entries(root):
        yield rel


def scan_tree(root: Path) -> Iterator[FileStat]:
    """Yield every file under root with its key and stamp."""
    for rel, mtime_ns, size in walk_files(root):
        key = classify(rel)
        if key is not None:
            yield FileStat(key, FileStamp(mtime_ns, size))
