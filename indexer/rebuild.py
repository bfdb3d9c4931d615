"""Rebuilds OpenCode's records from the rows of its SQLite store, the way OpenCode itself
rebuilds them (`fromRow`), so the same row builders parse them as the JSON files. Pure: never
opens a database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson


def _loads(text: object) -> Any:
    if not isinstance(text, str | bytes):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _put(doc: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        doc[key] = value


def project_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A project row as OpenCode's Project.fromRow gives it (undefined fields left out)."""
    doc: dict[str, Any] = {"id": row["id"], "worktree": row["worktree"]}
    _put(doc, "vcs", row.get("vcs") or None)
    _put(doc, "name", row.get("name"))
    icon = {k: v for k, v in (("url", row.get("icon_url")), ("color", row.get("icon_color"))) if v}
    if icon:
        doc["icon"] = icon
    time_: dict[str, Any] = {"created": row["time_created"], "updated": row["time_updated"]}
    _put(time_, "initialized", row.get("time_initialized"))
    doc["time"] = time_
    sandboxes = _loads(row.get("sandboxes"))
    if isinstance(sandboxes, list):
        doc["sandboxes"] = sandboxes
    return doc


def session_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A session row as OpenCode's Session.fromRow gives it (summary diffs are not read)."""
    doc: dict[str, Any] = {"id": row["id"]}
    _put(doc, "slug", row.get("slug"))
    doc["projectID"] = row["project_id"]
    _put(doc, "workspaceID", row.get("workspace_id"))
    _put(doc, "directory", row.get("directory"))
    _put(doc, "parentID", row.get("parent_id"))
    doc["title"] = row.get("title")
    _put(doc, "version", row.get("version"))
    counts = [row.get(f"summary_{k}") for k in ("additions", "deletions", "files")]
    if any(c is not None for c in counts):
        doc["summary"] = {
            k: c or 0 for k, c in zip(("additions", "deletions", "files"), counts, strict=True)
        }
    if row.get("share_url"):
        doc["share"] = {"url": row["share_url"]}
    time_: dict[str, Any] = {"created": row["time_created"], "updated": row["time_updated"]}
    _put(time_, "compacting", row.get("time_compacting"))
    _put(time_, "archived", row.get("time_archived"))
    doc["time"] = time_
    _put(doc, "path", row.get("path"))
    _put(doc, "agent", row.get("agent"))
    model = _loads(row.get("model"))
    if isinstance(model, dict):
        doc["model"] = model
    _put(doc, "forkSessionID", row.get("fork_session_id"))
    boundary = _loads(row.get("fork_boundary"))
    if isinstance(boundary, dict):
        doc["forkBoundary"] = boundary
    if row.get("cost") is not None:
        # OpenCode's own running totals (usage without a message row included, never reduced
        # on revert): kept apart from the per-message figures under a name that says so.
        doc["rollup"] = {
            "cost": row.get("cost"),
            "tokens": {
                "input": row.get("tokens_input"),
                "output": row.get("tokens_output"),
                "reasoning": row.get("tokens_reasoning"),
                "cache": {
                    "read": row.get("tokens_cache_read"),
                    "write": row.get("tokens_cache_write"),
                },
            },
        }
    return doc


def todo_record(items: Iterable[tuple[Any, Any, Any]]) -> list[dict[str, Any]]:
    """A session's todo rows, in position order, as the array OpenCode's Todo.get returns."""
    return [{"content": c, "status": s, "priority": p} for c, s, p in items]


def data_record(
    data: object,
    ids: Mapping[str, object],
    transform: Callable[[dict[str, Any]], object] | None = None,
) -> bytes | None:
    """`{...JSON.parse(data), id, sessionID[, messageID]}` (then transformed) as bytes; None
    when data is not a JSON object (then the raw text is parsed, to say exactly why)."""
    doc = _loads(data)
    if not isinstance(doc, dict):
        return None
    doc.update(ids)
    return orjson.dumps(transform(doc) if transform is not None else doc)


# --- OpenCode 2's session_message rows, as the documents the 1.x row builders read ----------

_ROLES = ("user", "assistant")


def session_message_record(doc: dict[str, Any]) -> dict[str, Any]:
    """A session_message row (data + id, sessionID, type, seq, forkCopy) as a message document:
    `role` only for user and assistant rows, the model flattened (variant included), the row's
    type kept; a row's own text (user, system, synthetic, skill), an assistant's snapshot
    {start, end, files} and a compaction's `reason` (as `auto`) carried over."""
    kind = doc.get("type")
    model = _dict(doc.get("model"))
    out: dict[str, Any] = {
        "id": doc.get("id"),
        "sessionID": doc.get("sessionID"),
        "type": kind,
        "forkCopy": bool(doc.get("forkCopy")),
    }
    if kind in _ROLES:
        out["role"] = kind
    for key in ("agent", "finish", "cost", "tokens", "time", "summary", "seq", "snapshot"):
        _put(out, key, doc.get(key))
    _put(out, "text", doc.get("text"))
    _put(out, "providerID", model.get("providerID"))
    _put(out, "modelID", model.get("id"))
    _put(out, "variant", model.get("variant"))
    if kind == "compaction" and isinstance(doc.get("reason"), str):
        out["auto"] = doc["reason"] == "auto"
    error = doc.get("error")
    if isinstance(error, dict):
        # 2.x errors are {type, message}; 1.x's {name, data: {message}} is what builders read.
        data = _dict(error.get("data"))
        out["error"] = {
            "name": error.get("name") or error.get("type"),
            "data": {"message": error.get("message") or data.get("message")},
        }
        for key in ("statusCode", "isRetryable"):
            _put(out["error"]["data"], key, data.get(key, error.get(key)))
    return out


def content_records(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """An assistant row's `content[]` items as part documents (ids `<message id>#<n>`): text
    and reasoning with their text, tools with their state, output and times."""
    items = doc.get("content")
    if not isinstance(items, list):
        return []
    base = {"messageID": doc.get("id"), "sessionID": doc.get("sessionID")}
    fork = bool(doc.get("forkCopy"))
    out: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        part: dict[str, Any] = {**base, "id": f"{doc.get('id')}#{n}", "type": item.get("type")}
        part["forkCopy"] = fork
        times = _dict(item.get("time"))
        span = {"start": times.get("created"), "end": times.get("completed")}
        if item.get("type") == "tool":
            part.update(tool=item.get("name"), callID=item.get("id"))
            part["state"] = _tool_state(item.get("state"), span)
        else:
            part["text"] = item.get("text")
            part["time"] = span
        out.append(part)
    return out


def _tool_state(state: object, span: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(state, dict):
        return {"time": span}
    out: dict[str, Any] = {
        "status": state.get("status"),
        "input": state.get("input"),
        "time": span,
    }
    texts = [
        str(c["text"])
        for c in state.get("content") or ()
        if isinstance(c, dict) and isinstance(c.get("text"), str)
    ]
    if texts:
        out["output"] = "\n".join(texts)
    error = state.get("error")
    if isinstance(error, dict):
        out["error"] = error.get("message")
    _put(out, "metadata", state.get("metadata"))
    return out
