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


def _file_entries(root: Path, links: bool = False) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Yield (rel_path, entry) of every regular, non-ignored file under root (and of every
    symlink with links=True: to a file or a folder, never followed), its path as stored.

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
                rel = prefix + stored_path(entry.name)
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not is_ignored(rel):
                            stack.append((entry.path, rel + "/"))
                        continue
                    if entry.name.endswith(".tmp"):
                        continue
                    if entry.is_file(follow_symlinks=False) or (links and entry.is_symlink()):
                        yield rel, entry
                except OSError:
                    continue


def walk_files(root: Path, links: bool = False) -> Iterator[tuple[str, int, int]]:
    """Yield (rel_path, mtime_ns, size) of every regular, non-ignored file under root; with
    links=True of every file symlink too (the link's own stamp: it is never followed)."""
    for rel, entry in _file_entries(root, links):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # vanished between listing and stat
        yield rel, st.st_mtime_ns, st.st_size


def list_files(root: Path, links: bool = False) -> Iterator[str]:
    """Yield the stored path of every regular, non-ignored file under root, without a stat."""
    for rel, _ in _file_entries(root, links):
        yield rel


def scan_tree(root: Path) -> Iterator[FileStat]:
    """Yield every file under root with its key and stamp."""
    for rel, mtime_ns, size in walk_files(root):
        key = classify(rel)
        if key is not None:
            yield FileStat(key, FileStamp(mtime_ns, size))
