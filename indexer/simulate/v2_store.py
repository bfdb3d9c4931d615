"""OpenCode 2.x's event-sourced writes (research note §6, projector.ts): each durable event appends
an `event` row at the session's next seq and is projected into session_v2 / session_message in the
same transaction. Never decides what happens: v2_writer.py and v2_lifecycle.py do."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from indexer.simulate.ids import IdMint
from indexer.simulate.v118 import append_event
from indexer.simulate.vocabulary import Json, dump

USAGE_COLUMNS = (
    ("cost", "cost"),
    ("tokens_input", "input"),
    ("tokens_output", "output"),
    ("tokens_reasoning", "reasoning"),
    ("tokens_cache_read", "read"),
    ("tokens_cache_write", "write"),
)


@dataclass
class Row:
    """One session_message row as the store holds it (owned by the writing thread)."""

    id: str
    session: str
    type: str
    seq: int
    created: int
    updated: int
    data: Json

    def record(self) -> bytes:
        head = {"session_id": self.session, "type": self.type, "seq": self.seq}
        times = {"time_created": self.created, "time_updated": self.updated}
        return dump(head | times | {"data": self.data})


class V2Store:
    """The projection primitives over one connection; every method runs inside tx()."""

    def __init__(self, db: sqlite3.Connection, ids: IdMint) -> None:
        self.db = db
        self.ids = ids
        self.rows: dict[str, Row] = {}
        """Message rows written by this store (and copied by forks), by id."""

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction per update (OpenCode projects each event in its own)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def event(self, sid: str, kind: str, data: Any, now: int) -> tuple[str, int]:
        """Append one durable event for session `sid`; returns its id and per-session seq."""
        return append_event(self.db, self.ids, sid, kind, data, now, stamped=True)

    def insert(self, sid: str, mid: str, kind: str, data: Json, now: int, event: str) -> Row:
        """A new row at the event's seq: unique, increasing, sparse (§6)."""
        _, seq = self.event(sid, event, {"messageID": mid, **data}, now)
        created = int(data["time"]["created"])
        row = Row(mid, sid, kind, seq, created, now, data)
        self.db.execute(
            "INSERT INTO session_message (id, session_id, type, seq, time_created, time_updated, "
            "data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [mid, sid, kind, seq, created, now, orjson.dumps(data).decode()],
        )
        self.rows[mid] = row
        return row

    def update(self, row: Row, now: int, event: str, event_data: Any = None) -> None:
        """UPDATE in place by id: seq unchanged, time_updated stamped on every update (drizzle's
        $onUpdate); kept strictly increasing so a reader's (seq, time_updated) cursor sees it."""
        self.event(row.session, event, event_data or {"messageID": row.id}, now)
        row.updated = max(now, row.updated + 1)
        self.db.execute(
            "UPDATE session_message SET type = ?, time_created = ?, data = ?, time_updated = ? "
            "WHERE id = ? AND session_id = ?",
            [
                row.type,
                row.created,
                orjson.dumps(row.data).decode(),
                row.updated,
                row.id,
                row.session,
            ],
        )

    def add_usage(self, sid: str, cost: float, tokens: Json) -> None:
        """session_v2 rollup += usage, time_updated untouched (projector.ts applyUsage)."""
        cache = tokens.get("cache") or {}
        values = [cost, tokens.get("input", 0), tokens.get("output", 0)]
        values += [tokens.get("reasoning", 0), cache.get("read", 0), cache.get("write", 0)]
        sets = ", ".join(f"{col} = {col} + ?" for col, _ in USAGE_COLUMNS)
        self.db.execute(f"UPDATE session_v2 SET {sets} WHERE id = ?", [*values, sid])

    def session_record(self, sid: str) -> bytes | None:
        cur = self.db.execute("SELECT * FROM session_v2 WHERE id = ?", [sid])
        found = cur.fetchone()
        if found is None:
            return None
        return dump(dict(zip([d[0] for d in cur.description], found, strict=True)))

    def last_of(self, sid: str, kind: str) -> Row | None:
        """The session's latest row of `kind` still in the store."""
        found = self.db.execute(
            "SELECT id FROM session_message WHERE session_id = ? AND type = ? "
            "ORDER BY seq DESC LIMIT 1",
            [sid, kind],
        ).fetchone()
        return self.rows.get(found[0]) if found else None
