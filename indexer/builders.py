"""One column builder per data table: the documents of many rows become the table's columns, in
its column order, one pass per column. Never touches the database or the filesystem, and never
raises on a field.

Every field but the discriminators is optional across OpenCode versions, so every read is
defensive: a wrong type becomes NULL rather than an error. Ids come from the path (the key),
never from the file, as OpenCode's own migration does. Long strings are capped, never stored
whole, except the text of text and reasoning parts (and 2.x message text), kept up to
MAX_TEXT_BYTES with the cut recorded. The column order each builder follows is its table's, in
`indexer.kinds`; docs/data-model.md says where each column comes from.

A row's source is (row id, parent id or position, document). Each column is one comprehension
over a batch's documents with the common case inline; the scalar readers below run only for the
rare value (a float where an integer belongs, a text over its cap). The row builders are the
same columns for one source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
Doc = Mapping[str, Any]
Source = tuple[str, Any, Doc]
"""What one row is built from: its id, its parent id (a position for todos and diffs), its
document."""
Column = list[Any]
ColumnBuilder = Callable[[Sequence[Source]], list[Column]]

_BIGINT = 2**63
"""DuckDB's BIGINT holds -2**63 .. 2**63-1: a number outside it is stored as NULL."""
_MAX_MS = 10**14
_SAFE_TEXT = MAX_TEXT_BYTES // 4  # no UTF-8 character is longer than 4 bytes
_EMPTY: Doc = {}


# --- scalar readers: the rare values; a wrong type reads as None ---------------------------


def _obj(value: object) -> Doc:
    return value if isinstance(value, dict) else _EMPTY


def _str(value: object, cap: int = MAX_STRING_CHARS) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= cap else value[:cap]


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
    return ms if ms is not None and 0 <= ms < _MAX_MS else None


def _text(value: object) -> tuple[str | None, bool | None]:
    """The text kept whole up to MAX_TEXT_BYTES, and whether it was cut."""
    if not isinstance(value, str):
        return None, None
    if len(value) <= _SAFE_TEXT:
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


# --- whole columns: the common case inline, the rare value through a scalar reader ---------
# `v.__class__ is int` leaves out bool, as the scalar readers do; JSON holds no subclasses.


def _objs(objs: Sequence[Doc], key: str) -> list[Doc]:
    return [v if (v := o.get(key)).__class__ is dict else _EMPTY for o in objs]


def _strs(objs: Sequence[Doc], key: str, cap: int = MAX_STRING_CHARS) -> Column:
    return [
        (v if len(v) <= cap else v[:cap]) if (v := o.get(key)).__class__ is str else None
        for o in objs
    ]


def _capped(values: Column, cap: int = MAX_STRING_CHARS) -> Column:
    return [(v if len(v) <= cap else v[:cap]) if v.__class__ is str else None for v in values]


def _ints(objs: Sequence[Doc], key: str) -> Column:
    return _as_ints([o.get(key) for o in objs])


def _as_ints(values: Column) -> Column:
    return [
        v
        if v.__class__ is int and -_BIGINT <= v < _BIGINT
        else (_int(v) if v.__class__ is float else None)
        for v in values
    ]


def _mss(objs: Sequence[Doc], key: str) -> Column:
    return [
        v
        if (v := o.get(key)).__class__ is int and 0 <= v < _MAX_MS
        else (_ms(v) if v.__class__ is float else None)
        for o in objs
    ]


def _floats(objs: Sequence[Doc], key: str) -> Column:
    return [
        (v if math.isfinite(v) else None)
        if (v := o.get(key)).__class__ is float
        else (_float(v) if v.__class__ is int else None)
        for o in objs
    ]


def _bools(values: Column) -> Column:
    return [v if v.__class__ is bool else None for v in values]


def _lens(values: Column) -> Column:
    return [len(v) if v.__class__ is str else None for v in values]


def _either(first: Column, second: Column) -> Column:
    """The first value, or the second where the first is None or empty (Python's `or`)."""
    return [a or b for a, b in zip(first, second, strict=True)]


def _when(flags: list[bool], values: Column) -> Column:
    return [v if f else None for f, v in zip(flags, values, strict=True)]


def _tokens(objs: Sequence[Doc]) -> list[Column]:
    """input, output, reasoning, cache read, cache write of each object's `tokens`."""
    tokens = _objs(objs, "tokens")
    cache = _objs(tokens, "cache")
    return [
        _ints(tokens, "input"),
        _ints(tokens, "output"),
        _ints(tokens, "reasoning"),
        _ints(cache, "read"),
        _ints(cache, "write"),
    ]


def _api_errors(errors: Sequence[Doc]) -> list[Column]:
    """An APIError's statusCode and isRetryable (1.x nests them under data; 2.x may not)."""
    data = _objs(errors, "data")
    return [
        _as_ints(
            [d.get("statusCode", e.get("statusCode")) for d, e in zip(data, errors, strict=True)]
        ),
        _bools(
            [d.get("isRetryable", e.get("isRetryable")) for d, e in zip(data, errors, strict=True)]
        ),
    ]


def _sum(counts: list[int | None]) -> int | None:
    """The classes summed (None counts as 0), or None when none is known."""
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def _ids(sources: Sequence[Source]) -> tuple[Column, Column, list[Doc]]:
    return [s[0] for s in sources], [s[1] for s in sources], [s[2] for s in sources]


# --- one column builder per table ------------------------------------------------------------


def project_columns(sources: Sequence[Source]) -> list[Column]:
    ids, _, docs = _ids(sources)
    time = _objs(docs, "time")
    return [
        ids,
        _strs(docs, "worktree"),
        _strs(docs, "vcs"),
        _strs(docs, "name"),
        _mss(time, "created"),
        _mss(time, "updated"),
        _mss(time, "initialized"),
    ]


def session_columns(sources: Sequence[Source]) -> list[Column]:
    ids, parents, docs = _ids(sources)
    time = _objs(docs, "time")
    summary = _objs(docs, "summary")
    model = _objs(docs, "model")
    rollup = _objs(docs, "rollup")
    return [
        ids,
        _either(parents, _strs(docs, "projectID")),
        _strs(docs, "parentID"),
        _strs(docs, "slug"),
        _strs(docs, "title"),
        _strs(docs, "directory"),
        _strs(docs, "version"),
        _strs(_objs(docs, "share"), "url"),
        _mss(time, "created"),
        _mss(time, "updated"),
        _mss(time, "compacting"),
        _mss(time, "archived"),
        _ints(summary, "additions"),
        _ints(summary, "deletions"),
        _ints(summary, "files"),
        _strs(docs, "workspaceID"),
        _strs(docs, "path"),
        _strs(docs, "agent"),
        _strs(model, "providerID"),
        _either(_strs(model, "id"), _strs(model, "modelID")),
        _strs(docs, "forkSessionID"),
        _strs(_objs(docs, "forkBoundary"), "messageID"),
        _floats(rollup, "cost"),
        *_tokens(rollup),
    ]


def message_columns(sources: Sequence[Source]) -> list[Column]:
    ids, parents, docs = _ids(sources)
    time = _objs(docs, "time")
    model = _objs(docs, "model")  # user messages nest the model; assistants keep it flat
    error = _objs(docs, "error")
    classes = _tokens(docs)
    reported = _ints(_objs(docs, "tokens"), "total")
    # OpenCode's reported total when present; else the five classes summed, flagged computed.
    total = [
        r if r is not None else _sum(counts) for r, *counts in zip(reported, *classes, strict=True)
    ]
    summary = _objs(docs, "summary")  # a user message's; an assistant's is a boolean
    snapshot = _objs(docs, "snapshot")  # 2.x assistant rows: {start, end, files}
    texts = [d.get("text") for d in docs]  # 2.x user, system, synthetic and skill rows
    roles = _strs(docs, "role")
    return [
        ids,
        _either(parents, _strs(docs, "sessionID")),
        roles,
        _strs(docs, "parentID"),
        _strs(docs, "agent"),
        _strs(docs, "mode"),
        _either(_strs(docs, "providerID"), _strs(model, "providerID")),
        _either(_strs(docs, "modelID"), _strs(model, "modelID")),
        *classes,
        total,
        _floats(docs, "cost"),
        _strs(docs, "finish"),
        _strs(error, "name"),
        _strs(_objs(error, "data"), "message"),
        [d.get("summary") is True for d in docs],
        _mss(time, "created"),
        _mss(time, "completed"),
        _either(_strs(docs, "type"), roles),
        [d.get("forkCopy") is True for d in docs],
        [None if t is None else r is None for t, r in zip(total, reported, strict=True)],
        _strs(_objs(docs, "path"), "cwd"),
        _strs(_objs(docs, "path"), "root"),
        _either(_strs(docs, "variant"), _strs(model, "variant")),
        _strs(summary, "title"),
        *_api_errors(error),
        _strs(snapshot, "start"),
        _strs(snapshot, "end"),
        [_files(f) if f is not None else None for f in (s.get("files") for s in snapshot)],
        _bools([d.get("auto") for d in docs]),
        *_full_texts(texts, [True] * len(docs)),
    ]


def _full_texts(texts: Column, kept: list[bool]) -> list[Column]:
    """The text of each kept value up to MAX_TEXT_BYTES, and whether it was cut."""
    full = [
        (t if len(t) <= _SAFE_TEXT else _text(t)[0]) if k and t.__class__ is str else None
        for k, t in zip(kept, texts, strict=True)
    ]
    cut = [
        (False if len(t) <= _SAFE_TEXT else _text(t)[1]) if k and t.__class__ is str else None
        for k, t in zip(kept, texts, strict=True)
    ]
    return [full, cut]


_TARGET_KEYS = ("filePath", "command", "pattern", "url", "query", "path", "description", "tool")
"""The input field a call is about, first found: read/write/edit take filePath (2.x: path),
bash/shell a command, grep/glob a pattern (their `path` is only where to search), webfetch a
url, search tools a query, list a path, task a description, an `invalid` call the tool the
model asked for."""


def part_columns(sources: Sequence[Source]) -> list[Column]:
    ids, parents, docs = _ids(sources)
    kinds = _strs(docs, "type")
    tool = [k == "tool" for k in kinds]
    step = [k == "step-finish" for k in kinds]
    patch = [k == "patch" for k in kinds]
    compaction = [k == "compaction" for k in kinds]
    subtask = [k == "subtask" for k in kinds]
    textual = [k == "text" or k == "reasoning" for k in kinds]
    state = _objs(docs, "state")
    statuses = _strs(state, "status")
    # Tools keep their times under state.time; every other part under time.
    time = _objs([s if t else d for t, s, d in zip(tool, state, docs, strict=True)], "time")
    texts = [
        (s.get("error") if s.get("status") == "error" else s.get("output")) if t else d.get("text")
        for t, s, d in zip(tool, state, docs, strict=True)
    ]
    tokens = _tokens([d if f else _EMPTY for f, d in zip(step, docs, strict=True)])
    inp = [_obj(s.get("input")) if t else _EMPTY for t, s in zip(tool, state, strict=True)]
    meta = [_obj(s.get("metadata")) if t else _EMPTY for t, s in zip(tool, state, strict=True)]
    targets = [
        next((v for k in _TARGET_KEYS if (v := i.get(k)).__class__ is str and v), None)
        if i
        else None
        for i in inp
    ]
    # A subtask (a subagent launched from the prompt) keeps its description and agent.
    described = [d if s else i for s, d, i in zip(subtask, docs, inp, strict=True)]
    subagent = [
        a if s else b
        for s, a, b in zip(subtask, _strs(docs, "agent"), _strs(inp, "subagent_type"), strict=True)
    ]
    error = _objs(docs, "error")  # a retry part's APIError
    return [
        ids,
        _either(parents, _strs(docs, "messageID")),
        _strs(docs, "sessionID"),
        kinds,
        _strs(docs, "tool"),
        statuses,
        _strs(docs, "callID"),
        _strs(state, "title"),
        _mss(time, "start"),
        _mss(time, "end"),
        _strs(docs, "reason"),
        *tokens,
        _when(step, _floats(docs, "cost")),
        _strs(docs, "mime"),
        _strs(docs, "filename"),
        _lens(texts),
        _capped(texts, PREVIEW_CHARS),
        [d.get("forkCopy") is True for d in docs],
        *_full_texts([d.get("text") for d in docs], textual),
        _capped(targets, TARGET_CHARS),
        _strs(described, "description"),
        subagent,
        _ints(meta, "exit"),
        _either(_strs(meta, "sessionId"), _strs(meta, "sessionID")),
        [m.get("interrupted") is True if t else None for t, m in zip(tool, meta, strict=True)],
        _strs(docs, "snapshot"),
        _when(patch, _strs(docs, "hash")),
        [_files(d.get("files")) if p else None for p, d in zip(patch, docs, strict=True)],
        _ints(docs, "attempt"),
        _either(_strs(_objs(error, "data"), "message"), _strs(error, "message")),
        *_api_errors(error),
        _when(compaction, _bools([d.get("auto") for d in docs])),
        _when(compaction, _bools([d.get("overflow") for d in docs])),
    ]


def todo_columns(sources: Sequence[Source]) -> list[Column]:
    ids, positions, items = _ids(sources)
    return [
        ids,
        positions,
        _strs(items, "id"),
        _strs(items, "content"),
        _strs(items, "status"),
        _strs(items, "priority"),
    ]


def session_diff_columns(sources: Sequence[Source]) -> list[Column]:
    ids, positions, items = _ids(sources)
    return [
        ids,
        _strs(items, "file"),
        positions,
        _strs(items, "status"),
        _ints(items, "additions"),
        _ints(items, "deletions"),
        _lens([i.get("before") for i in items]),
        _lens([i.get("after") for i in items]),
        _lens([i.get("patch") for i in items]),
    ]


# --- an array file's items as the sources of its rows ----------------------------------------


def content_sources(record_id: str, parent_id: str, items: Sequence[Doc]) -> tuple[Source, ...]:
    """An OpenCode 2 message's content items (as rebuilt part documents) as parts rows."""
    return tuple(
        (str(item.get("id") or f"{record_id}#{n}"), record_id, item)
        for n, item in enumerate(items)
        if isinstance(item, dict)
    )


def todo_sources(record_id: str, parent_id: str, items: Sequence[Doc]) -> tuple[Source, ...]:
    return tuple((record_id, position, item) for position, item in enumerate(items))


def session_diff_sources(
    record_id: str, parent_id: str, items: Sequence[Doc]
) -> tuple[Source, ...]:
    by_file: dict[str, Source] = {}
    for position, item in enumerate(items):
        file = _str(item.get("file"))
        if file is None:
            continue
        # One row per file: a file listed twice keeps its last entry.
        by_file.pop(file, None)
        by_file[file] = (record_id, position, item)
    return tuple(by_file.values())


# --- rows: the same columns for one source ---------------------------------------------------


def rows_of(build: ColumnBuilder, sources: Sequence[Source]) -> tuple[Row, ...]:
    return tuple(zip(*build(sources), strict=True)) if sources else ()


def project_row(record_id: str, parent_id: str, doc: Doc) -> Row:
    return rows_of(project_columns, ((record_id, parent_id, doc),))[0]


def session_row(record_id: str, parent_id: str, doc: Doc) -> Row:
    return rows_of(session_columns, ((record_id, parent_id, doc),))[0]


def message_row(record_id: str, parent_id: str, doc: Doc) -> Row:
    return rows_of(message_columns, ((record_id, parent_id, doc),))[0]


def part_row(record_id: str, parent_id: str, doc: Doc) -> Row:
    return rows_of(part_columns, ((record_id, parent_id, doc),))[0]


def out_of_range(sql_types: Sequence[str], columns: Sequence[Column]) -> list[int]:
    """The positions of the BIGINT columns holding an integer no BIGINT holds (a sum of huge
    token counts: what is read from a file is already in range)."""
    return [
        i
        for i, (kind, column) in enumerate(zip(sql_types, columns, strict=True))
        if kind == "BIGINT"
        and any(v.__class__ is int and not -_BIGINT <= v < _BIGINT for v in column)
    ]


def clamped(column: Column) -> Column:
    """The column with every integer no BIGINT holds as None."""
    return [None if v.__class__ is int and not -_BIGINT <= v < _BIGINT else v for v in column]
