"""Reaching a database's index: through the live endpoint of the ocindex process that holds it,
else by opening the file read-only; `query` reads the same either way. Never writes the index
and never starts an engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from indexer.live.address import (
    ACTION_PING,
    ACTION_ROLLBACK,
    ACTION_STATUS,
    AddressError,
    location,
    socket_path,
)
from indexer.live.readonly import (
    DEFAULT_LIMIT,
    DEFAULT_TIMEOUT_S,
    ERRORS,
    QueryError,
    QueryResult,
    first_line,
    run_read,
)
from indexer.live.server import TRUNCATED

PING_TIMEOUT_S = 2.0
ACTION_TIMEOUT_S = 120.0
"""A status or a rollback (which waits for the running indexer to hand over) takes this at most."""


class Unreachable(QueryError):
    """The endpoint does not answer (its process stopped, or never listened there)."""

    kind = "unreachable"


class LiveClient:
    """A connection to the endpoint of the process that holds a database; close() it.
    `address` is the socket's path, or a `grpc+tcp://127.0.0.1:PORT` location."""

    def __init__(self, address: Path | str) -> None:
        self.path = address
        self._client = flight.FlightClient(
            address if isinstance(address, str) else location(address)
        )
        self.pid = 0
        self.label = "ocindex"
        """What the answering process is ("ocindex run", "the ocindex dashboard")."""

    def ping(self) -> bool:
        """True when a process answers on the socket (and learn its id and what it is)."""
        try:
            reply = self.action(ACTION_PING, {}, PING_TIMEOUT_S)
        except (flight.FlightError, QueryError, OSError):
            return False
        self.pid = int(str(reply["pid"]))
        self.label = str(reply.get("label", self.label))
        return True

    def action(self, name: str, body: dict[str, object], timeout_s: float) -> dict[str, Any]:
        options = flight.FlightCallOptions(timeout=timeout_s)
        try:
            results = list(
                self._client.do_action(flight.Action(name, json.dumps(body).encode()), options)
            )
        except flight.FlightError as exc:
            raise _error(exc) from None
        reply: dict[str, Any] = json.loads(results[0].body.to_pybytes())
        return reply

    def status(self, window_s: float) -> dict[str, Any]:
        return self.action(ACTION_STATUS, {"window_s": window_s}, ACTION_TIMEOUT_S)

    def rollback(self, reason: str) -> dict[str, Any]:
        return self.action(ACTION_ROLLBACK, {"reason": reason}, ACTION_TIMEOUT_S)

    def query(
        self, sql: str, limit: int = DEFAULT_LIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> QueryResult:
        ticket = flight.Ticket(json.dumps({"sql": sql, "limit": limit, "timeout_s": timeout_s}))
        # The server stops the query at timeout_s; the call's own deadline only catches a hang.
        options = flight.FlightCallOptions(timeout=timeout_s + 30.0)
        try:
            table = self._client.do_get(ticket, options).read_all()
        except flight.FlightError as exc:
            raise _error(exc) from None
        metadata = dict(table.schema.metadata or {})
        truncated = metadata.pop(TRUNCATED, None) == b"true"
        return QueryResult(table.replace_schema_metadata(metadata or None), truncated)

    def close(self) -> None:
        self._client.close()


def _error(exc: flight.FlightError) -> QueryError:
    """The server's one-line error as the QueryError it was, without gRPC's decorations."""
    kind = (getattr(exc, "extra_info", b"") or b"").decode(errors="replace")
    message = first_line(exc).split(". Detail:")[0]
    if isinstance(exc, flight.FlightUnavailableError):
        return Unreachable(f"the live ocindex stopped answering: {message}")
    if isinstance(exc, flight.FlightTimedOutError):
        message = "the live ocindex did not answer in time"
    return ERRORS.get(kind, QueryError)(message)


def reach(db: Path | str) -> LiveClient | None:
    """The live endpoint of the ocindex process holding `db`, or None when none answers."""
    try:
        path = socket_path(db)
    except AddressError:
        return None
    if not path.exists():
        return None
    client = LiveClient(path)
    if client.ping():
        return client
    client.close()
    return None


@dataclass(frozen=True, slots=True)
class Answer:
    result: QueryResult
    live_pid: int | None
    """The process that answered, or None when the file was read directly."""


def answer(
    sql: str,
    db: Path | str,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Answer:
    """Run a read-only query on the index at `db`: through the live process that holds it, else
    on the file opened read-only (waiting for a brief holder as open_database does)."""
    from indexer.store.database import open_database

    path = Path(db)
    client = reach(path)
    if client is not None:
        try:
            return Answer(client.query(sql, limit, timeout_s), client.pid)
        finally:
            client.close()
    if not path.exists():
        raise QueryError(f"no database at {path}; run `ocindex index --db {path}` first")
    conn = open_database(path, read_only=True)
    try:
        cursor = conn.cursor()
        try:
            return Answer(run_read(cursor, sql, limit, timeout_s), None)
        finally:
            cursor.close()
    finally:
        conn.close()


def query(
    sql: str,
    db: Path | str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> pa.Table:
    """The result of a read-only query on the index (default: the default database) as an
    Arrow table, whether an ocindex process is indexing it now or not. Raises QueryError, or
    indexer.store.database.DatabaseError when the file cannot be opened."""
    if db is None:
        from indexer.config import default_db_path

        db = default_db_path()
    return answer(sql, db, limit, timeout_s).result.table
