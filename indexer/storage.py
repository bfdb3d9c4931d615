"""Where OpenCode's storage root is, and which paths under it are never records: dotfiles, temp
files, the quarantine folder. Never opens a file; what kind a path holds is `indexer.kinds`'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

_IGNORED_TOP = frozenset({"quarantine"})


def is_ignored(rel_path: str) -> bool:
    """True for paths we never even record: dotfiles, temp files and the quarantine folder."""
    parts = rel_path.split("/")
    if parts[0] in _IGNORED_TOP:
        return True
    return any(p.startswith(".") for p in parts) or parts[-1].endswith(".tmp")


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


class StorageNotFound(Exception):
    """No OpenCode storage folder exists where we looked."""


def resolve_storage_root(
    explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> tuple[Path, str]:
    """Return the storage root and where it came from; the first source found wins.

    Order: the explicit argument (--storage), $OCINDEX_STORAGE, $XDG_DATA_HOME/opencode/storage,
    ~/.local/share/opencode/storage. An explicit or $OCINDEX_STORAGE root is returned even when it
    does not exist yet, since the caller asked for it by name.
    """
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit).expanduser(), "--storage"
    if env.get("OCINDEX_STORAGE"):
        return Path(env["OCINDEX_STORAGE"]).expanduser(), "$OCINDEX_STORAGE"
    candidates: list[tuple[Path, str]] = []
    if env.get("XDG_DATA_HOME"):
        candidates.append((Path(env["XDG_DATA_HOME"]) / "opencode" / "storage", "$XDG_DATA_HOME"))
    candidates.append((Path.home() / ".local" / "share" / "opencode" / "storage", "home"))
    for path, source in candidates:
        if path.is_dir():
            return path, source
    return candidates[0]
