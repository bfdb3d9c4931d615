"""A live endpoint host over the dashboard tests' fake engine: what indexer.live.server serves
in an ocindex process, without an engine, for tests of attach mode and of RemoteService; and
over a bare connection, for tests of what the socket serves."""

from __future__ import annotations

from typing import Any

import duckdb

from indexer.health import Health
from indexer.live.host import engine_call
from tests.tui.fakes import FakeFacade


class Engine(FakeFacade):
    """The fake engine with the health an IndexerService also serves."""

    def health(self) -> Health:
        self._record("health")
        return Health(unwatched_folders=2)


class FakeHost:
    """indexer.live.server.Host over the fake engine, with an in-memory DuckDB to query."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn = duckdb.connect()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.conn.cursor()

    def live_status(self, window_s: float) -> dict[str, object]:
        return {"report": {"window_s": window_s}, "lines": []}

    def live_rollback(self, reason: str) -> dict[str, object]:
        result = self.engine.rollback(reason)
        return {"action": result.action, "ok": result.ok, "message": result.message}

    def engine_call(self, action: str, request: dict[str, Any]) -> object:
        return engine_call(self.engine, action, request)


class ConnectionHost:
    """indexer.live.server.Host over a read-write connection, as a running ocindex holds it."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.conn.cursor()

    def live_status(self, window_s: float) -> dict[str, object]:
        return {}

    def live_rollback(self, reason: str) -> dict[str, object]:
        return {}
