"""Where a key of the index can be read by a person: a file under the storage root or under a
legacy tree, or a row of OpenCode's SQLite store shown as its JSON document. Never writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from indexer.kinds import is_source_path
from indexer.sources.sqlite.document import find_document
from indexer.sources.tree import TreeSource

__all__ = ["file_path", "find_document", "is_row"]


def is_row(key: str) -> bool:
    """True for a key that names a database row rather than a file (`sqlite:…`)."""
    return key.startswith("sqlite:")


def file_path(key: str, storage_root: Path, sources: Iterable[object] = ()) -> Path | None:
    """The file `key` names: under the storage root for a plain key, under its tree for a
    legacy tree's key; None for a row, or a prefix no source of `sources` has."""
    if not is_source_path(key):
        return storage_root / key
    for source in sources:
        if isinstance(source, TreeSource) and key.startswith(source.prefix):
            return source.root / key[len(source.prefix) :]
    return None
