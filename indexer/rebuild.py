"""Rebuilds OpenCode's records from the rows of its SQLite store, the way OpenCode itself
rebuilds them (`fromRow`), so the same row builders parse them as the JSON files. Pure: never
opens a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson


def _loads(text: object) -> Any:
    if not isinstance(text, str | bytes):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


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
    doc["title"] = row["title"]
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
    return doc


def todo_record(items: Iterable[tuple[Any, Any, Any]]) -> list[dict[str, Any]]:
    """A session's todo rows, in position order, as the array OpenCode's Todo.get returns."""
    return [{"content": c, "status": s, "priority": p} for c, s, p in items]


def data_record(data: object, ids: Mapping[str, str]) -> bytes | None:
    """`{...JSON.parse(data), id, sessionID[, messageID]}` as bytes; None when data is not a
    JSON object (then the raw text is parsed, to say exactly why)."""
    doc = _loads(data)
    if not isinstance(doc, dict):
        return None
    doc.update(ids)
    return orjson.dumps(doc)
