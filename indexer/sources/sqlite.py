"""OpenCode ≥ 1.2's SQLite store (`opencode.db`) as a second change source: each row is a key
such as `sqlite:opencode.db:part/<id>`, read, rebuilt the way OpenCode rebuilds it, and parsed by
the same record code as the JSON files. Never writes to that database, never creates it, and
never holds a read transaction longer than one short query: a long reader would stop OpenCode's
WAL checkpoints.

Three ways rows reach the pipeline:
- the fast path: a watch on the database's main file and `-wal` wakes a poller, which asks each
  table for rows whose `time_updated` reached its cursor (minus a small overlap for equal
  timestamps) and submits the ones it has not submitted at that version yet. Parts and messages
  are updated in place, so the cursor is `time_updated`, never `time_created`; to stay cheap on a
  large store, those two tables are only scanned over their newest rows (by rowid);
- the reconciler: `stamps()` gives every row's (path, time_updated, size) for the periodic diff
  with file_index, which finds whatever the fast path missed and the rows OpenCode deleted;
- `read()`: the processor's read of a batch's keys, one short `IN (...)` query per table.

A database that is locked, missing or mid-migration is retried with backoff and reported as such;
while it is unavailable `stamps()` returns None, so none of its rows is judged deleted. A
database whose tables differ from OpenCode 1.2's (OpenCode 2's `session_v2`, a missing `data`
column) is named once in the log and skipped; the JSON files keep being indexed.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from indexer.config import process_env
from indexer.kinds import (
    SOURCE_PREFIX_PATTERN,
    STORE_1X,
    FileKey,
    SqliteShape,
    SqliteTable,
    is_source_path,
    sqlite_tables,
)
from indexer.outcome import (
    Failure,
    FileRead,
    FileStamp,
    FileStatus,
    Found,
    ParsedFile,
    RetryPolicy,
    Situation,
    decide,
)
from indexer.pipeline.accumulator import Trigger
from indexer.rebuild import data_record
from indexer.records import DEFAULT_MAX_FILE_BYTES, content_hash, parse, too_large
from indexer.sources.base import Submit
from indexer.store.logs import raise_watermarks, read_watermarks

log = logging.getLogger(__name__)

ENV_DB = "OPENCODE_DB"

TABLES_1X = sqlite_tables(STORE_1X)
"""OpenCode 1.2's tables this source reads: name → (kind, mapping)."""
SUCCESSOR_TABLES = ("session_v2", "session_message")
"""Tables of OpenCode 2's store: a database holding them is not the schema this code knows."""


class SourceState(enum.StrEnum):
    STARTING = "starting"
    OK = "ok"
    BUSY = "busy"
    """Locked or busy (a writer holds it, or a migration runs): retried with backoff."""
    MISSING = "missing"
    INITIALIZING = "initializing"
    """The file exists but holds no tables yet."""
    UNKNOWN_SCHEMA = "unknown_schema"
    UNREADABLE = "unreadable"


class _Unavailable(Exception):
    def __init__(self, state: SourceState, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass(frozen=True, slots=True)
class SqliteSourceConfig:
    overlap_ms: int = 2_000
    """The fast path re-asks for rows this much older than its cursor (equal timestamps, and
    transactions that committed a little after the clock they stamped)."""
    poll_interval_s: float = 1.0
    """A poll even without a file event (events on some filesystems never come)."""
    min_poll_gap_s: float = 0.05
    """At most one poll per this long while events keep coming."""
    tail_rows: int = 10_000
    """At most this many newest rows of message and part are scanned per poll..."""
    tail_horizon_s: float = 600.0
    """...and of those, only the rows inserted in the last this long (our clock). Older rows
    updated in place are found by the reconciler."""
    busy_timeout_ms: int = 100
    retry_base_s: float = 0.1
    retry_max_s: float = 5.0
    max_record_bytes: int = DEFAULT_MAX_FILE_BYTES
    chunk_ids: int = 500
    """Ids per `IN (...)` query."""
    chunk_rows: int = 20_000
    """Rows per query of a full scan: each chunk is its own short read transaction."""


# --- discovery -------------------------------------------------------------------------------


def discover_databases(
    storage_root: Path, explicit: Path | None = None, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Return OpenCode's databases: --opencode-db, else $OPENCODE_DB, else every `opencode*.db`
    beside the storage folder (`opencode.db`, `opencode-<channel>.db`), opencode.db first.

    An explicit or $OPENCODE_DB path is returned even when it does not exist yet (the source
    then says so); a relative $OPENCODE_DB is taken inside OpenCode's data folder.
    """
    env = process_env() if env is None else env
    data_dir = Path(storage_root).expanduser().parent
    if explicit:
        return [Path(explicit).expanduser()]
    if env.get(ENV_DB):
        path = Path(env[ENV_DB]).expanduser()
        return [path if path.is_absolute() else data_dir / path]
    try:
        found = [p for p in data_dir.glob("opencode*.db") if p.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda p: (p.name != "opencode.db", p.name))


def source_prefix(db_path: Path, taken: Iterable[str] = ()) -> str:
    """`sqlite:<file name>:`, made unique among `taken` by a short hash of the full path.

    Always starts with `sqlite:` (the reconciler's namespace pattern is `^[a-z]+:`) and holds no
    quote, slash or colon of its own, so it is safe inside SQL literals and paths.
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", db_path.name) or "db"
    prefix = f"sqlite:{name}:"
    if prefix in set(taken):
        digest = hashlib.blake2b(os.fsencode(db_path.absolute()), digest_size=3).hexdigest()
        prefix = f"sqlite:{name}~{digest}:"
    return prefix


def make_sources(
    databases: Sequence[Path],
    storage_root: Path,
    *,
    index: Callable[[], duckdb.DuckDBPyConnection] | None = None,
    config: SqliteSourceConfig | None = None,
) -> list[SqliteSource]:
    """One SqliteSource per database, each with its own prefix."""
    sources: list[SqliteSource] = []
    seen: set[Path] = set()
    for path in databases:
        ident = path.absolute()
        if ident in seen:
            continue
        seen.add(ident)
        prefix = source_prefix(path, [s.prefix for s in sources])
        sources.append(SqliteSource(path, storage_root, prefix=prefix, index=index, config=config))
    return sources


# --- rebuilding records the way OpenCode does ------------------------------------------------


# --- the source ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Schema:
    version: int
    columns: dict[str, tuple[str, ...]]
    state: SourceState
    message: str


class _DbEvents(FileSystemEventHandler):
    """Wakes the poller when the database's main file or its WAL changes (never the -shm,
    which readers touch too)."""

    def __init__(self, names: frozenset[str], wake: Callable[[], None]) -> None:
        super().__init__()
        self._names = names
        self._wake = wake
        self.events = 0

    def on_any_event(self, event: FileSystemEvent) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and os.path.basename(os.fsdecode(path)) in self._names:
                self.events += 1
                self._wake()
                return


class SqliteSource:
    """A ChangeSource over one OpenCode database. read() and stamps() are safe from any thread
    (each thread gets its own read-only connection); start() and stop() from one thread."""

    def __init__(
        self,
        db_path: Path,
        storage_root: Path | None = None,
        *,
        prefix: str | None = None,
        index: Callable[[], duckdb.DuckDBPyConnection] | None = None,
        config: SqliteSourceConfig | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db_path = Path(db_path).expanduser()
        self.storage_root = storage_root
        self.prefix = prefix or source_prefix(self.db_path)
        if not is_source_path(self.prefix) or "'" in self.prefix:
            raise ValueError(f"a source prefix must start with [a-z]+: ({self.prefix!r})")
        self.name = self.prefix.rstrip(":")
        self.config = config or SqliteSourceConfig()
        self._situation = Situation(RetryPolicy(self.config.retry_base_s, self.config.retry_max_s))
        self._index = index
        self._monotonic = monotonic
        self._local = threading.local()
        self._lock = threading.Lock()
        self._schema: _Schema | None = None
        self._state = SourceState.STARTING
        self._message = ""
        self._logged: str | None = None
        self._committed: dict[str, int] = {}
        self._stamped_max: dict[str, int] = {}
        self._rows: dict[str, int] = {}
        self._submit: Submit | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        self._handler: _DbEvents | None = None
        # Fast-path state, owned by the poller thread.
        self._cursor: dict[str, int] = {}
        self._seen: dict[str, dict[str, tuple[int, int]]] = {}
        self._floor: dict[str, int] = {}
        self._rowid_log: dict[str, deque[tuple[float, int]]] = {}
        self._primed = False
        self._primed_inode: int | None = None
        self.polls = 0
        self.keys_submitted = 0
        self.failures = 0
        self.last_poll_ms: float | None = None

    def __repr__(self) -> str:
        return f"SqliteSource({str(self.db_path)!r}, prefix={self.prefix!r})"

    # --- ChangeSource --------------------------------------------------------------------

    def key_for(self, path: str) -> FileKey | None:
        if not path.startswith(self.prefix):
            return None
        table, sep, record_id = path[len(self.prefix) :].partition("/")
        mapped = TABLES_1X.get(table)
        if not sep or mapped is None or not record_id or "/" in record_id:
            return None
        return FileKey(path, mapped[0], record_id)

    def stamps(self) -> pa.Table | None:
        """(path, mtime_ns = time_updated ms * 1e6, size) of every row; None while unavailable."""
        try:
            schema = self._usable_schema()
            paths: list[str] = []
            mtimes: list[int] = []
            sizes: list[int] = []
            counts: dict[str, int] = {}
            maxes: dict[str, int] = {}
            for table in TABLES_1X:
                rows = self._stamp_rows(table, schema)
                counts[table] = len(rows)
                for path, updated_ms, size in rows:
                    paths.append(path)
                    mtimes.append(updated_ms * 1_000_000)
                    sizes.append(size)
                    if updated_ms > maxes.get(table, -1):
                        maxes[table] = updated_ms
        except _Unavailable as exc:
            self._set_state(exc.state, exc.message)
            return None
        except sqlite3.Error as exc:
            self._set_state(*_classify(exc))
            return None
        with self._lock:
            self._rows = counts
            self._stamped_max = maxes
        self._set_state(SourceState.OK, "")
        return pa.table(
            {
                "path": pa.array(paths, pa.string()),
                "mtime_ns": pa.array(mtimes, pa.int64()),
                "size": pa.array(sizes, pa.int64()),
            }
        )

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
            by_table.setdefault(key.rel_path[len(self.prefix) :].split("/", 1)[0], []).append(key)
        for table, table_keys in by_table.items():
            try:
                schema = self._usable_schema()
                out.extend(self._read_table(table, table_keys, schema))
            except _Unavailable as exc:
                self._set_state(exc.state, exc.message)
                out.extend(self._unavailable(table_keys, exc.state, exc.message))
            except sqlite3.Error as exc:
                state, message = _classify(exc)
                self._set_state(state, message)
                out.extend(self._unavailable(table_keys, state, message))
        return out

    def write_progress(self, conn: duckdb.DuckDBPyConnection, reads: Sequence[FileRead]) -> None:
        """Raise each table's watermark to the largest time_updated of the rows this batch
        commits (indexed, or in error: either way read at that version)."""
        maxes: dict[str, int] = {}
        for r in reads:
            if r.stamp is None or r.status not in (FileStatus.INDEXED, FileStatus.ERROR):
                continue
            table = r.key.rel_path[len(self.prefix) :].split("/", 1)[0]
            ms = r.stamp.mtime_ns // 1_000_000
            if ms > maxes.get(table, -1):
                maxes[table] = ms
        if not maxes:
            return
        raise_watermarks(conn, self.prefix, maxes)
        with self._lock:
            for table, ms in maxes.items():
                self._committed[table] = max(self._committed.get(table, ms), ms)

    def start(self, submit: Submit) -> None:
        """Read the committed watermarks, then watch the database and poll on each change."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._submit = submit
        self._stop.clear()
        self._wake.clear()
        self._primed = False
        self._load_committed()
        self._start_observer()
        self._thread = threading.Thread(target=self._run, name=f"ocindex-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and polling; read() and stamps() keep working (the writer drains)."""
        self._stop.set()
        self._wake.set()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(5)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def describe(self) -> dict[str, object]:
        with self._lock:
            committed = dict(self._committed)
            rows = dict(self._rows)
            state, message = self._state, self._message
        return {
            "name": self.name,
            "kind": "sqlite",
            "path": str(self.db_path),
            "prefix": self.prefix,
            "state": str(state),
            "message": message,
            "watching": self._thread is not None and self._thread.is_alive(),
            "rows": rows,
            "watermarks": committed,
            "cursor": dict(self._cursor),
            "polls": self.polls,
            "keys_submitted": self.keys_submitted,
            "failures": self.failures,
            "last_poll_ms": self.last_poll_ms,
            "events": self._handler.events if self._handler is not None else 0,
        }

    def probe(self) -> dict[str, object]:
        """Check the schema and count rows per table now (for `ocindex status`), then describe."""
        try:
            self._usable_schema()
            counts = {}
            for table, (_, mapping) in TABLES_1X.items():  # a todo key is a session's whole list
                grouped = mapping.shape is SqliteShape.GROUPED
                what = "DISTINCT session_id" if grouped else "*"
                counts[table] = int(self._query(f"SELECT count({what}) FROM {table}")[0][0])
        except _Unavailable as exc:
            self._set_state(exc.state, exc.message)
        except sqlite3.Error as exc:
            self._set_state(*_classify(exc))
        else:
            with self._lock:
                self._rows = counts
            self._set_state(SourceState.OK, "")
        return self.describe()

    @property
    def state(self) -> SourceState:
        with self._lock:
            return self._state

    # --- connections and schema --------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """This thread's read-only connection (reopened when the file was replaced)."""
        try:
            inode = os.stat(self.db_path).st_ino
        except FileNotFoundError:
            self._close_local()
            raise _Unavailable(
                SourceState.MISSING, f"{self.db_path} does not exist (yet)"
            ) from None
        except OSError as exc:
            raise _Unavailable(SourceState.UNREADABLE, f"{self.db_path}: {exc.strerror}") from None
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.inode == inode:
            return conn
        self._close_local()
        uri = self.db_path.absolute().as_uri() + "?mode=ro"
        # mode=ro: never creates the file, never writes it. isolation_level=None: no implicit
        # BEGIN, so each SELECT's read transaction ends with the statement.
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=self.config.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA query_only = ON")
        local.conn, local.inode = conn, inode
        return conn

    def _close_local(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """One statement, fetched whole and closed: its read transaction ends here."""
        cursor = self._connect().execute(sql, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def _usable_schema(self) -> _Schema:
        """The schema if this code knows it; raises _Unavailable otherwise. Re-checked only
        when SQLite's schema_version changes."""
        version = int(self._query("PRAGMA schema_version")[0][0])
        with self._lock:
            schema = self._schema
        if schema is None or schema.version != version:
            schema = self._inspect(version)
            with self._lock:
                self._schema = schema
        if schema.state is not SourceState.OK:
            raise _Unavailable(schema.state, schema.message)
        return schema

    def _inspect(self, version: int) -> _Schema:
        tables = {
            str(r[0]) for r in self._query("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        columns: dict[str, tuple[str, ...]] = {}
        for table in TABLES_1X:
            if table in tables:
                columns[table] = tuple(
                    str(r[1]) for r in self._query(f"PRAGMA table_info({table})")
                )
        if not tables:
            return _Schema(
                version,
                columns,
                SourceState.INITIALIZING,
                f"{self.db_path.name} has no tables yet (OpenCode may be creating it): waiting",
            )
        found: list[str] = []
        successors = [t for t in SUCCESSOR_TABLES if t in tables]
        if successors:
            found.append(f"tables {', '.join(successors)} (OpenCode 2's layout)")
        missing_tables = [t for t in TABLES_1X if t not in tables]
        if missing_tables:
            found.append(f"no table {', '.join(missing_tables)}")
        for table, have in columns.items():
            lacking = [c for c in TABLES_1X[table][1].required if c not in have]
            if lacking:
                found.append(f"{table} without column {', '.join(lacking)}")
        if found:
            others = sorted(tables - set(TABLES_1X) - set(SUCCESSOR_TABLES))
            shown = f"; other tables: {', '.join(others[:8])}" if others else ""
            return _Schema(
                version,
                columns,
                SourceState.UNKNOWN_SCHEMA,
                f"{self.db_path} has an unknown schema: found {'; '.join(found)}{shown}. "
                "ocindex reads OpenCode 1.2's tables (project, session, message, part, todo); "
                "this database is skipped, the JSON files are still indexed",
            )
        return _Schema(version, columns, SourceState.OK, "")

    def _set_state(self, state: SourceState, message: str) -> None:
        """Record the state; log one line per distinct condition, not one per retry."""
        with self._lock:
            self._state, self._message = state, message
            before, self._logged = self._logged, None if state is SourceState.OK else message
        if state is SourceState.OK and before is not None:
            log.info("%s: readable again", self.name)
        elif state is not SourceState.OK and message != before:
            level = logging.WARNING if state is SourceState.UNKNOWN_SCHEMA else logging.INFO
            log.log(level, "%s: %s: %s", self.name, state, message)

    def _unavailable(
        self, keys: Sequence[FileKey], state: SourceState, message: str
    ) -> list[FileRead]:
        # Busy is retried soon; an unknown schema or a missing file waits for the reconciler,
        # which retries pending rows once the database answers again.
        found = Found.STORE_BUSY if state is SourceState.BUSY else Found.STORE_UNAVAILABLE
        return [self._decided(k, found, f"database {state}: {message}") for k in keys]

    # --- reading rows ------------------------------------------------------------------------

    def _columns(self, table: str, schema: _Schema) -> list[str]:
        have = schema.columns[table]
        mapping = TABLES_1X[table][1]
        wanted = mapping.required + mapping.optional
        return [c for c in dict.fromkeys(wanted) if c in have]

    def _stamp_rows(self, table: str, schema: _Schema) -> list[tuple[str, int, int]]:
        """(path, time_updated ms, size) of every row of one table, in rowid chunks."""
        prefix = f"{self.prefix}{table}/"
        mapping = TABLES_1X[table][1]
        if mapping.shape is SqliteShape.DATA:
            rows = self._chunked(
                f"SELECT rowid, id, time_updated, length(CAST(data AS BLOB)) FROM {table}"
            )
            return [(prefix + r[1], int(r[2] or 0), int(r[3] or 0)) for r in rows]
        if mapping.shape is SqliteShape.GROUPED:
            groups = self._groups(mapping, self._chunked(_group_select(table)))
            return [(prefix + sid, ms, len(data)) for sid, (ms, data) in groups.items()]
        cols = self._columns(table, schema)
        build = _rebuild(mapping)
        out = []
        for r in self._chunked(f"SELECT rowid, {', '.join(cols)} FROM {table}"):
            record = dict(zip(cols, r[1:], strict=True))
            size = len(orjson.dumps(build(record)))  # the size read() records, exactly
            out.append((prefix + str(record["id"]), int(record["time_updated"] or 0), size))
        return out

    def _chunked(self, select: str) -> list[tuple[Any, ...]]:
        """A full scan as a series of short queries (keyset on rowid), so no read transaction
        lasts longer than one chunk."""
        out: list[tuple[Any, ...]] = []
        after = -(2**63)
        while True:
            rows = self._query(
                f"{select} WHERE rowid > ? ORDER BY rowid LIMIT ?", [after, self.config.chunk_rows]
            )
            out.extend(rows)
            if len(rows) < self.config.chunk_rows:
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

    def _read_table(self, table: str, keys: Sequence[FileKey], schema: _Schema) -> list[FileRead]:
        ids = list(dict.fromkeys(k.record_id for k in keys))
        mapping = TABLES_1X[table][1]
        found: dict[str, FileRead] = {}
        key_of = {k.record_id: k for k in keys}
        step = self.config.chunk_ids
        for i in range(0, len(ids), step):
            chunk = ids[i : i + step]
            marks = ", ".join("?" * len(chunk))
            if mapping.shape is SqliteShape.DATA:
                found.update(self._read_data_rows(mapping, chunk, marks, key_of))
            elif mapping.shape is SqliteShape.GROUPED:
                rows = self._query(f"{_group_select(table)} WHERE session_id IN ({marks})", chunk)
                for sid, (ms, data) in self._groups(mapping, rows).items():
                    found[sid] = self._parsed(key_of[sid], ms, len(data), data)
            else:
                cols = self._columns(table, schema)
                rows = self._query(
                    f"SELECT {', '.join(cols)} FROM {table} WHERE id IN ({marks})", chunk
                )
                build = _rebuild(mapping)
                for r in rows:
                    record = dict(zip(cols, r, strict=True))
                    data = orjson.dumps(build(record))
                    rid = str(record["id"])
                    found[rid] = self._parsed(
                        key_of[rid], int(record["time_updated"] or 0), len(data), data
                    )
        return [found.get(k.record_id) or self._decided(k, Found.GONE) for k in keys]

    def _read_data_rows(
        self, mapping: SqliteTable, chunk: list[str], marks: str, key_of: Mapping[str, FileKey]
    ) -> dict[str, FileRead]:
        id_columns = ", ".join(column for _, column in mapping.ids)
        rows = self._query(
            f"SELECT {id_columns}, time_updated, length(CAST(data AS BLOB)), "
            f"CASE WHEN length(CAST(data AS BLOB)) > ? THEN NULL ELSE data END "
            f"FROM {mapping.table} WHERE id IN ({marks})",
            [self.config.max_record_bytes, *chunk],
        )
        out: dict[str, FileRead] = {}
        for *id_values, updated, size, data in rows:
            ids = dict(zip((name for name, _ in mapping.ids), id_values, strict=True))
            rid = str(ids["id"])
            key = key_of[rid]
            ms, size = int(updated or 0), int(size or 0)
            if data is None:
                failure = too_large(size, self.config.max_record_bytes)
                out[rid] = self._failed(key, FileStamp(ms * 1_000_000, size), failure)
                continue
            rebuilt = data_record(data, ids)
            if rebuilt is None:  # parse the stored text itself, to say why it is no object
                rebuilt = data if isinstance(data, bytes) else str(data).encode("utf-8", "replace")
            out[rid] = self._parsed(key, ms, size, rebuilt)
        return out

    def _parsed(self, key: FileKey, updated_ms: int, size: int, data: bytes) -> FileRead:
        stamp = FileStamp(updated_ms * 1_000_000, size)
        result = parse(key, data, self.config.max_record_bytes)
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

    # --- the fast path -----------------------------------------------------------------------

    def _load_committed(self) -> None:
        if self._index is None:
            return
        try:
            cursor = self._index()
            try:
                rows = read_watermarks(cursor, self.prefix)
            finally:
                cursor.close()
        except duckdb.Error as exc:
            log.debug("%s: no watermarks read: %s", self.name, exc)
            return
        with self._lock:
            for table, ms in rows.items():
                self._committed[table] = max(self._committed.get(table, 0), ms)

    def _start_observer(self) -> None:
        folder = self.db_path.absolute().parent
        if not folder.is_dir():
            return  # polled on the interval until it exists
        names = frozenset({self.db_path.name, self.db_path.name + "-wal"})
        self._handler = _DbEvents(names, self._wake.set)
        observer = Observer()
        try:
            observer.schedule(
                self._handler,
                os.fspath(folder),
                recursive=False,
                event_filter=[
                    FileModifiedEvent,
                    FileCreatedEvent,
                    FileClosedEvent,
                    FileMovedEvent,
                    FileDeletedEvent,
                ],
            )
            observer.daemon = True
            observer.start()
        except OSError as exc:
            log.warning("%s: cannot watch %s (%s): polling every %.1fs", self.name, folder, exc,
                        self.config.poll_interval_s)  # fmt: skip
            return
        self._observer = observer

    def _run(self) -> None:
        failures = 0
        last = -1e9
        while not self._stop.is_set():
            gap = self.config.min_poll_gap_s - (self._monotonic() - last)
            if gap > 0 and self._stop.wait(gap):
                return
            self._wake.clear()
            last = self._monotonic()
            try:
                self.poll_once()
            except _Unavailable as exc:
                self._set_state(exc.state, exc.message)
                failures += 1
            except sqlite3.Error as exc:
                self._set_state(*_classify(exc))
                failures += 1
            else:
                failures = 0
            if failures:
                self.failures += 1
                if self.state is not SourceState.BUSY:
                    self._primed = False  # replaced, recreated or migrated: start over
                delay = self.config.retry_base_s * 2 ** min(failures, 16)
                self._stop.wait(min(delay, self.config.retry_max_s))  # events do not cut it short
                continue
            self._wake.wait(self.config.poll_interval_s)

    def poll_once(self) -> list[FileKey]:
        """Ask each table for rows changed since its cursor; submit and return their keys."""
        started = time.perf_counter()
        self._usable_schema()
        if not self._primed or self._local.inode != self._primed_inode:
            self._prime()  # first poll, or the file was replaced (deleted and recreated)
        keys: list[FileKey] = []
        now = self._monotonic()
        for table, (kind, mapping) in TABLES_1X.items():
            low = self._cursor.get(table, 0) - self.config.overlap_ms
            if mapping.shape is SqliteShape.DATA:
                self._advance_floor(table, now)
                rows = self._query(
                    f"SELECT id, time_updated, length(CAST(data AS BLOB)) FROM {table} "
                    "WHERE rowid > ? AND time_updated >= ?",
                    [self._floor[table], low],
                )
            else:
                rows = self._query(_changed_select(mapping), [low])
            seen = self._seen.setdefault(table, {})
            top = self._cursor.get(table, 0)
            for rid, updated, size in rows:
                version = (int(updated or 0), int(size or 0))
                if seen.get(rid) == version:
                    continue  # submitted at this version already
                seen[rid] = version
                keys.append(FileKey(f"{self.prefix}{table}/{rid}", kind, str(rid)))
                top = max(top, version[0])
            self._cursor[table] = top
            horizon = top - self.config.overlap_ms
            for rid in [r for r, (t, _) in seen.items() if t < horizon]:
                del seen[rid]
        self.polls += 1
        self.last_poll_ms = (time.perf_counter() - started) * 1000
        self._set_state(SourceState.OK, "")
        if keys and self._submit is not None:
            self.keys_submitted += len(keys)
            self._submit(keys, Trigger.WATCHER)
        return keys

    def _prime(self) -> None:
        """Start the cursors at what is already indexed or submitted: the committed watermark,
        or the newest row the last full scan saw (the startup reconcile submitted the rest)."""
        with self._lock:
            known = {
                t: max(self._committed.get(t, -1), self._stamped_max.get(t, -1)) for t in TABLES_1X
            }
        self._seen.clear()
        now = self._monotonic()
        for table in _tailed():
            top = int(self._query(f"SELECT coalesce(max(rowid), 0) FROM {table}")[0][0])
            self._floor[table] = max(0, top - self.config.tail_rows)
            self._rowid_log[table] = deque([(now, top)])
        for table in TABLES_1X:
            # Nothing known: start from 0, i.e. submit the tail once (bounded by tail_rows).
            self._cursor[table] = max(known[table], 0)
        self._primed, self._primed_inode = True, self._local.inode

    def _advance_floor(self, table: str, now: float) -> None:
        """Keep scanning only rows inserted within the horizon, and at most tail_rows of them."""
        top = int(self._query(f"SELECT coalesce(max(rowid), 0) FROM {table}")[0][0])
        history = self._rowid_log[table]
        if top < history[-1][1]:
            # The newest rows were deleted (a session removed): new rows may reuse their rowids.
            history.clear()
            history.append((now, top))
            self._floor[table] = max(0, top - self.config.tail_rows)
            return
        if history[-1][1] != top:
            history.append((now, top))
        cutoff = now - self.config.tail_horizon_s
        while len(history) >= 2 and history[1][0] <= cutoff:
            history.popleft()
        floor = self._floor[table]
        if history[0][0] <= cutoff:
            floor = max(floor, history[0][1])
        self._floor[table] = max(floor, top - self.config.tail_rows)


def _tailed() -> list[str]:
    """Tables updated in place at a high rate: the fast path scans only their newest rows."""
    return [t for t, (_, m) in TABLES_1X.items() if m.shape is SqliteShape.DATA]


def _rebuild(mapping: SqliteTable) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    assert mapping.rebuild is not None, f"{mapping.table} has no rebuilder"
    return mapping.rebuild


def _group_select(table: str) -> str:
    return (
        f"SELECT rowid, session_id, position, content, status, priority, time_updated FROM {table}"
    )


def _changed_select(mapping: SqliteTable) -> str:
    """The fast path's query for rows (or groups) whose time_updated reached a cursor."""
    if mapping.shape is SqliteShape.GROUPED:
        return (
            f"SELECT session_id, max(time_updated), count(*) FROM {mapping.table} "
            "GROUP BY session_id HAVING max(time_updated) >= ?"
        )
    return (
        f"SELECT id, time_updated, {mapping.change_size_sql} FROM {mapping.table} "
        "WHERE time_updated >= ?"
    )


def _classify(exc: sqlite3.Error) -> tuple[SourceState, str]:
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return SourceState.BUSY, f"{text}: retrying"
    if "no such table" in lowered or "no such column" in lowered:
        return SourceState.BUSY, f"{text} (the schema is changing, a migration?): retrying"
    if "unable to open" in lowered:
        return SourceState.MISSING, f"{text}: retrying"
    return SourceState.UNREADABLE, f"{text}: retrying"


# --- status ----------------------------------------------------------------------------------


def indexed_by_source(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """file_index rows by namespace ('json' for files, else the source prefix) and status."""
    try:
        rows = conn.execute(
            f"SELECT CASE WHEN regexp_matches(file_path, '{SOURCE_PREFIX_PATTERN}') "
            "THEN regexp_extract(file_path, '^([a-z]+:.*:)[a-z_]+/', 1) ELSE 'json' END AS ns, "
            "coalesce(status, 'indexed'), count(*) FROM file_index GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    except duckdb.Error:  # no file_index yet, or a v1-era one without statuses
        return {}
    out: dict[str, dict[str, int]] = {}
    for ns, status, n in rows:
        out.setdefault(str(ns), {})[str(status)] = int(n)
    return out


def watermarks(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    try:
        rows = conn.execute(
            "SELECT source, table_name, time_updated_ms FROM source_watermarks ORDER BY 1, 2"
        ).fetchall()
    except duckdb.Error:
        return {}
    out: dict[str, dict[str, int]] = {}
    for source, table, ms in rows:
        out.setdefault(str(source), {})[str(table)] = int(ms)
    return out


def sources_status(
    conn: duckdb.DuckDBPyConnection | None, databases: Sequence[Path], storage_root: Path
) -> dict[str, Any]:
    """What `ocindex status` says about sources: each database found (probed read-only now),
    and what file_index holds per source."""
    indexed = indexed_by_source(conn) if conn is not None else {}
    marks = watermarks(conn) if conn is not None else {}
    found = []
    for source in make_sources(databases, storage_root):
        info = source.probe()
        info["indexed"] = indexed.get(source.prefix, {})
        info["watermarks"] = marks.get(source.prefix, {})
        found.append(info)
    known = {s["prefix"] for s in found}
    return {
        "json": {"root": str(storage_root), "indexed": indexed.get("json", {})},
        "sqlite": found,
        "other_indexed": {ns: c for ns, c in indexed.items() if ns != "json" and ns not in known},
        "v1_note": V1_NOTE,
    }


V1_NOTE = "v1 reads the JSON files only; OpenCode's SQLite store (1.2+) is indexed by v2 alone"


def _counts(statuses: Mapping[str, int]) -> str:
    main = statuses.get("indexed", 0)
    rest = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s != "indexed" and n)
    return f"{main} indexed" + (f" ({rest})" if rest else "")


def format_sources(status: Mapping[str, Any]) -> list[str]:
    """The text lines of `ocindex status` about sources."""
    lines = [
        f"source json     {status['json']['root']}: {_counts(status['json']['indexed'])}",
    ]
    for found in status["sqlite"]:
        rows = found.get("rows") or {}
        state = str(found["state"])
        what = f"{state}, {sum(rows.values())} rows" if state == "ok" else state
        lines.append(
            f"source sqlite   {found['path']}: {what}; {_counts(found['indexed'])} "
            f"(keys {found['prefix']}…)"
        )
        if found.get("message"):
            lines.append(f"                {found['message']}")
    if not status["sqlite"]:
        lines.append(
            "source sqlite   none found (--opencode-db, $OPENCODE_DB, opencode*.db beside the "
            "storage folder)"
        )
    for ns, statuses in status["other_indexed"].items():
        lines.append(f"indexed earlier {ns} (not found now): {_counts(statuses)}")
    lines.append(f"note            {status['v1_note']}")
    return lines
