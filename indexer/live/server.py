"""The live endpoint of a running ocindex: Arrow Flight on an owner-only Unix socket beside the
database (and on loopback TCP when asked), for read-only queries (do_get), status, rollback and
an attached dashboard's calls (do_action). Never runs a query on the writer's connection: each
call reads on a cursor of its own and closes it.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.flight as flight

from indexer.live import wire
from indexer.live.address import (
    ACTION_PING,
    ACTION_ROLLBACK,
    ACTION_STATUS,
    ENGINE_ACTIONS,
    AddressError,
    location,
    loopback,
    socket_path,
    tcp_location,
)
from indexer.live.gate import QueryGate
from indexer.live.readonly import (
    DEFAULT_LIMIT,
    DEFAULT_TIMEOUT_S,
    QueryError,
    first_line,
    run_read,
)

log = logging.getLogger(__name__)

TRUNCATED = b"ocindex.truncated"
"""Schema metadata key of a result cut at its row limit."""
MAX_LIMIT = 100_000_000
MAX_TIMEOUT_S = 86_400.0
PROCESS_GATE = QueryGate()
"""The admission of every endpoint of this process (the socket and a --listen port alike)."""


class Host(Protocol):
    """What the endpoint asks of the process it runs in (indexer.live.host.ServiceHost)."""

    def cursor(self) -> duckdb.DuckDBPyConnection: ...

    def live_status(self, window_s: float) -> dict[str, object]: ...

    def live_rollback(self, reason: str) -> dict[str, object]: ...

    def engine_call(self, action: str, request: dict[str, Any]) -> object: ...


def process_label(argv: list[str] | None = None) -> str:
    """What this process is, for an attached dashboard's header: "ocindex run" for the daemon,
    "the ocindex dashboard" for `ocindex [tui]`."""
    words = [w for w in (sys.argv if argv is None else argv)[1:] if not w.startswith("-")]
    return "ocindex run" if words[:1] == ["run"] else "the ocindex dashboard"


def _failure(exc: QueryError) -> flight.FlightServerError:
    return flight.FlightServerError(str(exc), extra_info=exc.kind.encode())


class LiveServer(flight.FlightServerBase):
    """Listening from construction until stop(); the socket file is removed by stop().
    With `tcp` (host, port), it listens on that loopback address instead of the socket."""

    def __init__(
        self,
        host: Host,
        path: Path,
        tcp: tuple[str, int] | None = None,
        gate: QueryGate = PROCESS_GATE,
    ) -> None:
        self._host = host
        self._gate = gate
        self.path = path
        self.pid = os.getpid()
        self.label = process_label()
        self.tcp = tcp
        if tcp is not None:
            super().__init__(tcp_location(*tcp))
            self.location = tcp_location(tcp[0], self.port)
            return
        _clear_stale(path)
        # Connecting needs write permission, which bind() under any usual umask (022, or the
        # commands' 077) gives the owner alone; the chmod makes it exactly owner read/write.
        super().__init__(location(path))
        os.chmod(path, 0o600)
        self.location = location(path)

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.RecordBatchStream:
        try:
            request = json.loads(ticket.ticket)
            sql = str(request["sql"])
            limit = int(min(max(1, int(request.get("limit", DEFAULT_LIMIT))), MAX_LIMIT))
            timeout_s = float(request.get("timeout_s", DEFAULT_TIMEOUT_S))
            timeout_s = min(max(0.001, timeout_s), MAX_TIMEOUT_S)
        except (ValueError, KeyError, TypeError) as exc:
            raise _failure(QueryError(f"bad request: {first_line(exc)}")) from None
        try:
            cursor = self._host.cursor()
        except RuntimeError as exc:
            raise _failure(QueryError(first_line(exc))) from None
        try:
            result = self._gate.run(
                cursor, lambda: run_read(cursor, sql, limit, timeout_s, context.is_cancelled)
            )
        except QueryError as exc:
            raise _failure(exc) from None
        finally:
            cursor.close()
        table = result.table
        if result.truncated:
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), TRUNCATED: b"true"}
            )
        return flight.RecordBatchStream(table)

    def do_action(self, context: Any, action: flight.Action) -> Iterator[flight.Result]:
        body = action.body.to_pybytes() if action.body is not None else b""
        try:
            request: dict[str, Any] = json.loads(body) if body else {}
            if not isinstance(request, dict):
                raise TypeError("the body must be a JSON object")
            reply = self._reply(action.type, request)
        except flight.FlightError:
            raise
        except Exception as exc:  # the engine's own failure, told to the caller in one line
            raise _failure(QueryError(first_line(exc))) from None
        yield flight.Result(pa.py_buffer(json.dumps({"pid": self.pid, **reply}).encode()))

    def _reply(self, name: str, request: dict[str, Any]) -> dict[str, object]:
        if name == ACTION_PING:
            return {"pid": self.pid, "label": self.label}
        if name == ACTION_STATUS:
            return self._host.live_status(float(request.get("window_s", 3600.0)))
        if name == ACTION_ROLLBACK:
            return self._host.live_rollback(str(request.get("reason", "rollback")))
        if name in ENGINE_ACTIONS:
            value = self._host.engine_call(name, request)
            return {"value": wire.plain(value)}
        raise _failure(QueryError(f"unknown action {name!r}"))

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [
            (ACTION_PING, "the serving process's id"),
            (ACTION_STATUS, "what `ocindex status --json` reports, with the live engine's figures"),
            (ACTION_ROLLBACK, "roll back to v1 now, persisted"),
            *((name, "the dashboard's call of the same name") for name in sorted(ENGINE_ACTIONS)),
        ]

    def stop(self) -> None:
        """Stop listening (calls in flight finish first) and remove the socket."""
        self.shutdown()
        self.wait()
        if self.tcp is None:
            self.path.unlink(missing_ok=True)


def _clear_stale(path: Path) -> None:
    """Remove a socket left by a process that died: the caller holds the database's write lock,
    so no other ocindex serves it. Anything but a socket there is left alone (bind fails)."""
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        return


def serve(host: Host, db: Path) -> LiveServer | None:
    """Start the endpoint of the database at `db`; None (with one warning) when it cannot
    listen, since indexing goes on without it."""
    try:
        server = LiveServer(host, socket_path(db))
    except Exception as exc:  # gRPC reports a failed bind as several error types
        log.warning("no live query endpoint for %s: %s", db, first_line(exc))
        return None
    log.info("live query endpoint on %s", server.path)
    return server


def serve_tcp(host: Host, db: Path, address: str) -> LiveServer:
    """Also serve the database at `db` on the loopback `address` (`--listen HOST:PORT`).
    AddressError names what is wrong: not loopback, or the port cannot be bound."""
    tcp = loopback(address)
    try:
        server = LiveServer(host, Path(db), tcp)
    except Exception as exc:  # gRPC reports a failed bind as several error types
        raise AddressError(f"--listen {address}: cannot listen: {first_line(exc)}") from None
    log.warning(
        "live query endpoint also on %s: no authentication, any local user can query it, "
        "switch the indexer and roll it back",
        server.location,
    )
    return server
