"""Turns the bytes of one OpenCode file into typed rows for its kind, or a classified failure.
Never touches the database or the filesystem; the table definitions here are the schema's source.

Every field but the discriminators is optional across OpenCode versions, so every read is
defensive: a wrong type becomes NULL rather than an error. Ids come from the path (the key),
never from the file, as OpenCode's own migration does. Long strings are capped, never stored
whole.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from indexer.storage import FileKey, FileKind

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_STRING_CHARS = 2000
PREVIEW_CHARS = 280

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A data table: its columns in row order, its primary key, and the column that says
    which file owns a row (deleting or rewriting a file replaces every row it owns)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]
    owner_column: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


_TOKENS = (
    ("tokens_input", "BIGINT"),
    ("tokens_output", "BIGINT"),
    ("tokens_reasoning", "BIGINT"),
    ("tokens_cache_read", "BIGINT"),
    ("tokens_cache_write", "BIGINT"),
)

TABLES: dict[FileKind, Table] = {
    FileKind.PROJECT: Table(
        "projects",
        (
            ("id", "VARCHAR"),
            ("worktree", "VARCHAR"),
            ("vcs", "VARCHAR"),
            ("name", "VARCHAR"),
            ("time_created", "TIMESTAMP"),
            ("time_updated", "TIMESTAMP"),
            ("time_initialized", "TIMESTAMP"),
        ),
        ("id",),
        "id",
    ),
    FileKind.SESSION: Table(
        "sessions",
        (
            ("id", "VARCHAR"),
            ("project_id", "VARCHAR"),
            ("parent_id", "VARCHAR"),
            ("slug", "VARCHAR"),
            ("title", "VARCHAR"),
            ("directory", "VARCHAR"),
            ("version", "VARCHAR"),
            ("share_url", "VARCHAR"),
            ("time_created", "TIMESTAMP"),
            ("time_updated", "TIMESTAMP"),
            ("time_compacting", "TIMESTAMP"),
            ("time_archived", "TIMESTAMP"),
            ("summary_additions", "BIGINT"),
            ("summary_deletions", "BIGINT"),
            ("summary_files", "BIGINT"),
        ),
        ("id",),
        "id",
    ),
    FileKind.MESSAGE: Table(
        "messages",
        (
            ("id", "VARCHAR"),
            ("session_id", "VARCHAR"),
            ("role", "VARCHAR"),
            ("parent_id", "VARCHAR"),
            ("agent", "VARCHAR"),
            ("mode", "VARCHAR"),
            ("provider_id", "VARCHAR"),
            ("model_id", "VARCHAR"),
            *_TOKENS,
            ("tokens_total", "BIGINT"),
            ("cost", "DOUBLE"),
            ("finish", "VARCHAR"),
            ("error_name", "VARCHAR"),
            ("error_message", "VARCHAR"),
            ("is_summary", "BOOLEAN"),
            ("time_created", "TIMESTAMP"),
            ("time_completed", "TIMESTAMP"),
        ),
        ("id",),
        "id",
    ),
    FileKind.PART: Table(
        "parts",
        (
            ("id", "VARCHAR"),
            ("message_id", "VARCHAR"),
            ("session_id", "VARCHAR"),
            ("type", "VARCHAR"),
            ("tool", "VARCHAR"),
            ("tool_status", "VARCHAR"),
            ("call_id", "VARCHAR"),
            ("title", "VARCHAR"),
            ("time_start", "TIMESTAMP"),
            ("time_end", "TIMESTAMP"),
            ("step_reason", "VARCHAR"),
            *_TOKENS,
            ("cost", "DOUBLE"),
            ("mime", "VARCHAR"),
            ("filename", "VARCHAR"),
            ("text_chars", "BIGINT"),
            ("text_preview", "VARCHAR"),
        ),
        ("id",),
        "id",
    ),
    FileKind.TODO: Table(
        "todos",
        (
            ("session_id", "VARCHAR"),
            ("position", "INTEGER"),
            ("todo_id", "VARCHAR"),
            ("content", "VARCHAR"),
            ("status", "VARCHAR"),
            ("priority", "VARCHAR"),
        ),
        ("session_id", "position"),
        "session_id",
    ),
    FileKind.SESSION_DIFF: Table(
        "session_diffs",
        (
            ("session_id", "VARCHAR"),
            ("file", "VARCHAR"),
            ("position", "INTEGER"),
            ("status", "VARCHAR"),
            ("additions", "BIGINT"),
            ("deletions", "BIGINT"),
            ("before_chars", "BIGINT"),
            ("after_chars", "BIGINT"),
            ("patch_chars", "BIGINT"),
        ),
        ("session_id", "file"),
        "session_id",
    ),
}


class FailureReason(enum.StrEnum):
    EMPTY = "empty"
    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    NOT_OBJECT = "not_object"
    NOT_ARRAY = "not_array"
    TOO_LARGE = "too_large"
    MISSING_ID = "missing_id"

    @property
    def may_be_unsettled(self) -> bool:
        """True when a reader could see this mid-write: a write cut mid-character even reads as
        invalid UTF-8, so only a size limit never heals by itself."""
        return self is not FailureReason.TOO_LARGE


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """The rows one file contributes: a single table's rows (possibly none for an empty array)."""

    table: Table
    owner_id: str
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class ParseFailure:
    reason: FailureReason
    message: str

    def describe(self) -> str:
        return f"{self.reason}: {self.message}"


def content_hash(data: bytes) -> str:
    """Return the hex digest we store in file_index to prove which bytes were indexed."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def parse(
    key: FileKey, data: bytes, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> ParsedFile | ParseFailure:
    """Return the rows of one file's bytes, or why they cannot be indexed."""
    if len(data) > max_file_bytes:
        return too_large(len(data), max_file_bytes)
    if not data.strip():
        return ParseFailure(
            FailureReason.EMPTY, "the file is empty" if not data else "only whitespace"
        )
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return ParseFailure(
                FailureReason.INVALID_UTF8, f"not UTF-8 at byte {uexc.start}: {uexc.reason}"
            )
        return ParseFailure(
            FailureReason.INVALID_JSON,
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (byte {exc.pos} of {len(data)})",
        )
    table = TABLES[key.kind]
    if key.kind.is_array:
        if not isinstance(doc, list):
            return ParseFailure(
                FailureReason.NOT_ARRAY,
                f"a {key.kind} file must hold an array, found {_jtype(doc)}",
            )
        items = [item for item in doc if isinstance(item, dict)]
        return ParsedFile(table, key.record_id, _ARRAY_ROWS[key.kind](key, items))
    if not isinstance(doc, dict):
        return ParseFailure(
            FailureReason.NOT_OBJECT, f"a {key.kind} file must hold an object, found {_jtype(doc)}"
        )
    if not _str(doc.get("id")):
        return ParseFailure(FailureReason.MISSING_ID, f"the {key.kind} object has no 'id' field")
    return ParsedFile(table, key.record_id, (_OBJECT_ROW[key.kind](key, doc),))


def too_large(size: int, max_file_bytes: int) -> ParseFailure:
    return ParseFailure(
        FailureReason.TOO_LARGE, f"{size} bytes is over the limit of {max_file_bytes} bytes"
    )


def _jtype(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


# --- defensive field readers: a wrong type reads as None -----------------------------------


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object, cap: int = MAX_STRING_CHARS) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= cap else value[:cap]


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**62:
        return int(value)
    return None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ms(value: object) -> int | None:
    """Epoch milliseconds as OpenCode writes them; anything else is None."""
    ms = _int(value)
    return ms if ms is not None and 0 <= ms < 10**14 else None


def _len(value: object) -> int | None:
    return len(value) if isinstance(value, str) else None


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


def _project_row(key: FileKey, doc: Mapping[str, Any]) -> Row:
    time = _obj(doc.get("time"))
    return (
        key.record_id,
        _str(doc.get("worktree")),
        _str(doc.get("vcs")),
        _str(doc.get("name")),
        _ms(time.get("created")),
        _ms(time.get("updated")),
        _ms(time.get("initialized")),
    )


def _session_row(key: FileKey, doc: Mapping[str, Any]) -> Row:
    time = _obj(doc.get("time"))
    summary = _obj(doc.get("summary"))
    return (
        key.record_id,
        key.parent_id or _str(doc.get("projectID")),
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
    )


def _message_row(key: FileKey, doc: Mapping[str, Any]) -> Row:
    time = _obj(doc.get("time"))
    model = _obj(doc.get("model"))  # user messages nest the model; assistants keep it flat
    error = _obj(doc.get("error"))
    tokens = _obj(doc.get("tokens"))
    return (
        key.record_id,
        key.parent_id or _str(doc.get("sessionID")),
        _str(doc.get("role")),
        _str(doc.get("parentID")),
        _str(doc.get("agent")),
        _str(doc.get("mode")),
        _str(doc.get("providerID")) or _str(model.get("providerID")),
        _str(doc.get("modelID")) or _str(model.get("modelID")),
        *_tokens(doc),
        _int(tokens.get("total")),
        _float(doc.get("cost")),
        _str(doc.get("finish")),
        _str(error.get("name")),
        _str(_obj(error.get("data")).get("message")),
        doc.get("summary") is True,
        _ms(time.get("created")),
        _ms(time.get("completed")),
    )


def _part_row(key: FileKey, doc: Mapping[str, Any]) -> Row:
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
    return (
        key.record_id,
        key.parent_id or _str(doc.get("messageID")),
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
    )


def _todo_rows(key: FileKey, items: Sequence[Mapping[str, Any]]) -> tuple[Row, ...]:
    return tuple(
        (
            key.record_id,
            position,
            _str(item.get("id")),
            _str(item.get("content")),
            _str(item.get("status")),
            _str(item.get("priority")),
        )
        for position, item in enumerate(items)
    )


def _session_diff_rows(key: FileKey, items: Sequence[Mapping[str, Any]]) -> tuple[Row, ...]:
    by_file: dict[str, Row] = {}
    for position, item in enumerate(items):
        file = _str(item.get("file"))
        if file is None:
            continue
        # One row per file: a file listed twice keeps its last entry.
        by_file.pop(file, None)
        by_file[file] = (
            key.record_id,
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


_OBJECT_ROW: dict[FileKind, Callable[[FileKey, Mapping[str, Any]], Row]] = {
    FileKind.PROJECT: _project_row,
    FileKind.SESSION: _session_row,
    FileKind.MESSAGE: _message_row,
    FileKind.PART: _part_row,
}
_ARRAY_ROWS: dict[FileKind, Callable[[FileKey, Sequence[Mapping[str, Any]]], tuple[Row, ...]]] = {
    FileKind.TODO: _todo_rows,
    FileKind.SESSION_DIFF: _session_diff_rows,
}
