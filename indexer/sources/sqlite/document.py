"""One SQLite-sourced key (`sqlite:opencode.db:part/<id>`) read back into the JSON document the
indexer parses for it, for a person to read. Never indexes and never writes: read-only, as rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from indexer.kinds import FileKey
from indexer.outcome import FileRead, FileStamp, RetryPolicy, Situation
from indexer.sources.sqlite.connection import ReadOnlyDatabase
from indexer.sources.sqlite.rows import RowReader
from indexer.sources.sqlite.source import SqliteSource


class _KeepingReader(RowReader):
    """A RowReader that keeps the bytes each row was rebuilt into, before they are parsed."""

    def __init__(self, source: SqliteSource) -> None:
        db = ReadOnlyDatabase(source.db_path, source.name, source.config.busy_timeout_ms)
        situation = Situation(RetryPolicy(source.config.retry_base_s, source.config.retry_max_s))
        super().__init__(db, source.prefix, source.config, situation)
        self.documents: dict[str, bytes] = {}

    def _parsed(self, key: FileKey, stamp: FileStamp, data: bytes) -> FileRead:
        self.documents[key.rel_path] = data
        return super()._parsed(key, stamp, data)


def row_document(source: SqliteSource, rel_path: str) -> bytes:
    """The row's document as indented JSON (its stored text as-is when that is not JSON).

    Raises LookupError with a sentence when the key is not a row of this source, the row is
    gone, or the database cannot be read now."""
    key = source.key_for(rel_path)
    if key is None:
        raise LookupError(f"{rel_path} is not a row of {source.name}")
    reader = _KeepingReader(source)
    found = reader.read([key])[0]
    data = reader.documents.get(rel_path)
    if data is None:
        why = found.message or f"the row is {found.status.value}"
        raise LookupError(f"{rel_path} cannot be read from {source.db_path}: {why}")
    try:
        return orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2) + b"\n"
    except orjson.JSONDecodeError:
        return data


def find_document(sources: Iterable[object], rel_path: str) -> bytes:
    """row_document from whichever of `sources` holds `rel_path`; LookupError when none does."""
    for source in sources:
        if isinstance(source, SqliteSource) and source.key_for(rel_path) is not None:
            return row_document(source, rel_path)
    raise LookupError(f"no SQLite store this engine reads holds {rel_path}")
