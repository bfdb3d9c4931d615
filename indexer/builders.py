"""One row builder per record kind: an OpenCode JSON document becomes a row in its table's
column order. Never touches the database or the filesystem, and never raises on a field.

Every field but the discriminators is optional across OpenCode versions, so every read is
defensive: a wrong type becomes NULL rather than an error. Ids come from the path (the key),
never from the file, as OpenCode's own migration does. Long strings are capped, never stored
whole, except the text of text and reasoning parts (and 2.x message text), kept up to
MAX_TEXT_BYTES with the cut recorded. The column order each builder follows is its table's, in
`indexer.kinds`; docs/schema.md says where each column comes from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

MAX_STRING_CHARS = 2000
PREVIEW_CHARS = 280
MAX_TEXT_BYTES = 1024 * 1024
"""The full text of a text or reasoning part is kept up to 1 MiB of UTF-8; a longer one is cut
there (on a character boundary) and `text_truncated` says so."""
TARGET_CHARS = 500
"""A tool call's target (path, command, pattern, url) is a short label, not the whole input."""

Row = tuple[Any, ...]


# --- defensive field readers: a wrong type reads as None -----------------------------------


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object, cap: int = MAX_STRING_CHARS) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= cap else value[:cap]


_BIGINT = 2**63
"""DuckDB's BIGINT holds -2**63 .. 2**63-1: a number outside it is stored as NULL."""


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -_BIGINT <= value < _BIGINT else None
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**62:
        return int(value)
    return None


def _float(value: object) -> float | None:
    """A finite number as a float; NaN, infinities and integers too large for a float are None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _ms(value: object) -> int | None:
    """Epoch milliseconds as OpenCode writes them; anything else is None."""
    ms = _int(value)
    return ms if ms is not None and 0 <= ms < 10**14 else None


def _len(value: object) -> int | None:
    return len(value) if isinstance(value, str) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: object) -> tuple[str | None, bool | None]:
    """The text kept whole up to MAX_TEXT_BYTES, and whether it was cut."""
    if not isinstance(value, str):
        return None, None
    if len(value) * 4 <= MAX_TEXT_BYTES:  # no UTF-8 character is longer than 4 bytes
        return value, False
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_TEXT_BYTES:
        return value, False
    return data[:MAX_TEXT_BYTES].decode("utf-8", "ignore"), True


def _files(value: object) -> str | None:
    """A list of file names as a JSON array (strings as they are, objects by their `file` or
    `path`), so SQL reads it with from_json(col, '["VARCHAR"]')."""
    if not isinstance(value, list):
        return None
    names = (
        item if isinstance(item, str) else _obj(item).get("file") or _obj(item).get("path")
        for item in value
    )
    return orjson.dumps([n for n in map(_str, names) if n is not None]).decode()


def _total(doc: Mapping[str, Any], classes: tuple[int | None, ...]) -> tuple[int | None, bool]:
    """OpenCode's reported tokens.total when present; else the five classes summed (input +
    output + reasoning + cache read + cache write), flagged as computed. None with no usage."""
    reported = _int(_obj(doc.get("tokens")).get("total"))
    if reported is not None:
        return reported, False
    if all(c is None for c in classes):
        return None, False
    return sum(c or 0 for c in classes), True


def _api_error(error: Mapping[str, Any]) -> tuple[int | None, bool | None]:
    """An APIError's statusCode and isRetryable (1.x nests them under data; 2.x may not)."""
    data = _obj(error.get("data"))
    return (
        _int(data.get("statusCode", error.get("statusCode"))),
        _bool(data.get("isRetryable", error.get("isRetryable"))),
    )


def _tokens(doc: Mapping[str, Any]) -> tuple[int | None, ...]:
    tokens = _obj(doc.get("tokens"))
    cache = _obj(tokens.get("cache"))
    return (
        _int(tokens.get("input")),
        _int(tokens.get("output")),
        _int(tokens.get("reasoning")),
        _int(cache.get("read")),
        _int(cache.get("write")),
    )


# --- one row builder per kind --------------------------------------------------------------


def project_row(record_id: str, parent_id: str, doc: Mapping[str, Any]) -> Row:
    time = _obj(doc.get("time"))
    return (
        record_id,
        _str(doc.get("worktree")),
        _str(doc.get("vcs")),
        _str(doc.get("name")),
        _ms(time.get("created")),
        _ms(time.get("updated")),
        _ms(time.get("initialized")),
    )


def session_row(record_id: str, parent_id: str, doc: Mapping[str, Any]) -> Row:
    time = _obj(doc.get("time"))
    summary = _obj(doc.get("summary"))
    model = _obj(doc.get("model"))
    rollup = _obj(doc.get("rollup"))
    return (
        record_id,
        parent_id or _str(doc.get("projectID")),
        _str(doc.get("parentID")),
        _str(doc.get("slug")),
        _str(doc.get("title")),
        _str(doc.get("directory")),
        _str(doc.get("version")),
        _str(_obj(doc.get("share")).get("url")),
        _ms(time.get("created")),
        _ms(time.get("updated")),
        _ms(time.get("compacting")),
        _ms(time.get("archived")),
        _int(summary.get("additions")),
        _int(summary.get("deletions")),
        _int(summary.get("files")),
        _str(doc.get("workspaceID")),
        _str(doc.get("path")),
        _str(doc.get("agent")),
        _str(model.get("providerID")),
        _str(model.get("id")) or _str(model.get("modelID")),
        _str(doc.get("forkSessionID")),
        _str(_obj(doc.get("forkBoundary")).get("messageID")),
        _float(rollup.get("cost")) if rollup else None,
        *(_tokens(rollup) if rollup else (None,) * 5),
    )


def message_row(record_id: str, parent_id: str, doc: Mapping[str, Any]) -> Row:
    time = _obj(doc.get("time"))
    model = _obj(doc.get("model"))  # user messages nest the model; assistants keep it flat
    error = _obj(doc.get("error"))
    classes = _tokens(doc)
    total, computed = _total(doc, classes)
    path = _obj(doc.get("path"))
    summary = _obj(doc.get("summary"))  # a user message's; an assistant's is a boolean
    snapshot = _obj(doc.get("snapshot"))  # 2.x assistant rows: {start, end, files}
    text, cut = _text(doc.get("text"))  # 2.x user, system, synthetic and skill rows
    return (
        record_id,
        parent_id or _str(doc.get("sessionID")),
        _str(doc.get("role")),
        _str(doc.get("parentID")),
        _str(doc.get("agent")),
        _str(doc.get("mode")),
        _str(doc.get("providerID")) or _str(model.get("providerID")),
        _str(doc.get("modelID")) or _str(model.get("modelID")),
        *classes,
        total,
        _float(doc.get("cost")),
        _str(doc.get("finish")),
        _str(error.get("name")),
        _str(_obj(error.get("data")).get("message")),
        doc.get("summary") is True,
        _ms(time.get("created")),
        _ms(time.get("completed")),
        _str(doc.get("type")) or _str(doc.get("role")),
        doc.get("forkCopy") is True,
        computed if total is not None else None,
        _str(path.get("cwd")),
        _str(path.get("root")),
        _str(doc.get("variant")) or _str(model.get("variant")),
        _str(summary.get("title")),
        *_api_error(error),
        _str(snapshot.get("start")),
        _str(snapshot.get("end")),
        _files(snapshot.get("files")),
        _bool(doc.get("auto")),
        text,
        cut,
    )


def part_row(record_id: str, parent_id: str, doc: Mapping[str, Any]) -> Row:
    kind = _str(doc.get("type"))
    state = _obj(doc.get("state"))
    # Tools keep their times under state.time; every other part under time.
    time = _obj(state.get("time")) if kind == "tool" else _obj(doc.get("time"))
    text = doc.get("text")
    if kind == "tool" and state.get("status") == "error":
        text = state.get("error")
    elif kind == "tool":
        text = state.get("output")
    step = kind == "step-finish"
    tokens = _tokens(doc) if step else (None,) * 5
    full, cut = _text(doc.get("text")) if kind in ("text", "reasoning") else (None, None)
    tool = _tool_fields(state) if kind == "tool" else (None,) * 6
    if kind == "subtask":  # a subagent launched from the prompt: description and agent
        tool = (None, _str(doc.get("description")), _str(doc.get("agent")), None, None, None)
    error = _obj(doc.get("error"))  # a retry part's APIError
    return (
        record_id,
        parent_id or _str(doc.get("messageID")),
        _str(doc.get("sessionID")),
        kind,
        _str(doc.get("tool")),
        _str(state.get("status")),
        _str(doc.get("callID")),
        _str(state.get("title")),
        _ms(time.get("start")),
        _ms(time.get("end")),
        _str(doc.get("reason")),
        *tokens,
        _float(doc.get("cost")) if step else None,
        _str(doc.get("mime")),
        _str(doc.get("filename")),
        _len(text),
        _str(text, PREVIEW_CHARS),
        doc.get("forkCopy") is True,
        full,
        cut,
        *tool,
        _str(doc.get("snapshot")),
        _str(doc.get("hash")) if kind == "patch" else None,
        _files(doc.get("files")) if kind == "patch" else None,
        _int(doc.get("attempt")),
        _str(_obj(error.get("data")).get("message")) or _str(error.get("message")),
        *_api_error(error),
        _bool(doc.get("auto")) if kind == "compaction" else None,
        _bool(doc.get("overflow")) if kind == "compaction" else None,
    )


_TARGET_KEYS = ("filePath", "command", "pattern", "url", "query", "path", "description", "tool")
"""The input field a call is about, first found: read/write/edit take filePath (2.x: path),
bash/shell a command, grep/glob a pattern (their `path` is only where to search), webfetch a
url, search tools a query, list a path, task a description, an `invalid` call the tool the
model asked for."""


def _tool_fields(state: Mapping[str, Any]) -> Row:
    """target, description, subagent type, exit code, child session id, interrupted."""
    inp = _obj(state.get("input"))
    meta = _obj(state.get("metadata"))
    target = next((v for k in _TARGET_KEYS if isinstance(v := inp.get(k), str) and v), None)
    return (
        _str(target, TARGET_CHARS),
        _str(inp.get("description")),
        _str(inp.get("subagent_type")),
        _int(meta.get("exit")),
        _str(meta.get("sessionId")) or _str(meta.get("sessionID")),
        meta.get("interrupted") is True,
    )


def content_rows(
    record_id: str, parent_id: str, items: Sequence[Mapping[str, Any]]
) -> tuple[Row, ...]:
    """An OpenCode 2 message's content items (as rebuilt part documents) as parts rows."""
    return tuple(
        part_row(str(item.get("id") or f"{record_id}#{n}"), record_id, item)
        for n, item in enumerate(items)
        if isinstance(item, dict)
    )


def todo_rows(
    record_id: str, parent_id: str, items: Sequence[Mapping[str, Any]]
) -> tuple[Row, ...]:
    return tuple(
        (
            record_id,
            position,
            _str(item.get("id")),
            _str(item.get("content")),
            _str(item.get("status")),
            _str(item.get("priority")),
        )
        for position, item in enumerate(items)
    )


def session_diff_rows(
    record_id: str, parent_id: str, items: Sequence[Mapping[str, Any]]
) -> tuple[Row, ...]:
    by_file: dict[str, Row] = {}
    for position, item in enumerate(items):
        file = _str(item.get("file"))
        if file is None:
            continue
        # One row per file: a file listed twice keeps its last entry.
        by_file.pop(file, None)
        by_file[file] = (
            record_id,
            file,
            position,
            _str(item.get("status")),
            _int(item.get("additions")),
            _int(item.get("deletions")),
            _len(item.get("before")),
            _len(item.get("after")),
            _len(item.get("patch")),
        )
    return tuple(by_file.values())
