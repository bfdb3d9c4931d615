"""The file_index vocabulary: file statuses, stamps, and the set-based writes of tracking rows.
Never opens a transaction of its own: callers run these inside their batch's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from indexer.kinds import FileKey
from indexer.outcome import FileStamp, FileStatus, next_attempts
from indexer.store.database import sql_strings


@dataclass(frozen=True, slots=True)
class TrackedFile:
    rel_path: str
    kind: str
    status: FileStatus
    stamp: FileStamp | None
    content_hash: str | None
    attempts: int
    error_message: str | None
    indexer_version: str | None


@dataclass(frozen=True, slots=True)
class TrackEntry:
    """One file's new tracking state, as the processor decided it."""

    key: FileKey
    status: FileStatus
    stamp: FileStamp | None = None
    content_hash: str | None = None
    message: str | None = None


_COLUMNS = (
    ("file_path", pa.string()),
    ("file_type", pa.string()),
    ("mtime", pa.float64()),
    ("size", pa.int32()),
    ("record_id", pa.string()),
    ("indexed_at", pa.timestamp("us")),
    ("error_message", pa.string()),
    ("status", pa.string()),
    ("mtime_ns", pa.int64()),
    ("content_hash", pa.string()),
    ("attempts", pa.int32()),
    ("indexer_version", pa.string()),
    ("first_attempt_at", pa.timestamp("us")),
)
_SCHEMA = pa.schema(list(_COLUMNS))


class FileTracker:
    """Reads and writes file_index rows on the caller's connection; not thread-safe by itself."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        indexer_version: str,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.indexer_version = indexer_version
        self._now = now

    def lookup(self, rel_paths: Iterable[str]) -> dict[str, TrackedFile]:
        """Return the tracked rows of these paths; unknown paths are absent."""
        paths = list(dict.fromkeys(rel_paths))
        if not paths:
            return {}
        rows = self.conn.execute(
            "SELECT file_path, file_type, status, mtime_ns, size, content_hash, attempts, "
            f"error_message, indexer_version FROM file_index WHERE file_path IN {sql_strings(paths)}"
        ).fetchall()
        return {row[0]: _tracked(row) for row in rows}

    def record(
        self, entries: Sequence[TrackEntry], prior: dict[str, TrackedFile] | None = None
    ) -> None:
        """Write the new state of each file; attempts count consecutive pending/error outcomes.

        prior, when the caller already looked the paths up, saves a query.
        """
        if not entries:
            return
        latest = {e.key.rel_path: e for e in entries}  # newest wins inside one call
        if prior is None:
            prior = self.lookup(latest)
        now_us = int(self._now() * 1_000_000)
        columns: dict[str, list[object]] = {name: [] for name, _ in _COLUMNS}
        for path, entry in latest.items():
            before = prior.get(path)
            attempts = next_attempts(
                before.status if before else None, before.attempts if before else 0, entry.status
            )
            stamp = entry.stamp or (before.stamp if before else None)
            values = {
                "file_path": path,
                "file_type": str(entry.key.kind),
                "mtime": stamp.mtime_ns / 1e9 if stamp else 0.0,
                "size": min(stamp.size, 2**31 - 1) if stamp else 0,
                "record_id": entry.key.record_id or None,
                "indexed_at": now_us,
                "error_message": entry.message,
                "status": str(entry.status),
                "mtime_ns": stamp.mtime_ns if stamp else None,
                "content_hash": entry.content_hash
                or (before.content_hash if before and entry.status is FileStatus.DELETED else None),
                "attempts": attempts,
                "indexer_version": self.indexer_version,
                "first_attempt_at": now_us if attempts == 1 else None,
            }
            for name, value in values.items():
                columns[name].append(value)
        batch = pa.Table.from_pydict(columns, schema=_SCHEMA)
        known = [path for path in latest if path in prior]
        if known:
            self.conn.execute(f"DELETE FROM file_index WHERE file_path IN {sql_strings(known)}")
        # Column order is the table's: the v1-era columns, then those migrations appended.
        self.conn.from_arrow(batch).insert_into("file_index")

    def mark_indexed(self, files: Sequence[tuple[FileKey, FileStamp, str]]) -> None:
        self.record([TrackEntry(k, FileStatus.INDEXED, s, h) for k, s, h in files])

    def mark_error(self, files: Sequence[tuple[FileKey, FileStamp | None, str]]) -> None:
        self.record([TrackEntry(k, FileStatus.ERROR, s, None, m) for k, s, m in files])

    def mark_pending(self, files: Sequence[tuple[FileKey, FileStamp | None, str]]) -> None:
        self.record([TrackEntry(k, FileStatus.PENDING, s, None, m) for k, s, m in files])

    def mark_skipped(self, files: Sequence[tuple[FileKey, FileStamp]]) -> None:
        self.record([TrackEntry(k, FileStatus.SKIPPED, s) for k, s in files])

    def mark_deleted(self, keys: Sequence[FileKey]) -> None:
        self.record([TrackEntry(k, FileStatus.DELETED) for k in keys])

    def mark_for_reread(self, rel_paths: Sequence[str], why: str) -> None:
        """Mark tracked rows pending so the reconciler's retry reads them again, in the caller's
        transaction (so a crash cannot lose the request)."""
        if rel_paths:
            self._reread(f"file_path IN {sql_strings(rel_paths)}", why)

    def mark_kinds_for_reread(
        self, kinds: Collection[str], outside: Sequence[str], why: str
    ) -> int:
        """mark_for_reread for every tracked row of these kinds (indexed, pending or in error)
        whose path starts with none of `outside`; returns how many."""
        others = " AND NOT starts_with(file_path, ?)" * len(outside)
        return self._reread(
            f"status IN ('indexed', 'pending', 'error') AND file_type IN "
            f"{sql_strings(sorted(kinds))}{others}",
            why,
            outside,
        )

    def _reread(self, where: str, why: str, params: Sequence[str] = ()) -> int:
        row = self.conn.execute(
            "UPDATE file_index SET status = 'pending', indexed_at = to_timestamp(0), "
            f"error_message = ? WHERE {where}",
            [f"re-read: {why}", *params],
        ).fetchone()
        return int(row[0]) if row else 0

    def needs_indexing(self, files: Sequence[tuple[FileKey, FileStamp]]) -> list[FileKey]:
        """Return the keys whose stamp differs from file_index (compared with !=) or are unknown."""
        prior = self.lookup(k.rel_path for k, _ in files)
        out: list[FileKey] = []
        for key, stamp in files:
            before = prior.get(key.rel_path)
            if before is None or before.status is FileStatus.DELETED or before.stamp != stamp:
                out.append(key)
        return out


def _tracked(row: tuple[Any, ...]) -> TrackedFile:
    path, kind, status, mtime_ns, size, content_hash, attempts, message, version = row
    stamp = (
        FileStamp(int(mtime_ns), int(size)) if mtime_ns is not None and size is not None else None
    )
    return TrackedFile(
        rel_path=str(path),
        kind=str(kind),
        status=FileStatus(str(status or "indexed")),
        stamp=stamp,
        content_hash=None if content_hash is None else str(content_hash),
        attempts=int(attempts or 0),
        error_message=None if message is None else str(message),
        indexer_version=None if version is None else str(version),
    )
