"""What OpenCode 1.18 writes beside 1.2's rows (research note §3): the event log repeating every
update, session rollups and settings, switch rows in session_message, and the 1.x turns V1Migration
later drops or folds (compaction, subtask, synthetic). Never decides the story's content."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from indexer.simulate.ids import IdMint
from indexer.simulate.vocabulary import Json, dump

Land = Callable[[str, bytes, int], None]  # rel path, JSON, now: a 1.x write through the writer

_ROLLUP = ", ".join(
    f"{col} = (SELECT coalesce(sum(json_extract(data, '$.{path}')), 0) FROM message "
    "WHERE session_id = :sid AND json_extract(data, '$.role') = 'assistant')"
    for col, path in (
        ("cost", "cost"),
        ("tokens_input", "tokens.input"),
        ("tokens_output", "tokens.output"),
        ("tokens_reasoning", "tokens.reasoning"),
        ("tokens_cache_read", "tokens.cache.read"),
        ("tokens_cache_write", "tokens.cache.write"),
    )
)


def append_event(
    db: sqlite3.Connection,
    ids: IdMint,
    sid: str,
    kind: str,
    data: Any,
    now: int,
    stamped: bool = False,
) -> tuple[str, int]:
    """One event row for aggregate `sid` at the next per-session seq (event_sequence); returns
    its id and seq. `stamped`: 2.x's event table has a `created` column. The caller holds the
    transaction."""
    db.execute(
        "INSERT INTO event_sequence (aggregate_id, seq) VALUES (?, 0) "
        "ON CONFLICT (aggregate_id) DO UPDATE SET seq = seq + 1",
        [sid],
    )
    (seq,) = db.execute("SELECT seq FROM event_sequence WHERE aggregate_id = ?", [sid]).fetchone()
    eid = ids.mint("evt", now)
    values = [eid, sid, seq, kind, orjson.dumps(data).decode()]
    if stamped:
        db.execute(
            "INSERT INTO event (id, aggregate_id, seq, type, data, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [*values, now],
        )
    else:
        db.execute(
            "INSERT INTO event (id, aggregate_id, seq, type, data) VALUES (?, ?, ?, ?, ?)", values
        )
    return eid, int(seq)


class V118Extras:
    """Runs inside the writer's transaction for each 1.x write (after_write), and adds OpenCode's
    other 1.x activity at turn boundaries on a fixed schedule, so every trap of the note is
    present in a few sessions: a switch row every 3rd prompt; a compaction pair, a subtask pair
    or a synthetic prompt at every 2nd, 3rd and 5th turn end. Used on the writer's thread."""

    def __init__(self, seed: int) -> None:
        self.ids = IdMint(f"v118:{seed}")
        self._prompts = 0
        self._turn_ends = 0
        self._seen: set[str] = set()
        self.switch_rows: dict[str, bytes] = {}  # "session_message/<id>" -> the row as written

    def after_write(self, db: sqlite3.Connection, top: str, doc: Any, now: int) -> None:
        """Repeat the update in `event` (never to be summed, §3) and keep the session's columns."""
        if top == "session":
            append_event(db, self.ids, doc["id"], "session.updated.1", {"info": doc}, now)
            db.execute(
                "UPDATE session SET path = ? WHERE id = ?",
                ["" if doc["directory"].startswith("/home/") else None, doc["id"]],
            )
        elif top == "message":
            sid = doc["sessionID"]
            append_event(db, self.ids, sid, "message.updated.1", {"info": doc}, now)
            if doc.get("role") == "assistant":  # rollups = sum over assistant messages [L]
                db.execute(f"UPDATE session SET {_ROLLUP} WHERE id = :sid", {"sid": sid})
            else:
                model = doc.get("model") or {}
                value = {"id": model.get("modelID"), "providerID": model.get("providerID")}
                db.execute(
                    "UPDATE session SET agent = ?, model = ? WHERE id = ?",
                    [doc.get("agent"), orjson.dumps(value).decode(), sid],
                )
        elif top == "part":
            part_event = {"part": doc, "time": now}
            append_event(db, self.ids, doc["sessionID"], "message.part.updated.1", part_event, now)

    def before_prompt(self, db: sqlite3.Connection, doc: Json, now: int) -> str | None:
        """A user message's first write: every 3rd prompt first switches model or agent (a
        session_message row, the only kind 1.x writes there, §2). Returns its row key."""
        if doc["id"] in self._seen:
            return None
        self._seen.add(doc["id"])
        self._prompts += 1
        if self._prompts % 3:
            return None
        sid, mid = doc["sessionID"], self.ids.mint("msg", now)
        if self._prompts % 2:
            model = doc.get("model") or {}
            data: Json = {"model": {"id": model.get("modelID"), "providerID": "openai"}}
            data["previous"] = {"id": "gpt-5.1-codex", "providerID": "openai"}
            kind = "model-switched"
        else:
            data, kind = {"agent": doc.get("agent"), "previous": "plan"}, "agent-switched"
        data = {**data, "time": {"created": now}}
        _, seq = append_event(db, self.ids, sid, f"session.{kind}.1", data, now)
        db.execute(
            "INSERT INTO session_message (id, session_id, type, seq, time_created, time_updated, "
            "data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [mid, sid, kind, seq, now, now, orjson.dumps(data).decode()],
        )
        key = f"session_message/{mid}"
        self.switch_rows[key] = dump({"type": kind, "seq": seq, **data})
        return key

    def turn_end(self, user: Json, now: int, land: Land) -> None:
        """After a turn's summary lands: maybe a compaction pair, a subtask pair or a synthetic
        prompt, each as 1.x message/part writes through `land`."""
        self._turn_ends += 1
        n, t = self._turn_ends, now
        if n % 2 == 0:
            self._compaction(user, t + 1, land)
        elif n % 3 == 0:
            self._subtask(user, t + 1, land)
        elif n % 5 == 0:
            self._synthetic(user, t + 1, land)

    def _message(self, user: Json, role: str, at: int, extra: Json) -> Json:
        head = {"id": self.ids.mint("msg", at), "sessionID": user["sessionID"], "role": role}
        return head | {"time": {"created": at}} | extra

    def _part(self, msg: Json, body: Json, land: Land, at: int) -> None:
        doc = {"id": self.ids.mint("prt", at), "sessionID": msg["sessionID"]}
        doc |= {"messageID": msg["id"], **body}
        land(f"part/{msg['id']}/{doc['id']}.json", dump(doc), at)

    def _assistant(self, user: Json, parent: Json, at: int, summary: bool) -> Json:
        model = user.get("model") or {}
        counts: Json = {"input": 4_000 + at % 997, "output": 300 + at % 211, "reasoning": 0}
        counts |= {"cache": {"read": 1_000 + at % 499, "write": 0}}
        body: Json = {"parentID": parent["id"], "modelID": model.get("modelID", "big-pickle")}
        body |= {"providerID": model.get("providerID", "opencode")}
        body |= {"mode": "compaction" if summary else "build", "agent": user.get("agent")}
        body |= {"path": {"cwd": "/", "root": "/"}, "cost": round(counts["input"] * 2e-6, 6)}
        body |= {"tokens": counts, "finish": "stop"}
        if summary:
            body["summary"] = True
        doc = self._message(user, "assistant", at, body)
        doc["time"]["completed"] = at + 40
        return doc

    def _compaction(self, user: Json, at: int, land: Land) -> None:
        """A compaction request (user + compaction part) and its summary:true assistant: the
        migration folds them into one `compaction` row and drops the assistant's usage (§7)."""
        asks = self._message(user, "user", at, {"agent": user.get("agent")})
        asks["model"] = user.get("model")
        land(f"message/{asks['sessionID']}/{asks['id']}.json", dump(asks), at)
        self._part(asks, {"type": "compaction", "auto": True}, land, at)
        reply = self._assistant(user, asks, at + 2, summary=True)
        land(f"message/{reply['sessionID']}/{reply['id']}.json", dump(reply), at + 2)
        text = {"type": "text", "text": "Summary: the work so far and what is left."}
        self._part(reply, text | {"time": {"start": at + 3, "end": at + 30}}, land, at + 3)

    def _subtask(self, user: Json, at: int, land: Land) -> None:
        """A subtask-only prompt and the assistant running its task tool: both dropped by the
        migration (§7), so only the 1.x rows hold that usage."""
        asks = self._message(user, "user", at, {"agent": user.get("agent")})
        asks["model"] = user.get("model")
        land(f"message/{asks['sessionID']}/{asks['id']}.json", dump(asks), at)
        subtask = {"type": "subtask", "prompt": "Survey the tests", "description": "Survey tests"}
        self._part(asks, subtask | {"agent": "explore"}, land, at)
        reply = self._assistant(user, asks, at + 2, summary=False)
        land(f"message/{reply['sessionID']}/{reply['id']}.json", dump(reply), at + 2)
        state = {"status": "completed", "input": {"description": "Survey tests"}}
        state |= {"output": "Done.", "title": "Survey tests", "metadata": {}}
        state |= {"time": {"start": at + 3, "end": at + 30}}
        call = {"type": "tool", "callID": self.ids.mint("call", at), "tool": "task"}
        self._part(reply, call | {"state": state}, land, at + 3)

    def _synthetic(self, user: Json, at: int, land: Land) -> None:
        """A prompt made of synthetic text only: the migration turns it into a `synthetic` row."""
        asks = self._message(user, "user", at, {"agent": user.get("agent")})
        asks["model"] = user.get("model")
        land(f"message/{asks['sessionID']}/{asks['id']}.json", dump(asks), at)
        text = {"type": "text", "text": "Called the Read tool with the file.", "synthetic": True}
        self._part(asks, text, land, at)
