"""What OpenCode 2.x does around the story's turns (research note §5-6, projector.ts): switch,
synthetic, shell, compaction and idle rows, title-generation usage with no row, and forks, reverts,
archives and deletes of finished sessions. Never decides the story's content."""

from __future__ import annotations

import random
from typing import Protocol

import orjson

from indexer.simulate.json_writer import JsonWriter
from indexer.simulate.v2_store import Row, V2Store
from indexer.simulate.vocabulary import SLUG_ADJECTIVES, SLUG_NOUNS, Json


class V2Writer(Protocol):
    """What the lifecycle needs of v2_writer.V2Writer."""

    store: V2Store
    rng: random.Random
    files: JsonWriter

    def changed(self, key: str, record: bytes | None) -> None: ...

    def row_changed(self, row: Row) -> None: ...

    def session_changed(self, sid: str) -> None: ...

    def forget(self, keys: list[str]) -> None: ...

    def parent_of(self, sid: str) -> str | None: ...

    def adopt(self, sid: str, parent: str | None) -> None: ...

    def family(self, sid: str) -> list[str]: ...


# One action per finished top-level session, in turn, so a few sessions hold every trap.
ACTIONS = ("fork", "revert", "archive", "delete", "none")
# Rows a fork copies: settled history only (projector.ts projectFork).
SETTLED = (
    "(type != 'assistant' OR json_extract(data, '$.time.completed') IS NOT NULL) "
    "AND (type != 'shell' OR json_extract(data, '$.status') != 'running') "
    "AND (type != 'compaction' OR json_extract(data, '$.status') != 'running')"
)


class Lifecycle:
    """Runs on the writer's thread; every change is one transaction and one tally entry."""

    def __init__(self, writer: V2Writer, delete_share: float) -> None:
        self.w = writer
        self.now = 0
        self.deleted: list[str] = []
        self._delete = delete_share > 0
        self._prompts = self._turns = self._finished = 0

    def _row(self, sid: str, kind: str, data: Json, event: str, at: int) -> None:
        store = self.w.store
        with store.tx():
            row = store.insert(sid, store.ids.mint("msg", at), kind, data, at, event)
        self.w.row_changed(row)

    def prompt(self, user: Json, text: str, now: int) -> None:
        """Every 3rd prompt switches model or agent first; the user row; every 4th prompt is
        followed by a synthetic row."""
        sid, store = user["sessionID"], self.w.store
        self._prompts += 1
        model = {"id": user["model"]["modelID"], "providerID": user["model"]["providerID"]}
        if self._prompts % 3 == 0:
            at = now - 1
            if self._prompts % 2:
                data: Json = {
                    "model": model,
                    "previous": {"id": "gpt-5.1-codex"} | {"providerID": "openai"},
                }
                kind, column, value = "model-switched", "model", orjson.dumps(model).decode()
            else:
                data, kind = {"agent": user["agent"], "previous": "plan"}, "agent-switched"
                column, value = "agent", user["agent"]
            with store.tx():
                event = f"session.{column}.selected.1"
                row = store.insert(
                    sid,
                    store.ids.mint("msg", at),
                    kind,
                    data | {"time": {"created": at}},
                    at,
                    event,
                )
                store.db.execute(
                    f"UPDATE session_v2 SET {column} = ?, time_updated = ? WHERE id = ?",
                    [value, at, sid],
                )
            self.w.row_changed(row)
            self.w.session_changed(sid)
        data = {"time": {"created": user["time"]["created"]}, "text": text, "files": []}
        with store.tx():
            row = store.insert(sid, user["id"], "user", data, now, "session.inbox.delivered.1")
            store.db.execute(
                "UPDATE session_v2 SET agent = coalesce(agent, ?), model = coalesce(model, ?) "
                "WHERE id = ?",
                [user["agent"], orjson.dumps(model).decode(), sid],
            )
        self.w.row_changed(row)
        if self._prompts % 4 == 0:
            data = {"text": "Instructions from AGENTS.md", "description": "instructions"}
            self._row(
                sid, "synthetic", data | {"time": {"created": now}}, "session.synthetic.1", now
            )

    def turn_ended(self, sid: str, now: int) -> None:
        """The turn's idle row and session time_idle; every 3rd turn a compaction (its own usage,
        which the rollup does not take: projector.ts Compaction.Ended applies none); every 5th
        a shell command the user ran."""
        self._turns += 1
        store = self.w.store
        if self._turns % 3 == 0:
            at = now + 1
            data: Json = {"status": "running", "reason": "auto", "summary": "", "recent": ""}
            self._row(
                sid,
                "compaction",
                data | {"time": {"created": at}},
                "session.compaction.started.1",
                at,
            )
            row = store.last_of(sid, "compaction")
            assert row is not None
            tokens: Json = {"input": 20_000 + now % 977, "output": 800 + now % 97, "reasoning": 0}
            tokens["cache"] = {"read": 5_000, "write": 0}
            row.data |= {"status": "completed", "summary": "Goal, progress and next steps."}
            row.data |= {"cost": round(tokens["input"] * 1e-6, 6), "tokens": tokens}
            self._update(row, at + 30, "session.compaction.ended.1")
        if self._turns % 5 == 0:
            at = now + 40
            data = {"shellID": store.ids.mint("shl", at), "command": "git status --short"}
            self._row(
                sid,
                "shell",
                data | {"status": "running", "time": {"created": at}},
                "session.shell.started.1",
                at,
            )
            row = store.last_of(sid, "shell")
            assert row is not None
            row.data |= {"status": "completed", "exit": 0, "output": " M src/app.py\n"}
            row.data["time"]["completed"] = at + 25
            self._update(row, at + 25, "session.shell.ended.1")
        at = now + 70
        with store.tx():
            row = store.insert(
                sid,
                store.ids.mint("msg", at),
                "idle",
                {"outcome": "succeeded", "time": {"created": at}},
                at,
                "session.execution.succeeded.1",
            )
            store.db.execute(
                "UPDATE session_v2 SET time_idle = max(?, coalesce(time_idle + 1, ?)), "
                "idle_outcome = 'succeeded' WHERE id = ?",
                [at, at, sid],
            )
        self.w.row_changed(row)
        self.w.session_changed(sid)

    def _update(self, row: Row, at: int, event: str) -> None:
        with self.w.store.tx():
            self.w.store.update(row, at, event)
        self.w.row_changed(row)

    def title_usage(self, sid: str, now: int) -> None:
        """Title generation: usage recorded into the rollup with no message row (§6, [C2]).
        Runs in the caller's transaction."""
        tokens: Json = {"input": 900 + now % 613, "output": 12 + now % 17, "reasoning": 0}
        tokens["cache"] = {"read": 0, "write": 0}
        cost = round(tokens["input"] * 5e-7, 6)
        data = {"sessionID": sid, "cost": cost, "tokens": tokens}
        self.w.store.event(sid, "session.usage.recorded.1", data, now)
        self.w.store.add_usage(sid, cost, tokens)

    def settled(self, rel_paths: tuple[str, ...]) -> None:
        for rel in rel_paths:
            top, _, rest = rel.partition("/")
            if top != "session" or rest.count("/") != 1:
                continue
            sid = rest.rpartition("/")[2].removesuffix(".json")
            if self.w.parent_of(sid) is not None:
                continue
            action = ACTIONS[self._finished % len(ACTIONS)]
            self._finished += 1
            self.now += 1
            if action == "fork":
                self.fork(sid, self.now)
            elif action == "revert":
                self.revert(sid, self.now)
            elif action == "archive":
                self._session_update(sid, "time_archived = ?", "session.archived.1")
            elif action == "delete" and self._delete:
                self.delete(sid)

    def _session_update(self, sid: str, sets: str, event: str) -> None:
        with self.w.store.tx():
            self.w.store.event(sid, event, {"sessionID": sid}, self.now)
            self.w.store.db.execute(
                f"UPDATE session_v2 SET {sets}, time_updated = ? WHERE id = ?",
                [self.now, self.now, sid],
            )
        self.w.session_changed(sid)

    def _last_user(self, sid: str) -> tuple[str, int] | None:
        found = self.w.store.db.execute(
            "SELECT id, seq FROM session_message WHERE session_id = ? AND type = 'user' "
            "ORDER BY seq DESC LIMIT 1",
            [sid],
        ).fetchone()
        return (str(found[0]), int(found[1])) if found else None

    def fork(self, parent: str, now: int) -> str | None:
        """A new session_v2 row (fork_session_id, fork_boundary, "… (fork #1)", rollup 0) and
        copies of the parent's settled rows before the boundary: ids `msg_<event>_<seq>`, same
        seq, times and data (projector.ts projectFork)."""
        boundary, store = self._last_user(parent), self.w.store
        if boundary is None:
            return None
        rng = self.w.rng
        sid = store.ids.mint("ses", now, descending=True)
        slug = f"{rng.choice(SLUG_ADJECTIVES)}-{rng.choice(SLUG_NOUNS)}"
        fork_boundary = orjson.dumps({"type": "before", "messageID": boundary[0]}).decode()
        with store.tx():
            eid, _ = store.event(sid, "session.forked.1", {"parentID": parent}, now)
            store.db.execute(
                "INSERT INTO session_v2 (id, project_id, workspace_id, parent_id, fork_session_id, "
                "fork_boundary, slug, directory, path, title, agent, model, metadata, version, "
                "time_created, time_updated) SELECT ?, project_id, workspace_id, NULL, id, ?, ?, "
                "directory, path, CASE WHEN title IS NULL THEN NULL ELSE title || ' (fork #1)' "
                "END, agent, model, metadata, version, ?, ? FROM session_v2 WHERE id = ?",
                [sid, fork_boundary, slug, now, now, parent],
            )
            copies = store.db.execute(
                "SELECT type, seq, time_created, time_updated, data FROM session_message "
                f"WHERE session_id = ? AND seq < ? AND {SETTLED} ORDER BY seq",
                [parent, boundary[1]],
            ).fetchall()
            for kind, seq, created, updated, data in copies:
                cid = f"msg_{eid.removeprefix('evt_')}_{seq}"
                store.db.execute(
                    "INSERT INTO session_message (id, session_id, type, seq, time_created, "
                    "time_updated, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [cid, sid, kind, seq, created, updated, data],
                )
                store.rows[cid] = Row(cid, sid, kind, seq, created, updated, orjson.loads(data))
            if copies:  # Bus.reserveSequence: the fork's next event follows the copies
                store.db.execute(
                    "UPDATE event_sequence SET seq = max(seq, ?) WHERE aggregate_id = ?",
                    [copies[-1][1], sid],
                )
        self.w.adopt(sid, None)
        self.w.session_changed(sid)
        for _, seq, *_rest in copies:
            self.w.row_changed(store.rows[f"msg_{eid.removeprefix('evt_')}_{seq}"])
        return sid

    def revert(self, sid: str, now: int) -> None:
        """DELETE the rows from the boundary on; the rollup is never reduced (§6)."""
        boundary, store = self._last_user(sid), self.w.store
        if boundary is None:
            return
        with store.tx():
            store.event(sid, "session.revert.committed.1", {"to": boundary[0]}, now)
            gone = store.db.execute(
                "SELECT id FROM session_message WHERE session_id = ? AND seq >= ?",
                [sid, boundary[1]],
            ).fetchall()
            store.db.execute(
                "DELETE FROM session_message WHERE session_id = ? AND seq >= ?",
                [sid, boundary[1]],
            )
            store.db.execute(
                "UPDATE session_v2 SET revert = NULL, time_updated = ? WHERE id = ?", [now, sid]
            )
        for (mid,) in gone:
            store.rows.pop(mid, None)
            self.w.changed(f"session_message/{mid}", None)
        self.w.session_changed(sid)

    def delete(self, sid: str) -> list[str]:
        """DELETE FROM session_v2 (rows and todos go by cascade), children included."""
        doomed = self.w.family(sid)
        store = self.w.store
        with store.tx():
            for gone in doomed:
                store.event(gone, "session.deleted.1", {"sessionID": gone}, self.now)
            marks = ", ".join("?" * len(doomed))
            store.db.execute(f"DELETE FROM session_v2 WHERE id IN ({marks})", doomed)
        for gone in doomed:
            mids = [m for m, row in store.rows.items() if row.session == gone]
            for mid in mids:
                del store.rows[mid]
            self.w.forget([f"session_message/{m}" for m in mids] + [f"todo/{gone}"])
            self.w.files.delete(f"session_diff/{gone}.json")
            self.w.changed(f"session_v2/{gone}", None)
            self.deleted.append(gone)
        return doomed
