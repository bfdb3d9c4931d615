"""Lands writes in OpenCode 1.2's or 1.18's SQLite store the way OpenCode does (upserts, cascading
session deletes, WAL checkpoints; 1.18's events and rollups via v118.py). Never decides content."""

from __future__ import annotations

import random
import sqlite3
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from indexer.simulate.json_writer import JsonWriter
from indexer.simulate.ledger import StoreLedger
from indexer.simulate.opencode_db import create_opencode_db
from indexer.simulate.store_schemas import create_store
from indexer.simulate.v118 import V118Extras
from indexer.simulate.vocabulary import dump

_T = TypeVar("_T")

SESSION_COLUMNS = (
    "project_id",
    "parent_id",
    "slug",
    "directory",
    "title",
    "version",
    "share_url",
    "summary_additions",
    "summary_deletions",
    "summary_files",
    "time_created",
    "time_updated",
)
_SESSION_UPSERT = (
    f"INSERT INTO session (id, {', '.join(SESSION_COLUMNS)}) "
    f"VALUES (?{', ?' * len(SESSION_COLUMNS)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SESSION_COLUMNS if c != "time_created")
)


class SqliteWriter(StoreLedger):
    """One transaction per update: upserts keyed by id (messages and parts updated in place,
    time_updated bumped each time), the todo list replaced in one transaction, finished sessions
    now and then (seeded, `delete_share`) deleted with their cascade, and a passive WAL
    checkpoint every `checkpoint_every` writes. session_diff files stay JSON under the root.
    Row times come from the story's clock, so the same seed writes the same rows. write() and
    delete_session() run on one thread at a time; expected_rows() and expected_files() are safe
    from any.

    The tally announces `<table>/<id>` for a row, `session_diff/<id>.json` for a file.
    """

    def __init__(
        self,
        root: Path,
        seed: int = 0,
        db_path: Path | None = None,
        delete_share: float = 0.2,
        checkpoint_every: int = 200,
        generation: str = "1.2",
    ) -> None:
        """generation "1.2" writes 1.2's tables; "1.18" adds session_message switch rows, the
        event log, session rollups and the 1.x turns a later migration folds or drops."""
        super().__init__(JsonWriter(root))
        self.db_path = Path(db_path) if db_path else Path(root).parent / "opencode.db"
        self._rng = random.Random(f"deletes:{seed}")  # deletions do not disturb content
        self._delete_share = delete_share
        self._checkpoint_every = max(1, checkpoint_every)
        self._by_session: dict[str, set[str]] = {}
        self._parents: dict[str, str | None] = {}
        self._settled: deque[str] = deque()  # finished sessions' files not yet considered
        self._v118 = V118Extras(seed) if generation == "1.18" else None
        self._db: sqlite3.Connection | None = (
            create_opencode_db(self.db_path)
            if self._v118 is None
            else create_store(self.db_path, "1.18")
        )
        self.deleted_sessions: list[str] = []
        self.checkpoints = 0
        self.last_time_updated = 0
        """time_updated of the latest row write (the benchmark matches commits against it)."""

    def settle(self, rel_paths: tuple[str, ...]) -> None:
        self._settled.extend(rel_paths)

    def write(self, rel: str, data: bytes, now_ms: int) -> None:
        top, _, rest = rel.partition("/")
        if top == "session_diff":
            self.files.write(rel, data, now_ms)
        else:
            doc = orjson.loads(data)
            if self._v118 is not None and top == "message" and doc.get("role") == "user":
                self._in_transaction(lambda db: self._switch_row(db, doc, now_ms))
            key, record = self._in_transaction(lambda db: self._land(db, top, rest, doc, now_ms))
            self._remember(key, record)
            if self._v118 is not None and top == "message" and "summary" in doc:
                self._v118.turn_end(doc, now_ms, self.write)  # the turn has ended
        if self.tally.writes % self._checkpoint_every == 0:
            self._checkpoint()
        self._delete_finished()

    def _remember(self, key: str, record: bytes | None) -> None:
        self.tally.wrote(key, self._keep(key, record))

    def _in_transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """One transaction per update, as OpenCode's Database.transaction."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            out = work(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

    def _land(
        self, db: sqlite3.Connection, top: str, rest: str, doc: Any, now: int
    ) -> tuple[str, bytes | None]:
        key, record = self._upsert(top, rest, doc, now)
        if self._v118 is not None:
            self._v118.after_write(db, top, doc, now)
        return key, record

    def _switch_row(self, db: sqlite3.Connection, doc: Any, now: int) -> None:
        assert self._v118 is not None
        key = self._v118.before_prompt(db, doc, now)
        if key is not None:
            self._by_session.setdefault(doc["sessionID"], set()).add(key)
            self._remember(key, self._v118.switch_rows[key])

    def forget_switch_rows(self, db: sqlite3.Connection) -> None:
        """Drop the ledger's switch rows a migration deleted."""
        alive = {f"session_message/{r[0]}" for r in db.execute("SELECT id FROM session_message")}
        with self._lock:
            for key in [k for k in self._rows if k.startswith("session_message/")]:
                if key not in alive:
                    del self._rows[key]

    def delete_session(self, sid: str) -> list[str]:
        """Delete a session and its child sessions; messages, parts and todos go by cascade.
        Its session_diff file is removed too. Returns the deleted session ids."""
        db = self._connection()
        doomed, frontier = [sid], [sid]
        while frontier:
            children = [c for c, p in self._parents.items() if p in frontier]
            doomed += children
            frontier = children
        db.execute("BEGIN IMMEDIATE")
        try:
            marks = ", ".join("?" * len(doomed))
            db.execute(f"DELETE FROM session WHERE id IN ({marks})", doomed)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for gone in doomed:
            self._parents.pop(gone, None)
            with self._lock:
                self._rows.pop(f"session/{gone}", None)
                for key in self._by_session.pop(gone, set()):
                    self._rows.pop(key, None)
            self.files.delete(f"session_diff/{gone}.json")
            self.deleted_sessions.append(gone)
            self.tally.removed(f"session/{gone}")
        return doomed

    def _connection(self) -> sqlite3.Connection:
        assert self._db is not None, "the simulator is closed"
        return self._db

    def _checkpoint(self) -> None:
        self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1

    def _delete_finished(self) -> None:
        """Now and then (seeded), delete a finished top-level session as OpenCode's
        Session.remove does: its children too, everything else by cascade."""
        while self._settled:
            top, _, rest = self._settled.popleft().partition("/")
            if top != "session" or rest.count("/") != 1:
                continue
            sid = rest.rpartition("/")[2].removesuffix(".json")
            if self._parents.get(sid, "") is None and self._rng.random() < self._delete_share:
                self.delete_session(sid)

    def _upsert(self, top: str, rest: str, doc: Any, now: int) -> tuple[str, bytes | None]:
        """Write one record in one transaction; return its row key and what it now holds."""
        db = self._connection()
        self.last_time_updated = now
        if top == "project":
            t = doc.get("time", {})
            sandboxes = orjson.dumps(doc.get("sandboxes", [])).decode()
            db.execute(
                "INSERT INTO project (id, worktree, vcs, name, time_created, time_updated, "
                "time_initialized, sandboxes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET worktree = excluded.worktree, vcs = excluded.vcs, "
                "name = excluded.name, time_updated = excluded.time_updated, "
                "time_initialized = excluded.time_initialized, sandboxes = excluded.sandboxes",
                [
                    doc["id"],
                    doc.get("worktree", "/"),
                    doc.get("vcs"),
                    doc.get("name"),
                    t.get("created", now),
                    now,
                    t.get("initialized"),
                    sandboxes,
                ],
            )
            doc["time"] = {**t, "updated": now}
            return f"project/{doc['id']}", dump(doc)
        if top == "session":
            return self._upsert_session(db, doc, now)
        if top == "todo":
            return self._replace_todos(db, rest.rpartition("/")[2].removesuffix(".json"), doc, now)
        # message/<ses>/<msg>.json and part/<msg>/<prt>.json: the JSON without its ids in `data`
        rid, sid = doc["id"], doc["sessionID"]
        data = orjson.dumps(
            {k: v for k, v in doc.items() if k not in ("id", "sessionID", "messageID")}
        )
        created = (doc.get("time") or {}).get("created", now) if top == "message" else now
        if top == "message":
            db.execute(
                "INSERT INTO message (id, session_id, time_created, time_updated, data) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "time_updated = excluded.time_updated, data = excluded.data",
                [rid, sid, created, now, data.decode()],
            )
        else:
            db.execute(
                "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "time_updated = excluded.time_updated, data = excluded.data",
                [rid, doc["messageID"], sid, created, now, data.decode()],
            )
        key = f"{top}/{rid}"
        self._by_session.setdefault(sid, set()).add(key)
        return key, dump(doc)

    def _upsert_session(self, db: sqlite3.Connection, doc: Any, now: int) -> tuple[str, bytes]:
        sid = doc["id"]
        doc["time"] = {**doc.get("time", {}), "updated": now}  # Session.update stamps it
        summary = doc.get("summary") or {}
        values = (
            doc["projectID"],
            doc.get("parentID"),
            doc.get("slug", ""),
            doc.get("directory", ""),
            doc.get("title", ""),
            doc.get("version", ""),
            (doc.get("share") or {}).get("url"),
            summary.get("additions"),
            summary.get("deletions"),
            summary.get("files"),
            doc["time"].get("created", now),
            now,
        )
        db.execute(_SESSION_UPSERT, [sid, *values])
        self._parents.setdefault(sid, doc.get("parentID"))
        return f"session/{sid}", dump(doc)

    def _replace_todos(
        self, db: sqlite3.Connection, sid: str, doc: Any, now: int
    ) -> tuple[str, bytes | None]:
        """Todo.update: delete and insert the whole list, in the caller's transaction."""
        db.execute("DELETE FROM todo WHERE session_id = ?", [sid])
        db.executemany(
            "INSERT INTO todo (session_id, content, status, priority, position, "
            "time_created, time_updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    sid,
                    t.get("content", ""),
                    t.get("status", ""),
                    t.get("priority", ""),
                    i,
                    now,
                    now,
                )
                for i, t in enumerate(doc)
            ],
        )
        self._by_session.setdefault(sid, set()).add(f"todo/{sid}")
        return f"todo/{sid}", (dump(doc) if doc else None)
