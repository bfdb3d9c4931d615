"""The fast path of one database: a watch on its main file and `-wal` wakes a loop that asks
each table for rows whose `time_updated` reached its cursor and hands their keys on.
Never reads a row's content (the reader does) and never submits to the pipeline itself.

Parts and messages are updated in place, so the cursor is `time_updated`, never
`time_created`; the cursor is re-asked with a small overlap for equal timestamps; to stay cheap
on a large store, the tables of shape DATA are only scanned over their newest rows (by rowid).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

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

from indexer.generations import SqliteShape, SqliteTable
from indexer.kinds import FileKey, FileKind
from indexer.sources.sqlite.config import SqliteSourceConfig
from indexer.sources.sqlite.connection import (
    ReadOnlyDatabase,
    SourceState,
    Unavailable,
)
from indexer.sources.sqlite.layout import Layout

log = logging.getLogger(__name__)


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


class Poller:
    """Finds one database's changed rows. start() and stop() from one thread; the cursors
    belong to the poll thread (or, before start(), to the caller of poll_once())."""

    def __init__(
        self,
        db: ReadOnlyDatabase,
        prefix: str,
        config: SqliteSourceConfig,
        *,
        known: Callable[[], Mapping[str, int]],
        deliver: Callable[[list[FileKey]], None],
        monotonic: Callable[[], float],
    ) -> None:
        """`known` gives, per table, the newest time_updated (ms) already indexed or submitted
        (-1 for none); `deliver` gets the keys of each poll that found any."""
        self._db = db
        self._prefix = prefix
        self._config = config
        self._known = known
        self._deliver = deliver
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        self._handler: _DbEvents | None = None
        self._cursor: dict[str, int] = {}
        self._seen: dict[str, dict[str, tuple[int, int]]] = {}
        self._floor: dict[str, int] = {}
        self._rowid_log: dict[str, deque[tuple[float, int]]] = {}
        self._primed = False
        self._primed_inode: int | None = None
        self._primed_layout: Layout | None = None
        self.polls = 0
        self.failures = 0
        self.last_poll_ms: float | None = None

    @property
    def watching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def events(self) -> int:
        """File events on the database seen so far."""
        return self._handler.events if self._handler is not None else 0

    def cursors(self) -> dict[str, int]:
        return dict(self._cursor)

    def start(self) -> None:
        """Watch the database and poll on each change, and at least every poll_interval_s."""
        self._stop.clear()
        self._wake.clear()
        self._primed = False
        self._start_observer()
        self._thread = threading.Thread(
            target=self._run, name=f"ocindex-{self._db.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(5)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _start_observer(self) -> None:
        folder = self._db.db_path.absolute().parent
        if not folder.is_dir():
            return  # polled on the interval until it exists
        names = frozenset({self._db.db_path.name, self._db.db_path.name + "-wal"})
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
            log.warning(
                "%s: cannot watch %s (%s): polling every %.1fs",
                self._db.name,
                folder,
                exc,
                self._config.poll_interval_s,
            )
            return
        self._observer = observer

    def _run(self) -> None:
        failures = 0
        last = -1e9
        while not self._stop.is_set():
            gap = self._config.min_poll_gap_s - (self._monotonic() - last)
            if gap > 0 and self._stop.wait(gap):
                return
            self._wake.clear()
            last = self._monotonic()
            try:
                self.poll_once()
            except (Unavailable, sqlite3.Error) as exc:
                self._db.fail(exc)
                failures += 1
            else:
                failures = 0
            if failures:
                self.failures += 1
                if self._db.state is not SourceState.BUSY:
                    self._primed = False  # replaced, recreated or migrated: start over
                delay = self._config.retry_base_s * 2 ** min(failures, 16)
                self._stop.wait(min(delay, self._config.retry_max_s))  # events do not cut it short
                continue
            self._wake.wait(self._config.poll_interval_s)

    def poll_once(self) -> list[FileKey]:
        """Ask each table for rows changed since its cursor; deliver and return their keys."""
        started = time.perf_counter()
        layout = self._db.usable_schema().records
        if (
            not self._primed
            or self._db.inode != self._primed_inode
            or layout is not self._primed_layout
        ):
            # First poll, the file was replaced (deleted and recreated) or its schema changed.
            self._prime(layout)
        keys: list[FileKey] = []
        touched: dict[str, set[str]] = {}  # generation -> sessions whose rows changed
        now = self._monotonic()
        for table, (kind, mapping) in layout.records.items():
            low = self._cursor.get(table, 0) - self._config.overlap_ms
            where = layout.where(table)
            if mapping.shape is SqliteShape.DATA:
                self._advance_floor(table, mapping.table, now)
                rows = self._db.query(
                    f"SELECT id, time_updated, length(CAST(data AS BLOB)), session_id "
                    f"FROM {mapping.table} WHERE rowid > ? AND time_updated >= ? AND ({where})",
                    [self._floor[table], low],
                )
            else:
                rows = self._db.query(_changed_select(mapping, where), [low])
            seen = self._seen.setdefault(table, {})
            top = self._cursor.get(table, 0)
            for rid, updated, size, *session in rows:
                version = (int(updated or 0), int(size or 0))
                if seen.get(rid) == version:
                    continue  # submitted at this version already
                seen[rid] = version
                keys.append(FileKey(f"{self._prefix}{table}/{rid}", kind, str(rid)))
                if session:
                    touched.setdefault(mapping.generation, set()).add(str(session[0]))
                top = max(top, version[0])
            self._cursor[table] = top
            horizon = top - self._config.overlap_ms
            for rid in [r for r, (t, _) in seen.items() if t < horizon]:
                del seen[rid]
        keys += self._sessions_of(layout, touched)
        self.polls += 1
        self.last_poll_ms = (time.perf_counter() - started) * 1000
        self._db.set_state(SourceState.OK, "")
        if keys:
            self._deliver(keys)
        return keys

    def _sessions_of(self, layout: Layout, touched: dict[str, set[str]]) -> list[FileKey]:
        """The session of each changed message or part, asked again: OpenCode adds a reply's
        usage to its session without bumping the session's time_updated (projector.ts
        applyUsage), so only the message's change says the session changed too. Reading an
        unchanged session costs a read and writes nothing."""
        out: list[FileKey] = []
        for segment, (kind, mapping) in layout.records.items():
            if kind is FileKind.SESSION:
                for sid in sorted(touched.get(mapping.generation, ())):
                    out.append(FileKey(f"{self._prefix}{segment}/{sid}", kind, sid))
        return out

    def _prime(self, layout: Layout) -> None:
        """Start the cursors at what is already indexed or submitted: the committed watermark,
        or the newest row the last full scan saw (the startup reconcile submitted the rest)."""
        known = self._known()
        self._seen.clear()
        now = self._monotonic()
        for table, (_, mapping) in layout.records.items():
            if mapping.shape is not SqliteShape.DATA:
                continue
            top = self._max_rowid(mapping.table)
            self._floor[table] = max(0, top - self._config.tail_rows)
            self._rowid_log[table] = deque([(now, top)])
        for table in layout.records:
            # Nothing known: start from 0, i.e. submit the tail once (bounded by tail_rows).
            self._cursor[table] = max(known.get(table, -1), 0)
        self._primed, self._primed_inode = True, self._db.inode
        self._primed_layout = layout

    def _max_rowid(self, sql_table: str) -> int:
        return int(self._db.query(f"SELECT coalesce(max(rowid), 0) FROM {sql_table}")[0][0])

    def _advance_floor(self, table: str, sql_table: str, now: float) -> None:
        """Keep scanning only rows inserted within the horizon, and at most tail_rows of them."""
        top = self._max_rowid(sql_table)
        history = self._rowid_log[table]
        if top < history[-1][1]:
            # The newest rows were deleted (a session removed): new rows may reuse their rowids.
            history.clear()
            history.append((now, top))
            self._floor[table] = max(0, top - self._config.tail_rows)
            return
        if history[-1][1] != top:
            history.append((now, top))
        cutoff = now - self._config.tail_horizon_s
        while len(history) >= 2 and history[1][0] <= cutoff:
            history.popleft()
        floor = self._floor[table]
        if history[0][0] <= cutoff:
            floor = max(floor, history[0][1])
        self._floor[table] = max(floor, top - self._config.tail_rows)


def _changed_select(mapping: SqliteTable, where: str) -> str:
    """The fast path's query for rows (or groups) whose time_updated reached a cursor."""
    if mapping.shape is SqliteShape.GROUPED:
        return (
            f"SELECT session_id, max(time_updated), count(*) FROM {mapping.table} "
            f"WHERE {where} GROUP BY session_id HAVING max(time_updated) >= ?"
        )
    return (
        f"SELECT id, time_updated, {mapping.change_size_sql} FROM {mapping.table} "
        f"WHERE time_updated >= ? AND ({where})"
    )
