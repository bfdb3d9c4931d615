"""The views over a real DuckDB index: usage counted once (fork copies out, step-finish parts
never added), subagents rolled up into their parent, tool failures with non-zero exits, files
touched, local days; and schema 6's migration of an index written at schema 5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from indexer.kinds import classify
from indexer.outcome import ParsedFile
from indexer.records import parse
from indexer.store.rows import write_parsed
from indexer.store.schema import MIGRATIONS, SCHEMA_VERSION, get_meta, migrate, set_meta
from indexer.store.views import VIEWS

HOUR_MS = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def put(conn: duckdb.DuckDBPyConnection, rel: str, doc: dict[str, Any]) -> None:
    key = classify(rel)
    assert key is not None
    parsed = parse(key, orjson.dumps({"id": key.record_id, **doc}))
    assert isinstance(parsed, ParsedFile)
    write_parsed(conn, [parsed])


@pytest.fixture
def conn(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "index.duckdb"))
    migrate(c)
    c.execute("SET TimeZone = 'UTC'")
    usage = {"input": 10, "output": 5, "reasoning": 1, "cache": {"read": 3, "write": 1}}
    put(c, "session/p1/ses_parent.json", {"title": "parent", "time": {"created": T0}})
    put(c, "session/p1/ses_child.json", {"title": "kid", "parentID": "ses_parent"})
    put(c, "session/p1/ses_grandchild.json", {"title": "grandkid", "parentID": "ses_child"})
    for mid, sid, cost, at, extra in (
        ("msg_a", "ses_parent", 1.0, T0 + HOUR_MS, {}),
        ("msg_b", "ses_parent", 2.0, T0 + 23 * HOUR_MS, {}),
        ("msg_fork", "ses_parent", 50.0, T0 + HOUR_MS, {"forkCopy": True}),
        ("msg_c", "ses_child", 0.5, T0 + 2 * HOUR_MS, {}),
        ("msg_d", "ses_grandchild", 0.25, T0 + 2 * HOUR_MS, {}),
    ):
        doc = {"role": "assistant", "providerID": "p", "modelID": "m", "cost": cost}
        doc |= {"tokens": usage, "time": {"created": at}, **extra}
        put(c, f"message/{sid}/{mid}.json", doc)
    put(c, "message/ses_parent/msg_u.json", {"role": "user", "time": {"created": T0}})
    # A step-finish part repeats its message's totals: no view may add it.
    put(c, "part/msg_a/prt_step.json", {"type": "step-finish", "cost": 1.0, "tokens": usage})
    tool = {"type": "tool", "sessionID": "ses_parent"}
    span = {"start": T0, "end": T0 + 200}
    ok = {"status": "completed", "input": {"command": "ls"}, "metadata": {"exit": 0}, "time": span}
    bad = {
        "status": "completed",
        "input": {"command": "false"},
        "metadata": {"exit": 1},
        "time": span,
    }
    read = {"status": "completed", "input": {"filePath": "/r/a.py"}, "time": span}
    kid = {"status": "completed", "input": {"subagent_type": "explore", "description": "look"}}
    kid |= {"metadata": {"sessionId": "ses_child"}, "time": span}
    put(c, "part/msg_a/prt_1.json", tool | {"tool": "bash", "state": ok})
    put(c, "part/msg_a/prt_2.json", tool | {"tool": "bash", "state": bad})
    put(c, "part/msg_a/prt_3.json", tool | {"tool": "read", "state": read})
    put(c, "part/msg_a/prt_4.json", tool | {"tool": "task", "state": kid})
    put(c, "part/msg_a/prt_5.json", tool | {"tool": "bash", "state": ok, "forkCopy": True})
    patch = {"type": "patch", "sessionID": "ses_parent", "hash": "h", "files": ["/r/a.py"]}
    put(c, "part/msg_b/prt_6.json", patch)
    return c


def one(c: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = c.execute(sql).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def test_usage_counts_each_message_once_without_fork_copies_or_step_finish_parts(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    assert one(conn, "SELECT sum(cost) FROM usage_daily") == pytest.approx(3.75)
    assert one(conn, "SELECT sum(messages) FROM usage_daily") == 4
    assert one(conn, "SELECT sum(tokens_total) FROM usage_daily") == 4 * 20


def test_days_follow_the_connection_time_zone(conn: duckdb.DuckDBPyConnection) -> None:
    assert one(conn, "SELECT count(DISTINCT day) FROM usage_daily") == 1
    conn.execute("SET TimeZone = 'Asia/Tokyo'")  # 23:00 UTC is the next morning there
    days = conn.execute("SELECT DISTINCT day FROM usage_messages ORDER BY 1").fetchall()
    assert [str(d) for (d,) in days] == ["2026-01-01", "2026-01-02"]


def test_session_summary_rolls_every_descendants_cost_into_its_ancestors(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    got = conn.execute(
        "SELECT cost, children_cost, total_cost, turns, llm_messages, tool_calls, tool_failures "
        "FROM session_summary WHERE session_id = 'ses_parent'"
    ).fetchone()
    assert got == pytest.approx((3.0, 0.75, 3.75, 1, 2, 4, 1))
    kid = one(conn, "SELECT total_cost FROM session_summary WHERE session_id = 'ses_child'")
    assert kid == pytest.approx(0.75)
    sub = conn.execute(
        "SELECT subagent_type, description, total_cost FROM subagent_usage "
        "WHERE session_id = 'ses_child'"
    ).fetchone()
    assert sub == ("explore", "look", pytest.approx(0.75))


def test_tool_stats_count_a_nonzero_exit_as_a_failure(conn: duckdb.DuckDBPyConnection) -> None:
    got = conn.execute(
        "SELECT calls, failures, nonzero_exits, p50_ms FROM tool_stats WHERE tool = 'bash'"
    ).fetchone()
    assert got == (2, 1, 1, 200.0)


def test_file_activity_joins_reads_and_patches_of_one_file(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    got = conn.execute(
        "SELECT reads, edits, patches FROM file_activity WHERE file = '/r/a.py'"
    ).fetchone()
    assert got == (1, 0, 1)


def test_schema_6_adds_the_columns_marks_records_for_reading_again_and_makes_the_views(
    tmp_path: Path,
) -> None:
    c = duckdb.connect(str(tmp_path / "old.duckdb"))
    c.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    for version, step in MIGRATIONS:
        if version <= 5:
            step(c)
    set_meta(c, "schema_version", "5")
    c.execute("ALTER TABLE parts DROP COLUMN compaction_overflow")  # as schema 5 left it
    c.execute(
        "INSERT INTO file_index (file_path, file_type, mtime, size, status, mtime_ns, "
        "content_hash) VALUES ('part/m/p.json', 'part', 1, 2, 'indexed', 5, 'h'), "
        "('session/p/s.json', 'session', 1, 2, 'indexed', 5, 'h')"
    )
    assert migrate(c) == SCHEMA_VERSION == 6
    columns = {r[0] for r in c.execute("DESCRIBE parts").fetchall()}
    assert "compaction_overflow" in columns
    marks = dict(c.execute("SELECT file_type, mtime_ns FROM file_index").fetchall())
    assert marks == {"part": None, "session": 5}  # only kinds with new columns are read again
    found = c.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    views = {r[0] for r in found}
    assert views == {name for name, _ in VIEWS}
    assert get_meta(c, "views_version") is not None
