"""OpenCode's storage layout: where the root is, and what kind of record a path holds.
Never opens a file: the kind and the ids come from the path relative to the root alone.

Layout (DESIGN §1), plus the pre-0.6 layout that OpenCode's own migration still reads:

    project/<projectID>.json                    session/info/<sessionID>.json          (legacy)
    session/<projectID>/<sessionID>.json        session/message/<sessionID>/<id>.json  (legacy)
    message/<sessionID>/<messageID>.json        session/part/<sessionID>/<msg>/<id>.json (legacy)
    part/<messageID>/<partID>.json
    todo/<sessionID>.json
    session_diff/<sessionID>.json
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class FileKind(enum.StrEnum):
    PROJECT = "project"
    SESSION = "session"
    MESSAGE = "message"
    PART = "part"
    TODO = "todo"
    SESSION_DIFF = "session_diff"
    SKIPPED = "skipped"

    @property
    def is_array(self) -> bool:
        """Todo and session_diff files hold a JSON array; every other kind holds an object."""
        return self in (FileKind.TODO, FileKind.SESSION_DIFF)


INDEXED_KINDS: tuple[FileKind, ...] = tuple(k for k in FileKind if k is not FileKind.SKIPPED)


@dataclass(frozen=True, slots=True)
class FileKey:
    """One file under the storage root: its POSIX path relative to the root, kind and ids."""

    rel_path: str
    kind: FileKind
    record_id: str = ""
    """The id the file is about: project, session, message or part id; the session id for
    todo and session_diff files."""
    parent_id: str = ""
    """The id of the folder it sits in: project id for sessions, session id for messages,
    message id for parts. Empty where the layout has none."""

    @property
    def is_indexed_kind(self) -> bool:
        return self.kind is not FileKind.SKIPPED


_IGNORED_TOP = frozenset({"quarantine"})


def is_ignored(rel_path: str) -> bool:
    """True for paths we never even record: dotfiles, temp files and the quarantine folder."""
    parts = rel_path.split("/")
    if parts[0] in _IGNORED_TOP:
        return True
    return any(p.startswith(".") for p in parts) or parts[-1].endswith(".tmp")


def classify(rel_path: str) -> FileKey | None:
    """Return the key of a path relative to the root, or None when the path is ignored.

    Anything that is not one of OpenCode's record files is a key of kind SKIPPED.
    """
    rel_path = rel_path.replace(os.sep, "/").strip("/")
    if not rel_path or is_ignored(rel_path):
        return None
    parts = rel_path.split("/")
    name = parts[-1]
    if not name.endswith(".json") or len(name) <= len(".json"):
        return FileKey(rel_path, FileKind.SKIPPED)
    stem = name[: -len(".json")]
    top, depth = parts[0], len(parts)
    kind: FileKind | None = None
    parent = ""
    if top == "project" and depth == 2:
        kind = FileKind.PROJECT
    elif top == "session" and depth == 3 and parts[1] == "info":
        kind = FileKind.SESSION  # legacy layout: no project folder
    elif top == "session" and depth == 3:
        kind, parent = FileKind.SESSION, parts[1]
    elif top == "session" and depth == 4 and parts[1] == "message":
        kind, parent = FileKind.MESSAGE, parts[2]
    elif top == "session" and depth == 5 and parts[1] == "part":
        kind, parent = FileKind.PART, parts[3]
    elif top == "message" and depth == 3:
        kind, parent = FileKind.MESSAGE, parts[1]
    elif top == "part" and depth == 3:
        kind, parent = FileKind.PART, parts[1]
    elif top == "todo" and depth == 2:
        kind = FileKind.TODO
    elif top == "session_diff" and depth == 2:
        kind = FileKind.SESSION_DIFF
    if kind is None:
        return FileKey(rel_path, FileKind.SKIPPED)
    return FileKey(rel_path, kind, stem, parent)


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
