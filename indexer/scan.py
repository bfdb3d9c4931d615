"""Walks the storage tree with os.scandir and yields each file's key and stamp.
Never parses a file or keeps state between calls: it is the single discovery function.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexer.storage import FileKey, classify
from indexer.tracker import FileStamp


@dataclass(frozen=True, slots=True)
class FileStat:
    key: FileKey
    stamp: FileStamp


def scan_tree(root: Path) -> Iterator[FileStat]:
    """Yield every non-ignored regular file under root; unreadable folders are passed over."""
    stack = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue  # vanished or unreadable: the next scan or an event brings it back
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                rel = f"{prefix}{name}"
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if rel != "quarantine":
                            stack.append((entry.path, rel + "/"))
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                key = classify(rel)
                if key is not None:
                    yield FileStat(key, FileStamp(st.st_mtime_ns, st.st_size))
