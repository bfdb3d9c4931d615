"""The simulator builds each OpenCode store generation (1.18, 2.x, upgraded) with the tables of the
research note and every double-count trap in it; the independent recount sees through the traps."""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from indexer.cli import main
from indexer.simulate import SqliteSimulator
from tests.support.recount import recount
from tests.support.writes import WriteCount

SESSION_1X_COLUMNS = {"cost", "tokens_input", "tokens_output", "tokens_reasoning"}
SESSION_1X_COLUMNS |= {"tokens_cache_read", "tokens_cache_write", "agent", "model", "path"}
SESSION_1X_COLUMNS |= {"workspace_id", "metadata", "time_archived", "revert", "permission"}
SESSION_V2_COLUMNS = SESSION_1X_COLUMNS | {"fork_session_id", "fork_boundary", "time_idle"}
SESSION_V2_COLUMNS |= {"time_viewed", "idle_outcome", "time_compacting", "time_suspended"}
SESSION_V2_COLUMNS |= {"resume_attempts", "parent_id", "project_id", "title", "version"}
MESSAGE_COLUMNS = ["id", "session_id", "type", "seq", "time_created", "time_updated", "data"]
TOKENS = ("input", "output", "reasoning", "cache.read", "cache.write")


@dataclass(frozen=True)
class Store:
    path: Path
    deleted: tuple[str, ...]


def build(folder: Path, generation: str, sessions: int = 6, **kw: float) -> Store:
    with SqliteSimulator(folder / "storage", seed=3, generation=generation, **kw) as sim:
        sim.write_sessions(sessions)
        deleted = tuple(sim.deleted_sessions)
    return Store(folder / "opencode.db", deleted)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Store]:
    return {g: build(tmp_path_factory.mktemp(g), g) for g in ("1.18", "2.x", "upgraded")}


def q(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def one(path: Path, sql: str, *args: object) -> object:
    return q(path, sql, *args)[0][0]


def columns(path: Path, table: str) -> list[str]:
    return [str(r[1]) for r in q(path, f"PRAGMA table_info({table})")]


def tables(path: Path) -> set[str]:
    return {str(r[0]) for r in q(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def table_sql(path: Path, table: str) -> str:
    return str(one(path, "SELECT sql FROM sqlite_master WHERE name = ?", table))


def naive(path: Path, table: str, where: str) -> int:
    return int(
        one(
            path,
            f"SELECT coalesce(sum(json_extract(data, '$.tokens.input')), 0) "
            f"FROM {table} WHERE {where}",
        )
    )


def test_each_generation_has_the_tables_and_columns_of_the_research_note(
    stores: dict[str, Store],
) -> None:
    v118, v2, up = (stores[g].path for g in ("1.18", "2.x", "upgraded"))
    assert {"session", "message", "part", "todo", "session_message", "event"} <= tables(v118)
    assert {"event_sequence", "migration"} <= tables(v118) and "session_v2" not in tables(v118)
    assert set(columns(v118, "session")) >= SESSION_1X_COLUMNS
    assert "REFERENCES `session`(" in table_sql(v118, "session_message")
    assert not {"session", "message", "part"} & tables(v2)
    assert {"session_v2", "session_message", "event", "event_sequence", "kv", "todo"} <= tables(v2)
    assert set(columns(v2, "session_v2")) >= SESSION_V2_COLUMNS
    assert columns(v2, "session_message") == MESSAGE_COLUMNS
    assert "created" in columns(v2, "event")
    for path in (v2, up):
        assert "REFERENCES `session_v2`(" in table_sql(path, "session_message")
    assert {"session", "message", "part", "session_v2", "kv"} <= tables(up)


def test_a_1_18_store_has_switch_rows_events_and_rollups_that_a_naive_reader_double_counts(
    stores: dict[str, Store],
) -> None:
    path = stores["1.18"].path
    kinds = {str(r[0]) for r in q(path, "SELECT DISTINCT type FROM session_message")}
    assert kinds == {"model-switched", "agent-switched"}
    rows = int(one(path, "SELECT count(*) FROM message")) + int(
        one(path, "SELECT count(*) FROM part")
    )
    assert int(one(path, "SELECT count(*) FROM event")) > rows  # every update repeated
    event_input = int(
        one(path, "SELECT coalesce(sum(json_extract(data, '$.info.tokens.input')), 0) FROM event")
    )
    counted = recount(path)
    assert event_input > counted["tokens_input"] > 0
    rollup = one(path, "SELECT sum(tokens_input) FROM session")
    assert rollup == counted["tokens_input"]  # rollup = sum over assistant messages [L]
    assert counted["user_messages"] == int(
        one(path, "SELECT count(*) FROM message WHERE json_extract(data, '$.role') = 'user'")
    )


def test_a_2x_store_holds_forks_reverts_archives_deletes_and_rollups_with_title_usage(
    stores: dict[str, Store],
) -> None:
    store = stores["2.x"]
    path, counted = store.path, recount(store.path)
    fork = q(
        path,
        "SELECT id, title, fork_boundary, cost, fork_session_id FROM session_v2 "
        "WHERE fork_session_id IS NOT NULL",
    )
    assert len(fork) == 1 and str(fork[0][1]).endswith(" (fork #1)") and fork[0][3] == 0
    assert orjson.loads(str(fork[0][2]))["type"] == "before"
    copies = [
        str(r[0])
        for r in q(path, "SELECT id FROM session_message WHERE session_id = ?", fork[0][0])
    ]
    assert copies and all(re.fullmatch(r"msg_[0-9a-f]{12}\w{14}_\d+", c) for c in copies)
    assert counted["fork_copies"] == len(copies)
    all_input = naive(path, "session_message", "type = 'assistant'")
    assert all_input > counted["tokens_input"]  # the copies' tokens are duplicates
    assert one(path, "SELECT count(*) FROM event WHERE type = 'session.revert.committed.1'") == 1
    assert one(path, "SELECT count(*) FROM session_v2 WHERE time_archived IS NOT NULL") == 1
    assert store.deleted and not q(path, "SELECT 1 FROM session_v2 WHERE id = ?", store.deleted[0])
    rollup = int(one(path, "SELECT sum(tokens_input) FROM session_v2"))
    assert rollup != counted["tokens_input"]  # title usage in, revert never taken out
    assert one(path, "SELECT count(*) FROM event WHERE type = 'session.usage.recorded.1'")
    assert counted["compaction_cost"] > 0 and counted["compaction_tokens_input"] > 0
    kinds = {str(r[0]) for r in q(path, "SELECT DISTINCT type FROM session_message")}
    assert {"user", "assistant", "compaction", "synthetic", "shell", "idle"} <= kinds
    assert {"model-switched", "agent-switched"} <= kinds
    tools = {
        str(r[0])
        for r in q(
            path,
            "SELECT json_extract(c.value, '$.name') FROM "
            "session_message, json_each(data, '$.content') c",
        )
    }
    assert "shell" in tools and "bash" not in tools


def test_an_upgraded_store_keeps_unmigrated_dropped_and_deleted_history_for_the_recount(
    stores: dict[str, Store],
) -> None:
    store = stores["upgraded"]
    path, counted = store.path, recount(store.path)
    state = orjson.loads(str(one(path, "SELECT value FROM kv WHERE key = 'migration.v1-v2'")))
    assert state["phase"] == "sessions"
    cursor = state["cursor"]
    unmigrated = q(path, "SELECT id FROM session WHERE id < ?", cursor)
    assert unmigrated and not q(
        path, "SELECT 1 FROM session_v2 WHERE id < ? AND id IN (SELECT id FROM session)", cursor
    )
    gone = q(
        path,
        "SELECT id FROM session WHERE id >= ? AND id NOT IN (SELECT id FROM session_v2)",
        cursor,
    )
    assert gone and gone[0][0] in store.deleted  # frozen 1.x rows of a session deleted in 2.x
    assert not q(path, "SELECT 1 FROM event WHERE type LIKE 'message.%'")  # log cleared
    migrated = q(path, "SELECT id FROM session_v2 WHERE id IN (SELECT id FROM session)")
    for (sid,) in migrated:
        seqs = [
            r[0]
            for r in q(
                path,
                "SELECT seq FROM session_message WHERE session_id = ? "
                "AND type != 'system' ORDER BY seq",
                sid,
            )
        ]
        assert seqs == list(range(len(seqs)))
    dropped = q(
        path,
        "SELECT m.id FROM message m JOIN session_v2 s ON s.id = m.session_id "
        "WHERE m.id NOT IN (SELECT id FROM session_message)",
    )
    assert dropped
    assert q(
        path,
        "SELECT 1 FROM session_message WHERE type = 'compaction' AND id IN (SELECT id "
        "FROM message) AND json_extract(data, '$.tokens') IS NULL",
    )
    both = naive(path, "message", "json_extract(data, '$.role') = 'assistant'") + naive(
        path, "session_message", "type = 'assistant'"
    )
    assert (
        both
        > counted["tokens_input"]
        > naive(
            path,
            "session_message",
            "type = 'assistant' AND session_id IN (SELECT id FROM session_v2)",
        )
    )
    assert counted["sessions"] == int(one(path, "SELECT count(*) FROM session_v2")) + len(
        unmigrated
    )


def test_a_completed_migration_leaves_no_1x_session_unmigrated(tmp_path: Path) -> None:
    store = build(tmp_path, "upgraded", sessions=3, migrated=1.0)
    state = one(store.path, "SELECT value FROM kv WHERE key = 'migration.v1-v2'")
    assert orjson.loads(str(state)) == {"phase": "completed"}
    v1 = {r[0] for r in q(store.path, "SELECT id FROM session")}
    v2 = {r[0] for r in q(store.path, "SELECT id FROM session_v2")}
    assert v1 - v2 == set(store.deleted) & v1  # only the one deleted in 2.x is missing
    assert recount(store.path)["sessions"] == len(v2)


@pytest.mark.parametrize("generation", ["1.18", "2.x", "upgraded"])
def test_the_same_seed_writes_the_same_rows(tmp_path: Path, generation: str) -> None:
    def dump(path: Path) -> list[tuple[object, ...]]:
        out: list[tuple[object, ...]] = []
        for table in sorted(tables(path)):
            out += [(table, *r) for r in q(path, f"SELECT * FROM {table} ORDER BY 1, 2")]
        return out

    a = build(tmp_path / "a", generation, sessions=3)
    b = build(tmp_path / "b", generation, sessions=3)
    assert dump(a.path) == dump(b.path) and len(dump(a.path)) > 100


def test_a_2x_assistant_row_is_updated_in_place_while_it_streams(tmp_path: Path) -> None:
    seen: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    with SqliteSimulator(tmp_path / "storage", seed=5, generation="2.x") as sim:
        reader = sqlite3.connect(f"file:{sim.db_path}?mode=ro", uri=True)

        def on_write(key: str) -> None:
            table, _, rid = key.partition("/")
            if table == "session_message":
                seen[rid] += reader.execute(
                    "SELECT type, seq, time_updated FROM session_message WHERE id = ?", [rid]
                ).fetchall()

        written = WriteCount(200, then=on_write)
        report = sim.run(0, 120.0, stop=written.enough, on_write=written)
        reader.close()
    assert report.writes > 50
    streamed = [v for v in seen.values() if v and v[0][0] == "assistant" and len(v) >= 4]
    assert streamed
    for versions in streamed:
        assert len({v[1] for v in versions}) == 1  # seq unchanged
        times = [int(str(v[2])) for v in versions]
        assert times == sorted(times) and len(set(times)) == len(times)


def test_the_cli_writes_the_generation_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "storage"
    argv = ["simulate", "--root", str(root), "--sqlite", "--once", "--sessions", "2"]
    assert main([*argv, "--generation", "1.18"]) == 0
    assert orjson.loads(capsys.readouterr().out)["generation"] == "1.18"
    assert "session_v2" not in tables(tmp_path / "opencode.db")
    other = tmp_path / "b" / "storage"
    assert main(["simulate", "--root", str(other), "--sqlite", "--once", "--sessions", "2"]) == 0
    assert "session_v2" in tables(tmp_path / "b" / "opencode.db")  # 2.x by default
    assert main(["simulate", "--root", str(root), "--generation", "2.x"]) != 0
