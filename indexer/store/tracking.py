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
from indexer.outcome import FileRead, FileStamp, FileStatus, next_attempts
from indexer.store.bloom_filter import BloomFilter
from indexer.store.sql import sql_strings


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
    """One file's new tracking state, as the processor decided it. A FileRead, which carries
    the same five fields, is recorded as it is."""

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
FILE_INDEX_SCHEMA = pa.schema(list(_COLUMNS))
"""file_index's columns as Arrow, in the table's order: the v1-era columns, then the migrations'."""


_JOIN_MIN_KEYS = 200
_ROWS_PER_KEY = 300
"""A batch of paths is matched against file_index by a join with an Arrow table of its keys
when it has at least _JOIN_MIN_KEYS paths and file_index at most _ROWS_PER_KEY rows per path;
otherwise by a literal IN list, which DuckDB probes in the primary-key index. Measured (2
cores, DuckDB 2.0.1): the list costs ~33 µs a path, whatever the table's size; the join ~5 ms
plus ~80 ns a row of file_index, since it scans the table (DuckDB has no index join)."""
_KEYS = "_ocindex_batch_paths"


class FileTracker:
    """Reads and writes file_index rows on the caller's connection; not thread-safe by itself."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        indexer_version: str,
        now: Callable[[], float] = time.time,
        sole_writer: bool = False,
        asks_records: bool = False,
    ) -> None:
        """sole_writer: the caller writes file_index alone while this tracker lives. Then, if
        the table is empty at the first lookup, every path recorded from then on goes into a
        BloomFilter, and, if the caller asks about records (asks_records: it resolves twins),
        each record's kind and id into another; DuckDB is asked only about those the filters
        may hold: a catch-up into an empty index asks about almost none (at 1M rows a lookup
        costs 15-50 µs a path, a twins query 20-40 ms a batch of 2,000). Reading a big table's
        paths into a filter instead (1M: ~2 s) was measured and did not pay
        (docs/benchmarks.md)."""
        self.conn = conn
        self.indexer_version = indexer_version
        self._now = now
        self._filter_undecided = sole_writer
        self._asks_records = asks_records
        self._known: BloomFilter | None = None
        self._known_records: BloomFilter | None = None

    def lookup(self, rel_paths: Iterable[str]) -> dict[str, TrackedFile]:
        """Return the tracked rows of these paths (one statement); unknown paths are absent."""
        paths = self._maybe_known(list(dict.fromkeys(rel_paths)))
        if not paths:
            return {}
        rows = self._matching(
            paths,
            "SELECT f.file_path, f.file_type, f.status, f.mtime_ns, f.size, f.content_hash, "
            "f.attempts, f.error_message, f.indexer_version FROM file_index f",
        )
        return {row[0]: _tracked(row) for row in rows}

    def _matching(self, paths: Sequence[str], statement: str) -> list[tuple[Any, ...]]:
        """Run `statement` (a SELECT or DELETE over file_index aliased f) on the rows of these
        paths, by whichever of a join or a key lookup costs less for this many (see
        _ROWS_PER_KEY)."""
        if len(paths) >= _JOIN_MIN_KEYS and self._rows() <= _ROWS_PER_KEY * len(paths):
            keys = pa.table({"file_path": pa.array(paths, pa.string())})
            self.conn.register(_KEYS, keys)
            try:
                using = " USING " if statement.startswith("DELETE") else " JOIN "
                on = " WHERE " if statement.startswith("DELETE") else " ON "
                sql = f"{statement}{using}{_KEYS} k{on}f.file_path = k.file_path"
                return self.conn.execute(sql).fetchall()
            finally:
                self.conn.unregister(_KEYS)
        where = f" WHERE f.file_path IN {sql_strings(paths)}"
        return self.conn.execute(statement + where).fetchall()

    def _maybe_known(self, paths: list[str]) -> list[str]:
        if paths:
            self._decide_filter()
        return paths if self._known is None else self._known.maybe_held(paths)

    def records_maybe_tracked(self, records: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (kind, record id) pairs of which file_index may hold a row: all of them, unless
        this tracker filters (see __init__); then those it recorded, and rarely another."""
        records = list(records)
        if records:
            self._decide_filter()
        if self._known_records is None:
            return records
        keys = [_record_key(kind, record_id) for kind, record_id in records]
        held = set(self._known_records.maybe_held(keys))
        return [record for record, key in zip(records, keys, strict=True) if key in held]

    def _decide_filter(self) -> None:
        if self._filter_undecided:
            self._filter_undecided = False  # decided once: the table is ours only if empty
            if self._rows() == 0:
                self._known = BloomFilter()
                self._known_records = BloomFilter() if self._asks_records else None

    def distrust_filter(self) -> bool:
        """Stop filtering (a row the filters did not know turned up); True if they were on."""
        was = self._known is not None
        self._known = self._known_records = None
        return was

    def _rows(self) -> int:
        rows = self.conn.execute("SELECT count(*) FROM file_index").fetchall()
        return int(rows[0][0])

    def record(
        self,
        entries: Sequence[TrackEntry | FileRead],
        prior: dict[str, TrackedFile] | None = None,
    ) -> None:
        """Write the new state of each file; attempts count consecutive pending/error outcomes.

        prior, when the caller already looked the paths up, saves a query. The rows of known
        paths are deleted, then the batch inserted as one Arrow table: two statements where
        INSERT OR REPLACE, ON CONFLICT DO UPDATE and MERGE each cost 3-10 times as much.
        """
        if not entries:
            return
        latest = {e.key.rel_path: e for e in entries}  # newest wins inside one call
        if prior is None:
            prior = self.lookup(latest)
        paths = list(latest)
        news = list(latest.values())
        olds = [prior.get(p) for p in paths]
        now_us = int(self._now() * 1_000_000)
        attempts = [
            next_attempts(b.status, b.attempts, e.status) if b else next_attempts(None, 0, e.status)
            for e, b in zip(news, olds, strict=True)
        ]
        stamps = [e.stamp or (b.stamp if b else None) for e, b in zip(news, olds, strict=True)]
        deleted = FileStatus.DELETED
        columns: list[list[Any]] = [
            paths,
            [e.key.kind.value for e in news],
            [s.mtime_ns / 1e9 if s else 0.0 for s in stamps],
            [min(s.size, 2**31 - 1) if s else 0 for s in stamps],
            [e.key.record_id or None for e in news],
            [now_us] * len(paths),
            [e.message for e in news],
            [e.status.value for e in news],
            [s.mtime_ns if s else None for s in stamps],
            [
                e.content_hash or (b.content_hash if b and e.status is deleted else None)
                for e, b in zip(news, olds, strict=True)
            ],
            attempts,
            [self.indexer_version] * len(paths),
            [now_us if a == 1 else None for a in attempts],
        ]
        known = [path for path, before in zip(paths, olds, strict=True) if before is not None]
        records = (_record_key(e.key.kind.value, e.key.record_id) for e in news if e.key.record_id)
        self._write(_as_table(columns), paths, known, records)

    def record_new_indexed(
        self,
        paths: list[str],
        kinds: list[str],
        record_ids: list[str],
        mtimes_ns: list[int],
        sizes: list[int],
        hashes: list[str | None],
    ) -> None:
        """What `record` writes for files seen for the first time and indexed, given column by
        column (a first catch-up's batch: no object per file, no lookup). The caller knows
        file_index holds none of these paths; if it does, the insert fails and nothing of the
        batch is written."""
        if not paths:
            return
        self._decide_filter()
        now_us = int(self._now() * 1_000_000)
        batch = new_indexed_rows(
            paths, kinds, record_ids, mtimes_ns, sizes, hashes, self.indexer_version, now_us
        )
        records = (_record_key(k, r) for k, r in zip(kinds, record_ids, strict=True) if r)
        self._write(batch, paths, [], records)

    def _write(
        self, batch: pa.Table, paths: list[str], known: list[str], records: Iterable[str]
    ) -> None:
        """Replace the rows of `known` paths and insert `batch`, the rows of `paths`."""
        if self._known is not None:
            self._known.add(paths)  # before the insert: a path in doubt is only looked up
        if self._known_records is not None:
            self._known_records.add(records)
        if known:
            self._matching(known, "DELETE FROM file_index f")
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


def new_indexed_rows(
    paths: list[str],
    kinds: list[str],
    record_ids: list[str],
    mtimes_ns: list[int],
    sizes: list[int],
    hashes: list[str | None],
    indexer_version: str,
    now_us: int,
) -> pa.Table:
    """The file_index rows of files seen for the first time and indexed: the ones `record`
    builds for them (no message, no attempt), as one Arrow table."""
    none = [None] * len(paths)
    return _as_table(
        [
            paths,
            kinds,
            [m / 1e9 for m in mtimes_ns],
            [min(s, 2**31 - 1) for s in sizes],
            [r or None for r in record_ids],
            [now_us] * len(paths),
            none,
            [FileStatus.INDEXED.value] * len(paths),
            mtimes_ns,
            hashes,
            [0] * len(paths),
            [indexer_version] * len(paths),
            none,
        ]
    )


def _as_table(columns: list[list[Any]]) -> pa.Table:
    """file_index's columns, in the table's order, as Arrow."""
    return pa.Table.from_arrays(
        [pa.array(c, type=t) for c, (_, t) in zip(columns, _COLUMNS, strict=True)],
        schema=FILE_INDEX_SCHEMA,
    )


def _record_key(kind: str, record_id: str) -> str:
    return f"{kind}\0{record_id}"


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
