"""A small real index for the usage screen and the SQL console: the real schema and views, fixed
OpenCode records parsed and written by the real code, and a fake engine that hands out cursors.

Every timestamp is at noon UTC and every cursor runs in UTC, so the days never depend on the
machine's time zone.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from indexer.kinds import classify
from indexer.live.readonly import DEFAULT_LIMIT, DEFAULT_TIMEOUT_S, QueryResult, run_read
from indexer.outcome import ParsedFile
from indexer.records import parse
from indexer.store.rows import write_parsed
from indexer.store.schema import migrate
from tests.tui.fakes import FakeFacade

DAY_MS = 86_400_000
NOON_MS = 1_767_268_800_000  # 2026-01-01 12:00 UTC
MODELS = (
    ("anthropic", "claude-sonnet-4-5"),
    ("openai", "gpt-5"),
    ("google", "gemini-2.5-pro"),
)
SESSIONS = (
    ("ses_01refactor", "Refactor the batch writer", 0),
    ("ses_02usage", "Add a usage screen to the dashboard", 1),
    ("ses_03flaky", "Fix the flaky watcher test", 2),
    ("ses_04mvcc", "Explain DuckDB's MVCC to me", 0),
)
CHILD = ("ses_05explore", "Explore the views (@explore subagent)", "ses_02usage")


def put(conn: duckdb.DuckDBPyConnection, rel: str, doc: dict[str, Any]) -> None:
    """Parse one OpenCode JSON record as the indexer would and write its rows."""
    key = classify(rel)
    assert key is not None, rel
    parsed = parse(key, orjson.dumps({"id": key.record_id, **doc}))
    assert isinstance(parsed, ParsedFile), parsed
    write_parsed(conn, [parsed])


def message(
    conn: duckdb.DuckDBPyConnection, sid: str, mid: str, model: int, day: int, scale: int
) -> None:
    provider, model_id = MODELS[model]
    tokens = {
        "input": 1_200 * scale,
        "output": 400 * scale,
        "reasoning": 100 * scale,
        "cache": {"read": 8_000 * scale, "write": 300 * scale},
    }
    doc: dict[str, Any] = {"role": "assistant", "providerID": provider, "modelID": model_id}
    doc |= {"cost": round(0.013 * scale * (model + 1), 4), "tokens": tokens}
    doc |= {"time": {"created": NOON_MS + day * DAY_MS + scale * 1000}}
    put(conn, f"message/{sid}/{mid}.json", doc)


def tool(
    conn: duckdb.DuckDBPyConnection, sid: str, pid: str, name: str, state: dict[str, Any]
) -> None:
    span = {"start": NOON_MS, "end": NOON_MS + 1500}
    put(conn, f"part/msg_{sid}_0/{pid}.json", {"type": "tool", "sessionID": sid, "tool": name,
        "state": {"time": span, **state}})  # fmt: skip


def usage_index(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`conn` migrated to the current schema and filled with 14 days of fixed usage."""
    migrate(conn)
    for number, (sid, title, _model) in enumerate(SESSIONS):
        created = NOON_MS + number * DAY_MS
        put(conn, f"session/p1/{sid}.json", {"title": title, "time": {"created": created}})
    kid, kid_title, parent = CHILD
    put(conn, f"session/p1/{kid}.json", {"title": kid_title, "parentID": parent})
    for day in range(14):
        for number, (sid, _title, model) in enumerate(SESSIONS):
            scale = 1 + (day * 7 + number * 3) % 5
            if (day + number) % 3 != 2:
                message(conn, sid, f"msg_{sid}_{day}", (model + day // 7) % 3, day, scale)
        if day % 4 == 1:
            message(conn, kid, f"msg_{kid}_{day}", 1, day, 2)
    user = {"role": "user", "time": {"created": NOON_MS}}
    for sid, _title, _model in SESSIONS:
        put(conn, f"message/{sid}/msg_{sid}_user.json", user)
    ok = {"status": "completed", "input": {"command": "pytest -q"}, "metadata": {"exit": 0}}
    failed = {"status": "completed", "input": {"command": "pytest -x"}, "metadata": {"exit": 1}}
    edit_error = {"status": "error", "input": {"filePath": "/r/a.py"}, "error": "no match"}
    stopped = {"status": "error", "input": {"url": "https://x.test"}}
    stopped |= {"metadata": {"interrupted": True}, "error": "aborted"}
    calls = [("bash", ok)] * 6 + [("bash", failed)] * 3 + [("edit", edit_error)] * 2
    calls += [("webfetch", stopped), ("read", {"status": "completed", "input": {"filePath": "/r"}})]
    for n, (name, state) in enumerate(calls):
        tool(conn, SESSIONS[n % 3][0], f"prt_{n:03d}", name, state)
    return conn


class IndexFacade(FakeFacade):
    """The fake engine, with read cursors of a real index (in UTC) as IndexerService gives."""

    def __init__(self, conn: duckdb.DuckDBPyConnection | None = None) -> None:
        super().__init__()
        self.conn = conn if conn is not None else usage_index(duckdb.connect(":memory:"))
        self.cursors = 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        self._record("cursor")
        self.cursors += 1
        cursor = self.conn.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor


def empty_index() -> IndexFacade:
    """A fake engine over an index with the schema and the views but no record yet."""
    conn = duckdb.connect(":memory:")
    migrate(conn)
    return IndexFacade(conn)


class EndpointFacade(FakeFacade):
    """The fake engine as an attached dashboard sees it (RemoteService): no cursor, only
    read-only queries answered as the live endpoint answers them (indexer.live.readonly)."""

    def __init__(self) -> None:
        super().__init__()
        self.conn = usage_index(duckdb.connect(":memory:"))

    def query(
        self, sql: str, limit: int = DEFAULT_LIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> QueryResult:
        self._record("query", sql)
        cursor = self.conn.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            return run_read(cursor, sql, limit, timeout_s)
        finally:
            cursor.close()
