"""Keys read into FileReads (rebuilt as OpenCode does, parsed like the JSON files) and row stamps,
by each table's shape in indexer.kinds. Never branches on a table's name; never writes."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from indexer.generations import SqliteShape, SqliteTable
from indexer.kinds import FileKey, FileKind
from indexer.outcome import (
    Failure,
    FileRead,
    FileStamp,
    Found,
    ParsedFile,
    RetryPolicy,
    Situation,
    decide,
)
from indexer.rebuild import data_record
from indexer.records import content_hash, parse, too_large
from indexer.sources.sqlite.config import SqliteSourceConfig
from indexer.sources.sqlite.connection import (
    ReadOnlyDatabase,
    Schema,
    SourceState,
    Unavailable,
)
from indexer.sources.sqlite.layout import ALL_RECORDS


@dataclass(frozen=True, slots=True)
class Stamps:
    table: pa.Table
    """(path, mtime_ns = time_updated ms * 1e6, size) of every row."""
    counts: dict[str, int]
    """Rows (a todo table: sessions) per table."""
    newest: dict[str, int]
    """The largest time_updated (ms) per table that has rows."""
    generation: str = ""
    """The database's layout ("1.x", "2.x", "upgraded")."""


@dataclass(frozen=True, slots=True)
class StoreRows:
    """One store's rows as any process reads them: its file, name, key prefix and settings.
    Picklable, so a reading worker process opens its own RowReader on the same store."""

    db_path: Path
    name: str
    prefix: str
    config: SqliteSourceConfig

    def open(self) -> RowReader:
        db = ReadOnlyDatabase(self.db_path, self.name, self.config.busy_timeout_ms)
        situation = Situation(RetryPolicy(self.config.retry_base_s, self.config.retry_max_s))
        return RowReader(db, self.prefix, self.config, situation)


class RowReader:
    """Reads one database's rows into FileReads and stamps. Safe from any thread: every query
    goes through the database's per-thread connection."""

    def __init__(
        self,
        db: ReadOnlyDatabase,
        prefix: str,
        config: SqliteSourceConfig,
        situation: Situation,
    ) -> None:
        self.db = db
        self._prefix = prefix
        self._config = config
        self._situation = situation

    def key_for(self, path: str) -> FileKey | None:
        """The key of a path `<prefix><record>/<id>` of a record this source reads."""
        if not path.startswith(self._prefix):
            return None
        table, sep, record_id = path[len(self._prefix) :].partition("/")
        mapped = ALL_RECORDS.get(table)
        if not sep or mapped is None or not record_id or "/" in record_id:
            return None
        return FileKey(path, mapped[0], record_id)

    def read(self, keys: Sequence[FileKey]) -> list[FileRead]:
        """One FileRead per key: INDEXED, ERROR (a row whose data is not a JSON object), DELETED
        (no such row), or PENDING while the database cannot be read (never DELETED then)."""
        out: list[FileRead] = []
        by_table: dict[str, list[FileKey]] = {}
        for given in keys:
            key = self.key_for(given.rel_path)
            if key is None:
                out.append(self._decided(given, Found.NOT_A_RECORD, "not a row of this source"))
                continue
            by_table.setdefault(key.rel_path[len(self._prefix) :].split("/", 1)[0], []).append(key)
        for table, table_keys in by_table.items():
            try:
                schema = self.db.usable_schema()
                out.extend(self._read_table(table, table_keys, schema))
            except (Unavailable, sqlite3.Error) as exc:
                state, message = self.db.fail(exc)
                out.extend(self._unavailable(table_keys, state, message))
        return out

    def stamps(self) -> Stamps:
        """Every row's stamp; raises Unavailable or sqlite3.Error while it cannot be read."""
        schema = self.db.usable_schema()
        paths: list[str] = []
        mtimes: list[int] = []
        sizes: list[int] = []
        counts: dict[str, int] = {}
        maxes: dict[str, int] = {}
        for table in schema.records.records:
            rows = self._stamp_rows(table, schema)
            counts[table] = len(rows)
            for path, mtime_ns, size in rows:
                paths.append(path)
                mtimes.append(mtime_ns)
                sizes.append(size)
                updated_ms = mtime_ns // 1_000_000
                if updated_ms > maxes.get(table, -1):
                    maxes[table] = updated_ms
        found = pa.table(
            {
                "path": pa.array(paths, pa.string()),
                "mtime_ns": pa.array(mtimes, pa.int64()),
                "size": pa.array(sizes, pa.int64()),
            }
        )
        return Stamps(found, counts, maxes, schema.records.generation)

    def count_rows(self) -> dict[str, int]:
        """Rows per table now (a todo key is a session's whole list, so todo counts sessions)."""
        layout = self.db.usable_schema().records
        counts = {}
        for table, (_, mapping) in layout.records.items():
            grouped = mapping.shape is SqliteShape.GROUPED
            what = "DISTINCT session_id" if grouped else "*"
            counts[table] = int(
                self.db.query(
                    f"SELECT count({what}) FROM {mapping.table} WHERE {layout.where(table)}"
                )[0][0]
            )
        return counts

    def holds_sessions(self) -> bool:
        """Whether the store holds at least one session it counts (any generation)."""
        layout = self.db.usable_schema().records
        for segment, (kind, mapping) in layout.records.items():
            if (
                kind is FileKind.SESSION
                and self.db.query(
                    f"SELECT EXISTS (SELECT 1 FROM {mapping.table} WHERE {layout.where(segment)})"
                )[0][0]
            ):
                return True
        return False

    # --- by shape ------------------------------------------------------------------------

    def _columns(self, table: str, schema: Schema) -> list[str]:
        mapping = schema.records.records[table][1]
        have = schema.columns[mapping.table]
        wanted = mapping.required + mapping.optional
        return [c for c in dict.fromkeys(wanted) if c in have]

    def _stamp_rows(self, table: str, schema: Schema) -> list[tuple[str, int, int]]:
        """(path, mtime_ns, size) of every row of one record, in rowid chunks."""
        prefix = f"{self._prefix}{table}/"
        mapping = schema.records.records[table][1]
        where = schema.records.where(table)
        if mapping.shape is SqliteShape.DATA:
            rows = self._chunked(
                "SELECT rowid, id, time_updated, length(CAST(data AS BLOB)), "
                f"{mapping.stamp_sql} FROM {mapping.table}",
                where,
            )
            return [
                (prefix + r[1], int(r[2] or 0) * 1_000_000 + int(r[4] or 0), int(r[3] or 0))
                for r in rows
            ]
        if mapping.shape is SqliteShape.GROUPED:
            groups = self._groups(mapping, self._chunked(_group_select(mapping.table), where))
            return [(prefix + sid, ms * 1_000_000, len(data)) for sid, (ms, data) in groups.items()]
        cols = self._columns(table, schema)
        build = _rebuild(mapping)
        out = []
        for r in self._chunked(f"SELECT rowid, {', '.join(cols)} FROM {mapping.table}", where):
            record = dict(zip(cols, r[1:], strict=True))
            stamp = _columns_stamp(record, orjson.dumps(build(record)))  # as read() records it
            out.append((prefix + str(record["id"]), stamp.mtime_ns, stamp.size))
        return out

    def _chunked(self, select: str, where: str) -> list[tuple[Any, ...]]:
        """A full scan as a series of short queries (keyset on rowid), so no read transaction
        lasts longer than one chunk."""
        out: list[tuple[Any, ...]] = []
        after = -(2**63)
        while True:
            rows = self.db.query(
                f"{select} WHERE rowid > ? AND ({where}) ORDER BY rowid LIMIT ?",
                [after, self._config.chunk_rows],
            )
            out.extend(rows)
            if len(rows) < self._config.chunk_rows:
                return out
            after = int(rows[-1][0])

    def _groups(
        self, mapping: SqliteTable, rows: Iterable[tuple[Any, ...]]
    ) -> dict[str, tuple[int, bytes]]:
        """session id -> (max time_updated, the rebuilt array's bytes)."""
        by_session: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            by_session.setdefault(str(r[1]), []).append(r)
        out: dict[str, tuple[int, bytes]] = {}
        for sid, items in by_session.items():
            items.sort(key=lambda r: int(r[2]))
            assert mapping.rebuild_group is not None
            data = orjson.dumps(mapping.rebuild_group((r[3], r[4], r[5]) for r in items))
            out[sid] = (max(int(r[6] or 0) for r in items), data)
        return out

    def _read_table(self, table: str, keys: Sequence[FileKey], schema: Schema) -> list[FileRead]:
        ids = list(dict.fromkeys(k.record_id for k in keys))
        layout = schema.records
        if table not in layout.records:  # a record this database's generation does not hold
            return [self._decided(k, Found.GONE) for k in keys]
        mapping = layout.records[table][1]
        where = layout.where(table)
        found: dict[str, FileRead] = {}
        key_of = {k.record_id: k for k in keys}
        step = self._config.chunk_ids
        for i in range(0, len(ids), step):
            chunk = ids[i : i + step]
            marks = ", ".join("?" * len(chunk))
            if mapping.shape is SqliteShape.DATA:
                found.update(self._read_data_rows(mapping, chunk, marks, where, key_of))
            elif mapping.shape is SqliteShape.GROUPED:
                rows = self.db.query(
                    f"{_group_select(mapping.table)} WHERE session_id IN ({marks}) AND ({where})",
                    chunk,
                )
                for sid, (ms, data) in self._groups(mapping, rows).items():
                    found[sid] = self._parsed(
                        key_of[sid], FileStamp(ms * 1_000_000, len(data)), data
                    )
            else:
                cols = self._columns(table, schema)
                rows = self.db.query(
                    f"SELECT {', '.join(cols)} FROM {mapping.table} "
                    f"WHERE id IN ({marks}) AND ({where})",
                    chunk,
                )
                build = _rebuild(mapping)
                for r in rows:
                    record = dict(zip(cols, r, strict=True))
                    data = orjson.dumps(build(record))
                    rid = str(record["id"])
                    found[rid] = self._parsed(key_of[rid], _columns_stamp(record, data), data)
        return [found.get(k.record_id) or self._decided(k, Found.GONE) for k in keys]

    def _read_data_rows(
        self,
        mapping: SqliteTable,
        chunk: list[str],
        marks: str,
        where: str,
        key_of: Mapping[str, FileKey],
    ) -> dict[str, FileRead]:
        id_columns = ", ".join(column for _, column in mapping.ids)
        rows = self.db.query(
            f"SELECT {id_columns}, time_updated, {mapping.stamp_sql}, "
            "length(CAST(data AS BLOB)), "
            "CASE WHEN length(CAST(data AS BLOB)) > ? THEN NULL ELSE data END "
            f"FROM {mapping.table} WHERE id IN ({marks}) AND ({where})",
            [self._config.max_record_bytes, *chunk],
        )
        out: dict[str, FileRead] = {}
        for *id_values, updated, below_ms, size, data in rows:
            ids = dict(zip((name for name, _ in mapping.ids), id_values, strict=True))
            rid = str(ids["id"])
            key = key_of[rid]
            stamp = FileStamp(int(updated or 0) * 1_000_000 + int(below_ms or 0), int(size or 0))
            if data is None:
                failure = too_large(stamp.size, self._config.max_record_bytes)
                out[rid] = self._failed(key, stamp, failure)
                continue
            rebuilt = data_record(data, ids, mapping.transform)
            if rebuilt is None:  # parse the stored text itself, to say why it is no object
                rebuilt = data if isinstance(data, bytes) else str(data).encode("utf-8", "replace")
            out[rid] = self._parsed(key, stamp, rebuilt)
        return out

    # --- outcomes ------------------------------------------------------------------------

    def _parsed(self, key: FileKey, stamp: FileStamp, data: bytes) -> FileRead:
        result = parse(key, data, self._config.max_record_bytes)
        if isinstance(result, ParsedFile):
            status, _ = decide(Found.PARSED, self._situation)
            return FileRead(key, status, stamp, content_hash(data), result)
        return self._failed(key, stamp, result, content_hash(data))

    def _failed(
        self, key: FileKey, stamp: FileStamp, failure: Failure, digest: str | None = None
    ) -> FileRead:
        # A committed row never heals by itself (no age): unlike a file mid-write, an error.
        situation = replace(self._situation, reason=failure.reason)
        status, retry = decide(Found.FAILED, situation)
        return FileRead(key, status, stamp, digest, message=failure.describe(), retry_in_s=retry)

    def _decided(self, key: FileKey, found: Found, message: str | None = None) -> FileRead:
        status, retry = decide(found, self._situation)
        return FileRead(key, status, message=message, retry_in_s=retry)

    def _unavailable(
        self, keys: Sequence[FileKey], state: SourceState, message: str
    ) -> list[FileRead]:
        # Busy is retried soon; an unknown schema or a missing file waits for the reconciler,
        # which retries pending rows once the database answers again.
        found = Found.STORE_BUSY if state is SourceState.BUSY else Found.STORE_UNAVAILABLE
        return [self._decided(k, found, f"database {state}: {message}") for k in keys]


def _columns_stamp(record: Mapping[str, Any], data: bytes) -> FileStamp:
    """time_updated plus, below the millisecond, a digest of the rebuilt record: OpenCode
    changes some columns (a session's usage) without bumping time_updated."""
    ms = int(record["time_updated"] or 0)
    return FileStamp(ms * 1_000_000 + zlib.crc32(data) % 1_000_000, len(data))


def _rebuild(mapping: SqliteTable) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    assert mapping.rebuild is not None, f"{mapping.table} has no rebuilder"
    return mapping.rebuild


def _group_select(table: str) -> str:
    return (
        f"SELECT rowid, session_id, position, content, status, priority, time_updated FROM {table}"
    )
