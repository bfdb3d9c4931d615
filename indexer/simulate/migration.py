"""The 1.x -> 2.x upgrade as OpenCode's V1Migration runs it (research note §7, v1-migration.ts):
session_v2 rows with the same ids, transformed session_message rows, the kv cursor; and the writer
that switches from 1.18 to 2.x writes at that point. Never decides the story's content."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from indexer.simulate.ids import IdMint
from indexer.simulate.report import Tally
from indexer.simulate.sqlite_writer import SqliteWriter
from indexer.simulate.store_schemas import upgrade_to_2x
from indexer.simulate.v2_store import Row
from indexer.simulate.v2_writer import V2Writer
from indexer.simulate.vocabulary import Json

KEY = "migration.v1-v2"
SYSTEM_TEXT = "The available tools have changed since this session started."
_COPY = (
    "id, project_id, workspace_id, parent_id, slug, directory, path, title, version, share_url, "
    "summary_additions, summary_deletions, summary_files, summary_diffs, metadata, cost, "
    "tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, tokens_cache_write, "
    "revert, permission, agent, model, time_created, time_updated, time_compacting, time_archived"
)
_FINISHES = ("stop", "length", "tool-calls", "content-filter", "error", "unknown")


def _tool(part: Json, fallback: int) -> Json:
    """migrateTool: the 1.x name and input are kept; output becomes state.content."""
    state, base = part["state"], {"type": "tool", "id": part["callID"], "name": part["tool"]}
    if state["status"] == "completed":
        content = [{"type": "text", "text": state["output"]}]
        new = {"status": "completed", "input": state["input"], "content": content}
        return (
            base
            | {"state": new | {"metadata": state.get("metadata")}}
            | {"time": {"created": state["time"]["start"], "completed": state["time"]["end"]}}
        )
    if state["status"] == "error":
        error = {"type": "tool.execution", "message": state["error"]}
        new = {"status": "error", "input": state["input"], "error": error}
        return (
            base
            | {"state": new}
            | {"time": {"created": state["time"]["start"], "completed": state["time"]["end"]}}
        )
    error = {"type": "tool.interrupted", "message": "Tool execution was interrupted before V2"}
    new = {"status": "error", "input": state.get("input", {}), "error": error}
    return base | {"state": new, "time": {"created": fallback}}


def transform(messages: list[Any], parts: list[Any]) -> list[tuple[str, str, int, int, Json]]:
    """transformSession over one session's 1.x rows: (id, type, created, updated, data) in seq
    order. Compaction user + summary assistant fold into one row with no usage; the summary
    assistant, subtask-only prompts and their task-tool assistants are dropped."""
    msgs = sorted((r[1], r[0], r[2], orjson.loads(r[3])) for r in messages)  # (created, id)
    owned: dict[str, list[Json]] = {}
    for _pid, mid, data in sorted(parts):
        owned.setdefault(mid, []).append(orjson.loads(data))
    {m[1]: m for m in msgs}
    out: list[tuple[str, str, int, int, Json]] = []
    paired: set[str] = set()
    for created, mid, updated, doc in msgs:
        if mid in paired:
            continue
        mine = owned.get(mid, [])
        if doc["role"] == "user":
            if any(p["type"] == "compaction" for p in mine):
                pair = next(
                    (m for m in msgs if m[3].get("parentID") == mid and m[3].get("summary")), None
                )
                if pair is None:
                    continue
                paired.add(pair[1])
                summary = "\n\n".join(
                    p["text"] for p in owned.get(pair[1], []) if p["type"] == "text"
                )
                data = {"status": "completed", "reason": "auto", "summary": summary, "recent": ""}
                out.append(
                    (
                        mid,
                        "compaction",
                        created,
                        max(updated, pair[2]),
                        data | {"time": {"created": created}},
                    )
                )
                continue
            texts = [p for p in mine if p["type"] == "text" and not p.get("ignored")]
            files = [p for p in mine if p["type"] == "file"]
            if any(p["type"] == "subtask" for p in mine) and not texts and not files:
                continue
            ordinary = [p["text"] for p in texts if not p.get("synthetic")]
            ordinary += [
                f"[Attachment unavailable after migration: {p['filename']} ({p['mime']})]"
                for p in files
            ]
            synthetic = [p["text"] for p in texts if p.get("synthetic")]
            if synthetic and not ordinary:
                out.append(
                    (
                        mid,
                        "synthetic",
                        created,
                        updated,
                        {"text": "\n\n".join(synthetic), "time": {"created": created}},
                    )
                )
                continue
            out.append(
                (
                    mid,
                    "user",
                    created,
                    updated,
                    {"text": "\n\n".join(ordinary), "time": {"created": created}},
                )
            )
            continue
        parent = owned.get(doc.get("parentID", ""), [])
        if any(p["type"] == "subtask" for p in parent) and any(
            p["type"] == "tool" and p["tool"] == "task" for p in mine
        ):
            continue
        content: list[Json] = []
        for p in mine:
            if p["type"] == "text":
                content.append({"type": "text", "text": p["text"]})
            elif p["type"] == "reasoning":
                t = {"created": p["time"]["start"]} | (
                    {"completed": p["time"]["end"]} if "end" in p["time"] else {}
                )
                content.append({"type": "reasoning", "text": p["text"], "time": t})
            elif p["type"] == "tool":
                content.append(_tool(p, created))
        snap: Json = {}
        starts = [p["snapshot"] for p in mine if p["type"] == "step-start"]
        ends = [p["snapshot"] for p in mine if p["type"] == "step-finish"]
        files_ = sorted({f for p in mine if p["type"] == "patch" for f in p["files"]})
        snap |= {"start": starts[0]} if starts else {}
        snap |= {"end": ends[-1]} if ends else {}
        snap |= {"files": files_} if files_ else {}
        model = {"providerID": doc["providerID"], "id": doc["modelID"], "variant": "default"}
        data = {"agent": doc.get("agent"), "model": model, "content": content}
        data |= {"snapshot": snap} if snap else {}
        if doc.get("finish"):
            data["finish"] = doc["finish"] if doc["finish"] in _FINISHES else "unknown"
        data |= {"cost": doc["cost"], "tokens": doc["tokens"]}
        if doc.get("error"):
            data["error"] = {"type": "unknown", "message": doc["error"]["data"].get("message", "")}
        data["time"] = {"created": created} | (
            {"completed": updated} if "completed" in doc["time"] else {}
        )
        out.append((mid, "assistant", created, updated, data))
    return out


def migrate(db: sqlite3.Connection, ids: IdMint, now: int, share: float) -> list[Row]:
    """Run V1Migration over the 1.x sessions (ORDER BY id DESC); with share < 1 it stops after
    that share of them, leaving kv at phase "sessions" with its cursor (resumable). Then the
    first 2.x start appends a `system` row to each migrated session (seen in [C1]; the
    migration's transformSession itself writes none)."""
    upgrade_to_2x(db)
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM event")  # the whole 1.x event log goes (§7)
    db.execute(
        "INSERT INTO kv (key, value, time_created, time_updated) VALUES (?, ?, ?, ?)",
        [KEY, '{"phase":"sessions"}', now, now],
    )
    db.execute("COMMIT")
    sessions = [r[0] for r in db.execute("SELECT id FROM session ORDER BY id DESC")]
    todo = (
        sessions
        if share >= 1
        else sessions[: max(1, min(len(sessions) - 1, round(len(sessions) * share)))]
    )
    rows: list[Row] = []
    for sid in todo:
        db.execute("BEGIN IMMEDIATE")
        cursor = orjson.dumps({"phase": "sessions", "cursor": sid}).decode()
        db.execute("UPDATE kv SET value = ?, time_updated = ? WHERE key = ?", [cursor, now, KEY])
        db.execute(
            f"INSERT OR IGNORE INTO session_v2 ({_COPY}) SELECT {_COPY} FROM session WHERE id = ?",
            [sid],
        )
        messages = db.execute(
            "SELECT id, time_created, time_updated, data FROM message WHERE session_id = ?", [sid]
        ).fetchall()
        parts = db.execute(
            "SELECT id, message_id, data FROM part WHERE session_id = ?", [sid]
        ).fetchall()
        db.execute("DELETE FROM session_message WHERE session_id = ?", [sid])
        made = transform(messages, parts)
        for seq, (mid, kind, created, updated, data) in enumerate(made):
            db.execute(
                "INSERT INTO session_message (id, session_id, type, seq, time_created, "
                "time_updated, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [mid, sid, kind, seq, created, updated, orjson.dumps(data).decode()],
            )
            rows.append(Row(mid, sid, kind, seq, created, updated, data))
        # totals = sum over ALL 1.x assistants, dropped ones included (§7)
        db.execute(
            "UPDATE session_v2 SET (cost, tokens_input, tokens_output, tokens_reasoning, "
            "tokens_cache_read, tokens_cache_write) = (SELECT coalesce(sum(json_extract(data, "
            "'$.cost')), 0), "
            + ", ".join(
                f"coalesce(sum(json_extract(data, '$.tokens.{k}')), 0)"
                for k in ("input", "output", "reasoning", "cache.read", "cache.write")
            )
            + " FROM message WHERE session_id = ? AND json_extract(data, '$.role') = "
            "'assistant'), revert = NULL, time_compacting = NULL WHERE id = ?",
            [sid, sid],
        )
        db.execute(
            "INSERT INTO event_sequence (aggregate_id, seq) VALUES (?, ?) ON CONFLICT "
            "(aggregate_id) DO UPDATE SET seq = excluded.seq, owner_id = NULL",
            [sid, len(made) - 1],
        )
        db.execute("COMMIT")
    if len(todo) == len(sessions):
        db.execute(
            "UPDATE kv SET value = ?, time_updated = ? WHERE key = ?",
            ['{"phase":"completed"}', now, KEY],
        )
    return rows


class UpgradeWriter:
    """Writes 1.18 history until upgrade(), then migrates and writes as 2.x on the same file."""

    def __init__(
        self,
        root: Path,
        seed: int,
        db_path: Path | None,
        delete_share: float,
        checkpoint_every: int,
        share: float,
    ) -> None:
        self.v1 = SqliteWriter(root, seed, db_path, delete_share, checkpoint_every, "1.18")
        self.v2: V2Writer | None = None
        self.tally: Tally = self.v1.tally
        self.db_path = self.v1.db_path
        self._args = (root, seed, delete_share, checkpoint_every)
        self._share = share
        self.deleted_sessions: list[str] = self.v1.deleted_sessions

    def upgrade(self, now: int) -> None:
        root, seed, delete_share, every = self._args
        db = self.v1._connection()
        v2 = V2Writer(root, seed, self.db_path, delete_share, every, self.v1.files, db)
        for row in migrate(db, v2.store.ids, now, self._share):
            v2.store.rows[row.id] = row
            v2.row_changed(row)
        self.v1.forget_switch_rows(db)
        migrated = [r[0] for r in db.execute("SELECT id FROM session_v2 ORDER BY id DESC")]
        for sid in migrated:
            v2.session_changed(sid)
            with v2.store.tx():
                data = {"text": SYSTEM_TEXT, "time": {"created": now}}
                row = v2.store.insert(
                    sid, v2.store.ids.mint("msg", now), "system", data, now, "session.system.1"
                )
            v2.row_changed(row)
        # A migrated session deleted in 2.x: only session_v2 loses it; its frozen 1.x rows stay.
        tops = [
            s
            for s in migrated
            if not db.execute("SELECT parent_id FROM session_v2 WHERE id = ?", [s]).fetchone()[0]
        ]
        for sid in tops[:1]:
            for child in db.execute("SELECT id FROM session_v2 WHERE parent_id = ?", [sid]):
                v2.adopt(child[0], sid)
            v2.adopt(sid, None)
            v2.delete_session(sid)
        self.deleted_sessions += v2.deleted_sessions
        v2.deleted_sessions = self.deleted_sessions
        v2.life.deleted = self.deleted_sessions
        self.v2 = v2

    def write(self, rel: str, data: bytes, now_ms: int) -> None:
        (self.v2 or self.v1).write(rel, data, now_ms)

    def settle(self, rel_paths: tuple[str, ...]) -> None:
        (self.v2 or self.v1).settle(rel_paths)

    def expected_files(self) -> dict[str, bytes]:
        return self.v1.expected_files()

    def expected_rows(self) -> dict[str, bytes]:
        return self.v1.expected_rows() | (self.v2.expected_rows() if self.v2 else {})

    def delete_session(self, sid: str) -> list[str]:
        return self.v2.delete_session(sid) if self.v2 else self.v1.delete_session(sid)

    def close(self) -> None:
        self.v1.close()
