"""The test oracle: an independent recount, in plain SQL over an OpenCode SQLite file, of what
each logical session and message adds up to. Never imports indexer/ (it checks indexer/)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Section numbers cite /work/shared/research/opencode_sqlite_2026.md.

# §7 rule 1: a 1.x session is migrated when kv says phase "completed", or its id >= the cursor
# (V1Migration walks sessions ORDER BY id DESC and stores the cursor before copying).
_MIGRATED = """(SELECT CASE
    WHEN json_extract(value, '$.phase') = 'completed' THEN 1
    WHEN json_extract(value, '$.cursor') IS NOT NULL AND s.id >= json_extract(value, '$.cursor')
    THEN 1 ELSE 0 END FROM kv WHERE key = 'migration.v1-v2')"""

# §6 + projector.ts projectFork: a fork copies the parent's settled rows with the SAME seq,
# time_created, time_updated and data under new ids. A row of a forked session is a copy when the
# parent (fork_session_id) still holds a row with the same (seq, time_created): that pair is what
# the projector preserves, and it stops matching once the parent row is reverted or the parent
# deleted, when the copy becomes the only instance and must count.
_FORK_COPY = """EXISTS (SELECT 1 FROM session_v2 f JOIN session_message p
    ON p.session_id = f.fork_session_id
    WHERE f.id = m.session_id AND p.seq = m.seq AND p.time_created = m.time_created)"""


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def recount(db_path: Path) -> dict[str, float | int]:
    """Sessions, user/assistant messages, tool calls, fork copies and usage sums, each logical
    record once. Usage sums cover counted ASSISTANT messages only (§7 rule 3); 2.x compaction
    usage is returned apart; `event` rows and rollup columns are never read (§3, §6)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return _recount(db, _tables(db))
    finally:
        db.close()


def _recount(db: sqlite3.Connection, tables: set[str]) -> dict[str, float | int]:
    v2 = "session_v2" in tables
    v1 = "message" in tables and "session" in tables
    has_kv = "kv" in tables
    db.execute("CREATE TEMP TABLE msg (id TEXT, role TEXT, data TEXT, gen INTEGER)")
    db.execute("CREATE TEMP TABLE ses (id TEXT PRIMARY KEY)")
    fork_copies = 0
    if v2:
        db.execute("INSERT INTO ses SELECT id FROM session_v2")
        # §7 rule 2: 2.x rows of counted sessions, minus fork copies; only user and assistant
        # are messages in the sense of the 1.x roles (§5: other types are not turns).
        db.execute(
            f"""INSERT INTO msg SELECT m.id, m.type, m.data, 2 FROM session_message m
            JOIN session_v2 s ON s.id = m.session_id
            WHERE m.type IN ('user', 'assistant') AND NOT {_FORK_COPY}"""
        )
        fork_copies = db.execute(
            f"SELECT count(*) FROM session_message m WHERE {_FORK_COPY}"
        ).fetchone()[0]
    if v1:
        if v2:
            # §7 rule 1: unmigrated 1.x sessions count; a migrated id absent from session_v2
            # was deleted in 2.x and never comes back.
            migrated = _MIGRATED if has_kv else "0"
            db.execute(
                f"""INSERT INTO ses SELECT s.id FROM session s
                WHERE s.id NOT IN (SELECT id FROM session_v2) AND coalesce({migrated}, 0) = 0"""
            )
            # §7 rule 2: 1.x rows whose id is absent from session_message (turns the migration
            # dropped, and every row of unmigrated sessions), for sessions that count.
            db.execute(
                """INSERT INTO msg SELECT m.id, json_extract(m.data, '$.role'), m.data, 1
                FROM message m JOIN ses ON ses.id = m.session_id
                WHERE m.id NOT IN (SELECT id FROM session_message)"""
            )
        else:
            # A 1.x file (§2): the message table is the history; session_message holds only
            # switch rows, which are neither user nor assistant messages.
            db.execute("INSERT INTO ses SELECT id FROM session")
            db.execute(
                """INSERT INTO msg SELECT id, json_extract(data, '$.role'), data, 1
                FROM message"""
            )
    out: dict[str, float | int] = {"sessions": db.execute("SELECT count(*) FROM ses").fetchone()[0]}
    out["user_messages"] = db.execute("SELECT count(*) FROM msg WHERE role = 'user'").fetchone()[0]
    out["assistant_messages"] = db.execute(
        "SELECT count(*) FROM msg WHERE role = 'assistant'"
    ).fetchone()[0]
    tools = db.execute(
        """SELECT count(*) FROM msg, json_each(msg.data, '$.content') c
        WHERE msg.gen = 2 AND msg.role = 'assistant' AND json_extract(c.value, '$.type') = 'tool'"""
    ).fetchone()[0]
    if v1:  # 1.x tool calls are parts of type 'tool' of counted messages
        tools += db.execute(
            """SELECT count(*) FROM part p JOIN msg ON msg.id = p.message_id AND msg.gen = 1
            WHERE json_extract(p.data, '$.type') = 'tool'"""
        ).fetchone()[0]
    out["tool_calls"] = tools
    out["fork_copies"] = fork_copies
    usage = db.execute(
        """SELECT """
        + ", ".join(
            f"coalesce(sum(json_extract(data, '$.{path}')), 0)"
            for path in (
                "tokens.input",
                "tokens.output",
                "tokens.reasoning",
                "tokens.cache.read",
                "tokens.cache.write",
                "cost",
            )
        )
        + " FROM msg WHERE role = 'assistant'"
    ).fetchone()
    keys = ("tokens_input", "tokens_output", "tokens_reasoning")
    keys += ("tokens_cache_read", "tokens_cache_write", "cost")
    out |= dict(zip(keys, usage, strict=True))
    out["cost"] = round(float(out["cost"]), 9)
    # §5/§8: native 2.x compaction rows carry the usage of the compaction request: reported
    # apart, never part of the assistant sums (fork copies excluded as above).
    compaction = (0.0, 0)
    if v2:
        compaction = db.execute(
            f"""SELECT coalesce(sum(json_extract(m.data, '$.cost')), 0),
            coalesce(sum(json_extract(m.data, '$.tokens.input')), 0)
            FROM session_message m JOIN session_v2 s ON s.id = m.session_id
            WHERE m.type = 'compaction' AND NOT {_FORK_COPY}"""
        ).fetchone()
    out["compaction_cost"] = round(float(compaction[0]), 9)
    out["compaction_tokens_input"] = int(compaction[1])
    return out
