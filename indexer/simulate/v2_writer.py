"""Lands the story's 1.x-shaped writes in an OpenCode 2.x store as 2.x writes them (research note
§5-6): session_v2 rows, user rows, assistant rows inserted with `content: []` then updated in place
as items start and end, final usage into the rollup. Never decides the story's content."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from indexer.simulate.ids import IdMint
from indexer.simulate.json_writer import JsonWriter
from indexer.simulate.ledger import StoreLedger
from indexer.simulate.store_schemas import create_store
from indexer.simulate.v2_lifecycle import Lifecycle
from indexer.simulate.v2_store import Row, V2Store
from indexer.simulate.vocabulary import Json, dump

V2_VERSION = "2.0.26"
RENAMED_TOOLS = {"bash": "shell", "apply_patch": "patch"}  # opencode#16077


def tool_input(name: str, inp: Json) -> Json:
    """2.x tool input: `filePath` is `path`."""
    return {("path" if k == "filePath" else k): v for k, v in inp.items()}


class V2Writer(StoreLedger):
    """One transaction per change; the tally counts a change per row inserted or updated in place
    (a story write OpenCode 2.x does not persist, such as a text delta, changes nothing).
    Row times come from the story's clock: the same seed writes the same rows. Used on one
    thread; expected_rows() is safe from any."""

    def __init__(
        self,
        root: Path,
        seed: int = 0,
        db_path: Path | None = None,
        delete_share: float = 0.2,
        checkpoint_every: int = 200,
        files: JsonWriter | None = None,
        db: sqlite3.Connection | None = None,
    ) -> None:
        super().__init__(files or JsonWriter(root))
        self.db_path = Path(db_path) if db_path else Path(root).parent / "opencode.db"
        self._db: sqlite3.Connection | None = db or create_store(self.db_path, "2.x")
        self.store = V2Store(self._db, IdMint(f"v2:{seed}"))
        self.rng = random.Random(f"v2:{seed}")
        self._checkpoint_every = max(1, checkpoint_every)
        self._roles: dict[str, str] = {}  # story message id -> role
        self._users: dict[str, Json] = {}  # user messages waiting for their text part
        self._items: dict[str, int] = {}  # story part id -> index in its row's content
        self._snapshots: dict[str, str] = {}  # assistant id -> snapshot at step start
        self._parents: dict[str, str | None] = {}
        self.life = Lifecycle(self, delete_share)
        self.deleted_sessions = self.life.deleted
        self.checkpoints = 0
        self.last_time_updated = 0

    def settle(self, rel_paths: tuple[str, ...]) -> None:
        self.life.settled(rel_paths)

    def changed(self, key: str, record: bytes | None) -> None:
        """Count one landed change and remember what the row now holds (None: gone)."""
        new = self._keep(key, record)
        if record is None:
            self.tally.removed(key)
        else:
            self.tally.wrote(key, new)
        if self.tally.writes % self._checkpoint_every == 0 and record is not None:
            self.store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1

    def row_changed(self, row: Row) -> None:
        self.last_time_updated = row.updated
        self.changed(f"session_message/{row.id}", row.record())

    def session_changed(self, sid: str) -> None:
        self.changed(f"session_v2/{sid}", self.store.session_record(sid))

    def forget(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._rows.pop(key, None)

    def parent_of(self, sid: str) -> str | None:
        return self._parents.get(sid)

    def adopt(self, sid: str, parent: str | None) -> None:
        self._parents[sid] = parent

    def family(self, sid: str) -> list[str]:
        """The session and its subagent sessions, depth first."""
        doomed, frontier = [sid], [sid]
        while frontier:
            frontier = [c for c, p in self._parents.items() if p in frontier]
            doomed += frontier
        return doomed

    def delete_session(self, sid: str) -> list[str]:
        """Delete a session as OpenCode 2.x does: DELETE FROM session_v2, children too, rows and
        todos by cascade; its session_diff file is removed. Returns the deleted ids."""
        deleted = self.life.delete(sid)
        for gone in deleted:
            self._parents.pop(gone, None)
        return deleted

    def write(self, rel: str, data: bytes, now_ms: int) -> None:
        self.life.now = max(self.life.now, now_ms)
        top, _, rest = rel.partition("/")
        if top == "session_diff":
            self.files.write(rel, data, now_ms)
            return
        doc = orjson.loads(data)
        if top == "project":
            self._project(doc, now_ms)
        elif top == "session":
            self._session(doc, now_ms)
        elif top == "todo":
            self._todos(rest.rpartition("/")[2].removesuffix(".json"), doc, now_ms)
        elif top == "message":
            self._message(doc, now_ms)
        elif top == "part":
            self._part(doc, now_ms)

    def _project(self, doc: Json, now: int) -> None:
        t = doc.get("time", {})
        with self.store.tx():
            self.store.db.execute(
                "INSERT INTO project (id, worktree, vcs, name, time_created, time_updated, "
                "time_initialized, sandboxes) VALUES (?, ?, ?, ?, ?, ?, ?, '[]') "
                "ON CONFLICT (id) DO UPDATE SET time_updated = excluded.time_updated",
                [
                    doc["id"],
                    doc["worktree"],
                    doc.get("vcs"),
                    None,
                    t.get("created", now),
                    now,
                    t.get("initialized"),
                ],
            )
        self.changed(f"project/{doc['id']}", dump(doc | {"time": {**t, "updated": now}}))

    def _session(self, doc: Json, now: int) -> None:
        sid, store = doc["id"], self.store
        title = doc.get("title") or None
        if title and title.startswith("New session - "):
            title = None  # 2.x leaves the title NULL until the session is named
        known = store.db.execute("SELECT title FROM session_v2 WHERE id = ?", [sid]).fetchone()
        summary = doc.get("summary") or {}
        with store.tx():
            if known is None:
                store.event(sid, "session.created.1", {"sessionID": sid, "title": title}, now)
                path = "" if doc["projectID"] != "global" else None
                store.db.execute(
                    "INSERT INTO session_v2 (id, project_id, parent_id, slug, directory, path, "
                    "title, version, time_created, time_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?)",
                    [
                        sid,
                        doc["projectID"],
                        doc.get("parentID"),
                        doc["slug"],
                        doc["directory"],
                        path,
                        title,
                        V2_VERSION,
                        doc["time"]["created"],
                        now,
                    ],
                )
                self._parents[sid] = doc.get("parentID")
            elif title and known[0] != title:
                store.event(sid, "session.renamed.1", {"sessionID": sid, "title": title}, now)
                store.db.execute(
                    "UPDATE session_v2 SET title = ?, time_updated = ? WHERE id = ?",
                    [title, now, sid],
                )
                self.life.title_usage(sid, now)  # naming costs tokens and writes no row
            else:
                store.event(sid, "session.updated.1", {"sessionID": sid, "summary": summary}, now)
                store.db.execute(
                    "UPDATE session_v2 SET summary_additions = ?, summary_deletions = ?, "
                    "summary_files = ?, time_updated = ? WHERE id = ?",
                    [
                        summary.get("additions"),
                        summary.get("deletions"),
                        summary.get("files"),
                        now,
                        sid,
                    ],
                )
        self.session_changed(sid)

    def _todos(self, sid: str, doc: Any, now: int) -> None:
        with self.store.tx():
            self.store.db.execute("DELETE FROM todo WHERE session_id = ?", [sid])
            self.store.db.executemany(
                "INSERT INTO todo (session_id, content, status, priority, position, "
                "time_created, time_updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (sid, t["content"], t["status"], t["priority"], i, now, now)
                    for i, t in enumerate(doc)
                ],
            )
        self.changed(f"todo/{sid}", dump(doc) if doc else None)

    def _message(self, doc: Json, now: int) -> None:
        mid, sid, role = doc["id"], doc["sessionID"], doc["role"]
        known = mid in self._roles
        self._roles[mid] = role
        if role == "user":
            if not known:
                self._users[mid] = doc  # its row lands with its text (2.x: text inline)
            elif "summary" in doc:
                self.life.turn_ended(sid, now)
            return
        store = self.store
        if not known:  # session.step.started: one row per step, content empty (§6)
            model = {"id": doc["modelID"], "providerID": doc["providerID"]}
            data = {"time": {"created": doc["time"]["created"]}, "agent": doc["agent"]}
            with store.tx():
                row = store.insert(
                    sid,
                    mid,
                    "assistant",
                    data | {"model": model, "content": []},
                    now,
                    "session.step.started.1",
                )
            self.row_changed(row)
            return
        row = store.rows[mid]
        if doc.get("error"):  # session.step.failed: completed, no usage
            error = {"type": "provider.error", "message": doc["error"]["data"]["message"]}
            row.data |= {"finish": "error", "error": error}
            row.data["time"]["completed"] = doc["time"].get("completed", now)
            self._apply(row, now, "session.step.failed.1", {"messageID": mid, "error": error})
        elif "finish" in doc:  # session.step.ended: finish, usage, completion
            tokens, cost = doc["tokens"], doc["cost"]
            end = {
                "start": self._snapshots.pop(mid, ""),
                "end": f"{self.rng.getrandbits(160):040x}",
            }
            row.data |= {"snapshot": end, "finish": doc["finish"], "cost": cost}
            row.data["tokens"] = {k: tokens[k] for k in ("input", "output", "reasoning", "cache")}
            row.data["time"]["completed"] = doc["time"]["completed"]
            ended = {"messageID": mid, "finish": doc["finish"], "cost": cost, "tokens": tokens}
            with store.tx():
                store.update(row, now, "session.step.ended.1", ended)
                store.add_usage(sid, cost, tokens)
            self.row_changed(row)
            self.session_changed(sid)
        elif doc.get("tokens", {}).get("output"):  # the stream is done: session.step.streamed
            row.data["time"]["streamed"] = now
            self._apply(row, now, "session.step.streamed.1", {"messageID": mid})

    def _apply(self, row: Row, now: int, event: str, event_data: Any) -> None:
        with self.store.tx():
            self.store.update(row, now, event, event_data)
        self.row_changed(row)

    def _part(self, doc: Json, now: int) -> None:
        mid, kind = doc["messageID"], doc["type"]
        if mid in self._users:
            if kind == "text":  # the prompt: its row is inserted whole
                self.life.prompt(self._users.pop(mid), doc["text"], now)
            return
        row = self.store.rows.get(mid)
        if row is None or row.type != "assistant":
            return
        if kind == "step-start":
            self._snapshots[mid] = doc.get("snapshot", "")
        elif kind in ("text", "reasoning"):
            self._text(row, doc, now)
        elif kind == "tool":
            self._tool(row, doc, now)

    def _text(self, row: Row, doc: Json, now: int) -> None:
        """Start and end persist; the deltas between them are not persisted (§6)."""
        kind, pid, times = doc["type"], doc["id"], doc.get("time", {})
        if pid not in self._items:
            item: Json = {"type": kind, "text": ""}
            if kind == "reasoning":
                item["time"] = {"created": times.get("start", now)}
            self._items[pid] = len(row.data["content"])
            row.data["content"].append(item)
            self._apply(row, now, f"session.{kind}.started.1", {"messageID": row.id})
        elif "end" in times:
            item = row.data["content"][self._items[pid]]
            item["text"] = doc["text"]
            if kind == "reasoning":
                item["time"]["completed"] = times["end"]
            self._apply(row, now, f"session.{kind}.ended.1", {"messageID": row.id})

    def _tool(self, row: Row, doc: Json, now: int) -> None:
        """streaming -> running -> completed | error, in place (§5)."""
        pid, state = doc["id"], doc["state"]
        name = str(RENAMED_TOOLS.get(doc["tool"], doc["tool"]))
        if pid not in self._items:
            self._items[pid] = len(row.data["content"])
            item = {"type": "tool", "id": doc["callID"], "name": name, "executed": False}
            item |= {"state": {"status": "streaming", "input": ""}, "time": {"created": now}}
            row.data["content"].append(item)
            self._apply(row, now, "session.tool.input.started.1", {"messageID": row.id})
            return
        item = row.data["content"][self._items[pid]]
        inp = tool_input(name, state.get("input", {}))
        status = state["status"]
        if status == "running":
            item["state"] = {"status": "running", "input": inp, "metadata": {}}
            item["executed"] = True
            item["time"]["ran"] = state["time"]["start"]
            event = "session.tool.called.1"
        elif status == "completed":
            content = [{"type": "text", "text": state["output"]}]
            item["state"] = {"status": "completed", "input": inp, "content": content}
            item["state"]["metadata"] = state.get("metadata", {})
            item["time"]["completed"] = state["time"]["end"]
            event = "session.tool.success.1"
        else:
            error = {"type": "tool.execution", "message": state["error"]}
            item["state"] = {"status": "error", "input": inp, "error": error}
            item["time"]["completed"] = state["time"]["end"]
            event = "session.tool.failed.1"
        self._apply(row, now, event, {"messageID": row.id, "callID": doc["callID"]})
