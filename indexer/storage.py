"""OpenCode's storage folder: which folder it is (the only look at the disk here: a folder and a
file name or two), and which paths under it are never records (dotfiles, temp files, the
quarantine folder). Imports nothing of ours; what kind a path holds is `indexer.kinds`'s, and
where the root is found is `indexer.config`'s (resolve_storage_root).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

_IGNORED_TOP = frozenset({"quarantine"})


def is_ignored(rel_path: str) -> bool:
    """True for paths we never even record: dotfiles, temp files and the quarantine folder."""
    # Tests on the whole string, not on its parts: the scan asks this once per file.
    if rel_path.startswith(".") or "/." in rel_path or rel_path.endswith(".tmp"):
        return True
    return rel_path.partition("/")[0] in _IGNORED_TOP


def relative_path(root: Path, abs_path: str | os.PathLike[str]) -> str | None:
    """Return abs_path as a POSIX path relative to root, or None when it lies outside."""
    text, base = os.fspath(abs_path), os.fspath(root).rstrip(os.sep)
    if os.sep == "/" and text.startswith(base + "/") and "/." not in text and "//" not in text:
        return text[len(base) + 1 :]  # the common case, without relpath's normalisation
    try:
        rel = os.path.relpath(os.fspath(abs_path), os.fspath(root))
    except ValueError:
        return None
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        return None
    return PurePosixPath(*Path(rel).parts).as_posix()


def opencode_storage_in(root: Path) -> Path:
    """root/storage where root is OpenCode's data folder (it holds `storage` or `opencode*.db`):
    taken as it is, every file would be skipped and the store beside the storage folder missed."""
    try:
        inner = (root / "storage").is_dir() or any(p.is_file() for p in root.glob("opencode*.db"))
    except OSError:  # unreadable: the caller's own checks say so
        inner = False
    return root / "storage" if inner else root


class StorageNotFound(Exception):
    """No OpenCode storage folder exists where we looked."""
