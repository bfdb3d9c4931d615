"""SqliteSource, the ChangeSource over one OpenCode database: its connection, reader and poller
composed, with the watermarks it commits. Never writes the database or reaches into the pipeline."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from indexer.kinds import FileKey, FileKind, is_source_path
from indexer.outcome import FileRead, FileStatus
from indexer.pipeline.accumulator import Trigger
from indexer.sources.base import Submit
from indexer.sources.sqlite.config import SqliteSourceConfig
from indexer.sources.sqlite.connection import (
    Schema,
    SourceState,
    Unavailable,
)
from indexer.sources.sqlite.discovery import source_prefix
from indexer.sources.sqlite.layout import ALL_RECORDS
from indexer.sources.sqlite.poller import Poller
from indexer.sources.sqlite.rows import StoreRows
from indexer.store.logs import raise_watermarks, read_watermarks

log = logging.getLogger(__name__)

HISTORY_KINDS = frozenset(
    {FileKind.PROJECT, FileKind.SESSION, FileKind.MESSAGE, FileKind.PART, FileKind.TODO}
)
"""What OpenCode keeps in its store once it has one: their JSON files are history (session_diff
stays JSON)."""
_RECHECK_S = 5.0


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
        self._index = index
        self._lock = threading.Lock()
        self._committed: dict[str, int] = {}
        self._stamped_max: dict[str, int] = {}
        self._rows: dict[str, int] = {}
        self._submit: Submit | None = None
        self.keys_submitted = 0
        self._monotonic = monotonic
        self._authoritative = False
        self._authority_checked = -1e18
        self._rows_here = StoreRows(self.db_path, self.name, self.prefix, self.config)
        self._reader = self._rows_here.open()
        self._db = self._reader.db
        self._poller = Poller(
            self._db,
            self.prefix,
            self.config,
            known=self._known,
            deliver=self._deliver,
            monotonic=monotonic,
        )

    def __repr__(self) -> str:
        return f"SqliteSource({str(self.db_path)!r}, prefix={self.prefix!r})"

    # --- ChangeSource --------------------------------------------------------------------

    def key_for(self, path: str) -> FileKey | None:
        return self._reader.key_for(path)

    def stamps(self) -> pa.Table | None:
        """(path, mtime_ns = time_updated ms * 1e6, size) of every row; None while unavailable."""
        try:
            found = self._reader.stamps()
        except (Unavailable, sqlite3.Error) as exc:
            self._db.fail(exc)
            return None
        with self._lock:
            self._rows = found.counts
            self._stamped_max = found.newest
        self._db.set_state(SourceState.OK, "")
        return found.table

    def read(self, keys: Sequence[FileKey]) -> list[FileRead]:
        """One FileRead per key: INDEXED, ERROR (a row whose data is not a JSON object), DELETED
        (no such row), or PENDING while the database cannot be read (never DELETED then)."""
        return self._reader.read(keys)

    def portable_reader(self) -> StoreRows:
        return self._rows_here

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
        if self._poller.watching:
            return
        self._submit = submit
        self._load_committed()
        self._poller.start()

    def stop(self) -> None:
        """Stop watching and polling; read() and stamps() keep working (the writer drains)."""
        self._poller.stop()

    def supersedes(self) -> frozenset[FileKind]:
        """HISTORY_KINDS once the store holds a session (then for good: a store never hands its
        records back to JSON files), else nothing. Asked at most every few seconds."""
        with self._lock:
            if self._authoritative:
                return HISTORY_KINDS
            if self._monotonic() < self._authority_checked + _RECHECK_S:
                return frozenset()
            self._authority_checked = self._monotonic()
        try:
            holds = self._reader.holds_sessions()
        except (Unavailable, sqlite3.Error):
            return frozenset()
        if not holds:
            return frozenset()
        with self._lock:
            self._authoritative = True
        log.info("%s holds sessions: its records win over any JSON copy", self.name)
        return HISTORY_KINDS

    def describe(self) -> dict[str, object]:
        with self._lock:
            committed = dict(self._committed)
            rows = dict(self._rows)
        state, message = self._db.condition()
        return {
            "name": self.name,
            "kind": "sqlite",
            "path": str(self.db_path),
            "prefix": self.prefix,
            "state": str(state),
            "message": message,
            "watching": self._poller.watching,
            "rows": rows,
            "watermarks": committed,
            "cursor": self._poller.cursors(),
            "polls": self.polls,
            "keys_submitted": self.keys_submitted,
            "failures": self.failures,
            "last_poll_ms": self.last_poll_ms,
            "events": self._poller.events,
            "generation": self._db.generation,
            "authoritative": self._authoritative,
        }

    # --- beyond the protocol -------------------------------------------------------------

    def probe(self) -> dict[str, object]:
        """Check the schema and count rows per table now (for `ocindex status`), then describe."""
        try:
            counts = self._reader.count_rows()
        except (Unavailable, sqlite3.Error) as exc:
            self._db.fail(exc)
        else:
            with self._lock:
                self._rows = counts
            self._db.set_state(SourceState.OK, "")
        return self.describe()

    def poll_once(self) -> list[FileKey]:
        """Ask each table for rows changed since its cursor; submit and return their keys."""
        return self._poller.poll_once()

    @property
    def state(self) -> SourceState:
        return self._db.state

    @property
    def polls(self) -> int:
        return self._poller.polls

    @property
    def failures(self) -> int:
        """Polls that found the database unreadable."""
        return self._poller.failures

    @property
    def last_poll_ms(self) -> float | None:
        return self._poller.last_poll_ms

    @property
    def _schema(self) -> Schema | None:
        """The tables as last inspected; None makes the next check read the database."""
        return self._db.schema

    @_schema.setter
    def _schema(self, schema: Schema | None) -> None:
        self._db.schema = schema

    def _connect(self) -> sqlite3.Connection:
        """This thread's read-only connection."""
        return self._db.connect()

    # --- what the poller starts from and where its keys go -------------------------------

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

    def _known(self) -> dict[str, int]:
        with self._lock:
            return {
                t: max(self._committed.get(t, -1), self._stamped_max.get(t, -1))
                for t in ALL_RECORDS
            }

    def _deliver(self, keys: list[FileKey]) -> None:
        if self._submit is not None:
            self.keys_submitted += len(keys)
            self._submit(keys, Trigger.WATCHER)


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
