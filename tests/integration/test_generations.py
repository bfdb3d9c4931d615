"""OpenCode's stores of today, indexed with no flags: 1.18 (switch rows in session_message, an
event table), 2.x (session_v2, session_message with content items, forks, reverts, archives,
deletes) and a 1.x file upgraded to 2.x (frozen 1.x tables, a partial migration, a migrated
session deleted in 2.x). Each total must equal an independent recount in plain SQL
(tests/support/recount.py), with every double-count trap of the research note in the store."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import sys
from pathlib import Path

import duckdb
import pytest

from indexer.kinds import TABLES, FileKind
from indexer.simulate import SqliteSimulator
from tests.faults.support import run_cli, spawned
from tests.helpers import wait_until
from tests.support.recount import recount

COUNTED = "NOT coalesce(is_fork_copy, false)"
TABLE_COLUMNS = TABLES[FileKind.SESSION].column_names


def index_totals(db: Path) -> dict[str, float | int]:
    """The same figures from the index: each logical record once, fork copies left out."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()
        users, assistants, fork_copies = conn.execute(
            f"SELECT count(*) FILTER (role = 'user' AND {COUNTED}), "
            f"count(*) FILTER (role = 'assistant' AND {COUNTED}), "
            "count(*) FILTER (is_fork_copy) FROM messages"
        ).fetchone() or (0, 0, 0)
        tool_calls = conn.execute(
            f"SELECT count(*) FROM parts WHERE type = 'tool' AND {COUNTED}"
        ).fetchone()
        usage = conn.execute(
            "SELECT coalesce(sum(tokens_input), 0), coalesce(sum(tokens_output), 0), "
            "coalesce(sum(tokens_reasoning), 0), coalesce(sum(tokens_cache_read), 0), "
            "coalesce(sum(tokens_cache_write), 0), coalesce(sum(cost), 0) FROM messages "
            f"WHERE role = 'assistant' AND {COUNTED}"
        ).fetchone()
        assert sessions is not None and usage is not None and tool_calls is not None
        names = ("input", "output", "reasoning", "cache_read", "cache_write")
        return {
            "sessions": sessions[0],
            "user_messages": users,
            "assistant_messages": assistants,
            "tool_calls": tool_calls[0],
            "fork_copies": fork_copies,
            **{f"tokens_{n}": int(v) for n, v in zip(names, usage[:5], strict=True)},
            "cost": round(float(usage[5]), 9),
        }
    finally:
        conn.close()


def written_store(tmp_path: Path, generation: str, sessions: int, seed: int) -> SqliteSimulator:
    """A store OpenCode wrote and then closed (its -wal checkpointed), under tmp_path."""
    sim = SqliteSimulator(tmp_path / "storage", seed=seed, generation=generation)
    sim.write_sessions(sessions)
    sim.close()
    return sim


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("generation", ["1.18", "2.x", "upgraded"])
def test_index_with_no_flags_counts_every_generation_exactly_once(
    tmp_path: Path, generation: str
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    sim = SqliteSimulator(root, seed=11, generation=generation)
    sim.write_sessions(8)
    sim.close()  # OpenCode's exit: the -wal is checkpointed, so the bytes below are final
    before = digest(sim.db_path)
    want = recount(sim.db_path)
    done = run_cli("index", "--storage", root, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["indexer"] == "v2"
    (source,) = summary["sources"]
    assert source["state"] == "ok", source
    got = index_totals(db)
    fields = [k for k in got if k in want]
    assert {k: got[k] for k in fields} == {
        k: round(want[k], 9) if k == "cost" else want[k] for k in fields
    }
    assert want["sessions"] > 0 and want["assistant_messages"] > 0 and want["tool_calls"] > 0
    assert digest(sim.db_path) == before  # indexing never writes OpenCode's file


def test_a_1_15_file_with_switch_rows_only_in_session_message_is_indexed_not_skipped(
    tmp_path: Path,
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    sim = written_store(tmp_path, "1.18", 4, seed=3)
    with sqlite3.connect(sim.db_path) as conn:
        types = {r[0] for r in conn.execute("SELECT DISTINCT type FROM session_message")}
    assert types and types <= {"model-switched", "agent-switched"}
    done = run_cli("index", "--storage", root, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    conn2 = duckdb.connect(str(db), read_only=True)
    try:
        kinds = dict(conn2.execute("SELECT type, count(*) FROM messages GROUP BY type").fetchall())
        roles = conn2.execute("SELECT count(*) FROM messages WHERE role IS NULL").fetchone()
    finally:
        conn2.close()
    assert kinds.get("user", 0) > 0 and kinds.get("assistant", 0) > 0
    assert set(kinds) & types  # the switch rows are there, with their type and no role
    assert roles is not None and roles[0] == sum(kinds.get(t, 0) for t in types)


def test_a_store_missing_a_required_column_gives_one_clear_line_and_exit_1(
    tmp_path: Path,
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    sim = written_store(tmp_path, "2.x", 1, seed=3)
    with sqlite3.connect(sim.db_path) as conn:
        for (index,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'session_message' "
            "AND sql IS NOT NULL"
        ).fetchall():
            conn.execute(f"DROP INDEX {index}")
        conn.execute("ALTER TABLE session_message DROP COLUMN seq")
    done = run_cli("index", "--storage", root, "--db", db)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "could not read" in line]
    assert len(lines) == 1
    assert "session_message without column seq" in lines[0]


def test_ocindex_run_on_a_2x_store_streamed_into_ends_equal_to_its_final_state(
    tmp_path: Path,
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    sim = SqliteSimulator(root, seed=5, generation="2.x")
    sim.write_sessions(2)  # history from before ocindex started
    run = [sys.executable, "-m", "indexer", "run", "--storage", str(root), "--db", str(db)]
    env = ("env", "OCINDEX_RECONCILE_INTERVAL_S=1")  # deletions are the reconciler's to find
    with spawned(run, prefix=env) as daemon:
        daemon.wait_for("live query endpoint on", timeout_s=60)
        report = sim.run(50, 10.0)  # replies streamed: inserts, in-place updates, forks, deletes
        assert report.writes >= 300
        sim.close()
        want = recount(sim.db_path)
        with sqlite3.connect(f"file:{sim.db_path}?mode=ro", uri=True) as conn:
            rows = {r[0] for r in conn.execute("SELECT id FROM session_message")}

        def caught_up() -> bool:
            sql = (
                "select (select count(*) from sessions) s, (select count(*) from messages "
                f"where role = 'assistant' and {COUNTED}) a, (select count(*) from messages) m"
            )
            done = run_cli("query", sql, "--db", db, "--format", "json")
            return done.returncode == 0 and json.loads(done.stdout) == [
                {"s": want["sessions"], "a": want["assistant_messages"], "m": len(rows)}
            ]

        assert wait_until(caught_up, 60)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.log()
    got = index_totals(db)
    assert got == {k: round(want[k], 9) if k == "cost" else want[k] for k in got}
    index = duckdb.connect(str(db), read_only=True)
    try:
        indexed = {r[0] for r in index.execute("SELECT id FROM messages").fetchall()}
    finally:
        index.close()
    assert indexed == rows  # every row, and no row the store no longer holds


def test_a_reply_s_usage_added_to_its_session_is_found_by_the_fast_path(tmp_path: Path) -> None:
    from indexer.sources.sqlite import SqliteSource

    root = tmp_path / "storage"
    sim = SqliteSimulator(root, seed=2, generation="2.x")
    sim.write_sessions(3)
    sim.close()
    src = SqliteSource(sim.db_path, root)
    src.poll_once()  # primed: everything already there is the startup reconcile's
    assert src.poll_once() == []
    conn = sqlite3.connect(sim.db_path, isolation_level=None)
    # The session updated longest ago: far behind the fast path's cursor on session_v2.
    sid, mid = conn.execute(
        "SELECT m.session_id, m.id FROM session_message m "
        "JOIN session_v2 s ON s.id = m.session_id WHERE m.type = 'assistant' "
        "ORDER BY s.time_updated, m.time_updated DESC LIMIT 1"
    ).fetchone()
    (updated,) = conn.execute("SELECT max(time_updated) FROM session_message").fetchone()
    before = conn.execute("SELECT time_updated FROM session_v2 WHERE id = ?", [sid]).fetchone()
    # As OpenCode's step.ended: the message updated in place (time_updated = now), the usage
    # added to the session with its time_updated left as it was.
    conn.execute("BEGIN")
    conn.execute(
        "UPDATE session_message SET data = json_set(data, '$.cost', 9.5), time_updated = ? "
        "WHERE id = ?",
        [updated + 1, mid],
    )
    conn.execute("UPDATE session_v2 SET cost = cost + 9.5 WHERE id = ?", [sid])
    conn.execute("COMMIT")
    conn.close()
    keys = {k.rel_path for k in src.poll_once()}
    session_key = f"{src.prefix}session_v2/{sid}"
    assert {f"{src.prefix}session_message/{mid}", session_key} <= keys
    (read,) = src.read([k for k in [src.key_for(session_key)] if k is not None])
    assert read.parsed is not None
    rollup = read.parsed.rows[0][TABLE_COLUMNS.index("rollup_cost")]
    assert rollup is not None and rollup >= 9.5
    with sqlite3.connect(sim.db_path) as check:
        assert (
            check.execute("SELECT time_updated FROM session_v2 WHERE id = ?", [sid]).fetchone()
            == before
        )


def test_a_store_without_any_json_tree_is_indexed_and_nothing_is_created_beside_it(
    tmp_path: Path,
) -> None:
    root, db = tmp_path / "opencode" / "storage", tmp_path / "index.duckdb"
    sim = SqliteSimulator(root, seed=4, generation="2.x")
    sim.write_sessions(2)
    sim.close()
    for path in sorted(root.rglob("*"), reverse=True):  # OpenCode 2.x writes no JSON tree
        path.unlink() if path.is_file() else path.rmdir()
    root.rmdir()
    done = run_cli("index", "--storage", root, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    want = recount(sim.db_path)
    assert index_totals(db)["assistant_messages"] == want["assistant_messages"] > 0
    assert not root.exists()


def test_a_wal_writer_with_no_busy_timeout_never_meets_sqlite_busy_while_ocindex_reads(
    tmp_path: Path,
) -> None:
    from indexer.pipeline.reconciler import ReconcilerConfig
    from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
    from indexer.sources.sqlite import make_sources

    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    sim = SqliteSimulator(root, seed=6, generation="2.x")
    sim.write_sessions(2)
    sim.close()
    writer = sqlite3.connect(sim.db_path, isolation_level=None, timeout=0)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA busy_timeout=0")  # any lock ocindex took would fail a write at once
    (mid, updated) = writer.execute(
        "SELECT id, time_updated FROM session_message WHERE type = 'assistant' LIMIT 1"
    ).fetchone()
    config = V2Config(reconciler=ReconcilerConfig(interval_s=0.2))  # full scans all the time
    v2 = UnifiedIndexerV2(root, db, config=config, sources=make_sources([sim.db_path], root))
    v2.start()
    try:
        for n in range(400):  # a reply streamed in place, one transaction per change
            writer.execute("BEGIN IMMEDIATE")
            writer.execute(
                "UPDATE session_message SET data = json_set(data, '$.cost', ?), time_updated = ? "
                "WHERE id = ?",
                [n / 1000, updated + n + 1, mid],
            )
            writer.execute("COMMIT")
            if n % 100 == 99:
                writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        assert v2.wait_idle(30, settle_s=0.3)
        cursor = v2.cursor()
        cost = cursor.execute("SELECT cost FROM messages WHERE id = ?", [mid]).fetchone()
        cursor.close()
    finally:
        v2.stop()
        writer.close()
    assert cost == (0.399,)
