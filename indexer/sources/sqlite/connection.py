"""One OpenCode database, read-only: a connection per thread, one-statement queries, the schema
check and the source's state. Never writes or creates it; no read transaction outlives a query."""

from __future__ import annotations

import enum
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.sources.sqlite.layout import ALL_RECORDS, Layout, Unknown, detect

log = logging.getLogger(__name__)

_KNOWN_TABLES = frozenset({m.table for _, m in ALL_RECORDS.values()} | {"kv"})


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


class Unavailable(Exception):
    """The database cannot be read now, and why (its state and a message for the log)."""

    def __init__(self, state: SourceState, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass(frozen=True, slots=True)
class Schema:
    version: int
    """SQLite's schema_version when the tables were inspected."""
    columns: dict[str, tuple[str, ...]]
    """The columns of each known table the database has."""
    state: SourceState
    message: str
    layout: Layout | None = None
    """Which generation the file is and the records it holds (None unless state is OK)."""

    @property
    def records(self) -> Layout:
        assert self.layout is not None, "a usable schema has a layout"
        return self.layout


def classify(exc: sqlite3.Error) -> tuple[SourceState, str]:
    """The state an error of SQLite puts the source in, and the message to report."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return SourceState.BUSY, f"{text}: retrying"
    if "no such table" in lowered or "no such column" in lowered:
        return SourceState.BUSY, f"{text} (the schema is changing, a migration?): retrying"
    if "unable to open" in lowered:
        return SourceState.MISSING, f"{text}: retrying"
    return SourceState.UNREADABLE, f"{text}: retrying"


class ReadOnlyDatabase:
    """Read-only access to one SQLite file and its availability state. query() is safe from
    any thread (each thread gets its own connection); the state is guarded by a lock."""

    def __init__(self, db_path: Path, name: str, busy_timeout_ms: int) -> None:
        self.db_path = db_path
        self.name = name
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._schema: Schema | None = None
        self._state = SourceState.STARTING
        self._message = ""
        self._logged: str | None = None
        self._generation = ""

    @property
    def schema(self) -> Schema | None:
        """The tables as last inspected; None makes the next check read the database."""
        with self._lock:
            return self._schema

    @schema.setter
    def schema(self, schema: Schema | None) -> None:
        with self._lock:
            self._schema = schema

    @property
    def state(self) -> SourceState:
        with self._lock:
            return self._state

    def condition(self) -> tuple[SourceState, str]:
        """The state and its message, read together."""
        with self._lock:
            return self._state, self._message

    @property
    def generation(self) -> str:
        """The layout last detected ("1.x", "2.x", "upgraded"; "" before)."""
        with self._lock:
            return self._generation

    @property
    def inode(self) -> int | None:
        """The inode of the file this thread's connection has open (None before it connects)."""
        inode: int | None = getattr(self._local, "inode", None)
        return inode

    # --- connections and queries ---------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """This thread's read-only connection (reopened when the file was replaced)."""
        try:
            st = os.stat(self.db_path)
        except FileNotFoundError:
            self._close_local()
            raise Unavailable(SourceState.MISSING, f"{self.db_path} does not exist (yet)") from None
        except OSError as exc:
            raise Unavailable(SourceState.UNREADABLE, f"{self.db_path}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):  # SQLite's open() of a fifo waits for a writer, forever
            self._close_local()
            raise Unavailable(
                SourceState.UNREADABLE,
                f"{self.db_path} is not a regular file (a folder, fifo, socket or device)",
            )
        inode = st.st_ino
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
            timeout=self._busy_timeout_ms / 1000,
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

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """One statement, fetched whole and closed: its read transaction ends here."""
        cursor = self.connect().execute(sql, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    # --- the schema ----------------------------------------------------------------------

    def usable_schema(self) -> Schema:
        """The schema if this code knows it; raises Unavailable otherwise. Re-checked only
        when SQLite's schema_version changes."""
        version = int(self.query("PRAGMA schema_version")[0][0])
        with self._lock:
            schema = self._schema
        if schema is None or schema.version != version:
            schema = self._inspect(version)
            with self._lock:
                self._schema = schema
        if schema.state is not SourceState.OK:
            raise Unavailable(schema.state, schema.message)
        return schema

    def _inspect(self, version: int) -> Schema:
        tables = {
            str(r[0]) for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        columns: dict[str, tuple[str, ...]] = {}
        for table in sorted(tables & _KNOWN_TABLES):
            columns[table] = tuple(str(r[1]) for r in self.query(f"PRAGMA table_info({table})"))
        if not tables:
            return Schema(
                version,
                columns,
                SourceState.INITIALIZING,
                f"{self.db_path.name} has no tables yet (OpenCode may be creating it): waiting",
            )
        layout = detect({t: columns.get(t, ()) for t in tables})
        if isinstance(layout, Unknown):
            return Schema(
                version,
                columns,
                SourceState.UNKNOWN_SCHEMA,
                f"{self.db_path} has an unknown schema: found {'; '.join(layout.found)}. "
                "ocindex reads OpenCode 1.2-1.18 (session, message, part) and 2.x "
                "(session_v2, session_message) stores; this database is skipped until it "
                "changes, the JSON files are still indexed",
            )
        with self._lock:
            before, self._generation = self._generation, layout.generation
        if layout.generation != before:
            log.info("%s: %s", self.name, layout.describe())
        return Schema(version, columns, SourceState.OK, "", layout)

    # --- the state -----------------------------------------------------------------------

    def set_state(self, state: SourceState, message: str) -> None:
        """Record the state; log one line per distinct condition, not one per retry."""
        with self._lock:
            self._state, self._message = state, message
            before, self._logged = self._logged, None if state is SourceState.OK else message
        if state is SourceState.OK and before is not None:
            log.info("%s: readable again", self.name)
        elif state is not SourceState.OK and message != before:
            level = logging.WARNING if state is SourceState.UNKNOWN_SCHEMA else logging.INFO
            log.log(level, "%s: %s: %s", self.name, state, message)

    def fail(self, exc: Unavailable | sqlite3.Error) -> tuple[SourceState, str]:
        """Record why the database could not be read; return that state and its message."""
        state, message = (exc.state, exc.message) if isinstance(exc, Unavailable) else classify(exc)
        self.set_state(state, message)
        return state, message
