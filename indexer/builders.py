"""One column builder per data table: the sources of many rows become the table's columns, in
its column order. Never touches the database or the filesystem, and never raises on a field.

Every field but the discriminators is optional across OpenCode versions, so every read is
defensive: a wrong type becomes NULL rather than an error. Long strings are capped, never stored
whole, except the text of text and reasoning parts (and 2.x message text), kept up to
MAX_TEXT_BYTES with the cut recorded. A row's source is (row id, parent id or position,
document). Ids come from the path (the key), never from the file, as OpenCode's own migration
does. The small tables' columns are one comprehension each over a batch's documents
(`indexer.fields`); the wide ones (parts, messages) are built row by row with every field read
inline, then turned into columns (`indexer.wide_rows`): measured faster, since most of their
columns apply to one part type. The column order each builder follows is its table's, in
`indexer.kinds`; docs/schema.md says where each column comes from.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.fields import (
    BIGINT,
    Doc,
    as_str,
    either,
    floats_at,
    ints_at,
    lens,
    mss_at,
    objs_at,
    split,
    strs_at,
    tokens_of,
)
from indexer.fields import MAX_STRING_CHARS as MAX_STRING_CHARS
from indexer.fields import MAX_TEXT_BYTES as MAX_TEXT_BYTES
from indexer.fields import PREVIEW_CHARS as PREVIEW_CHARS
from indexer.fields import TARGET_CHARS as TARGET_CHARS
from indexer.fields import Column as Column
from indexer.fields import ColumnBuilder as ColumnBuilder
from indexer.fields import Row as Row
from indexer.fields import Source as Source
from indexer.wide_rows import message_columns as message_columns
from indexer.wide_rows import message_row as message_row
from indexer.wide_rows import part_columns as part_columns
from indexer.wide_rows import part_row as part_row


def project_columns(sources: Sequence[Source]) -> list[Column]:
    ids, _, docs = split(sources)
    time = objs_at(docs, "time")
    return [
        ids,
        strs_at(docs, "worktree"),
        strs_at(docs, "vcs"),
        strs_at(docs, "name"),
        mss_at(time, "created"),
        mss_at(time, "updated"),
        mss_at(time, "initialized"),
    ]


def session_columns(sources: Sequence[Source]) -> list[Column]:
    ids, parents, docs = split(sources)
    time = objs_at(docs, "time")
    summary = objs_at(docs, "summary")
    model = objs_at(docs, "model")
    rollup = objs_at(docs, "rollup")
    return [
        ids,
        either(parents, strs_at(docs, "projectID")),
        strs_at(docs, "parentID"),
        strs_at(docs, "slug"),
        strs_at(docs, "title"),
        strs_at(docs, "directory"),
        strs_at(docs, "version"),
        strs_at(objs_at(docs, "share"), "url"),
        mss_at(time, "created"),
        mss_at(time, "updated"),
        mss_at(time, "compacting"),
        mss_at(time, "archived"),
        ints_at(summary, "additions"),
        ints_at(summary, "deletions"),
        ints_at(summary, "files"),
        strs_at(docs, "workspaceID"),
        strs_at(docs, "path"),
        strs_at(docs, "agent"),
        strs_at(model, "providerID"),
        either(strs_at(model, "id"), strs_at(model, "modelID")),
        strs_at(docs, "forkSessionID"),
        strs_at(objs_at(docs, "forkBoundary"), "messageID"),
        floats_at(rollup, "cost"),
        *tokens_of(rollup),
    ]


def todo_columns(sources: Sequence[Source]) -> list[Column]:
    ids, positions, items = split(sources)
    return [
        ids,
        positions,
        strs_at(items, "id"),
        strs_at(items, "content"),
        strs_at(items, "status"),
        strs_at(items, "priority"),
    ]


def session_diff_columns(sources: Sequence[Source]) -> list[Column]:
    ids, positions, items = split(sources)
    return [
        ids,
        strs_at(items, "file"),
        positions,
        strs_at(items, "status"),
        ints_at(items, "additions"),
        ints_at(items, "deletions"),
        lens([i.get("before") for i in items]),
        lens([i.get("after") for i in items]),
        lens([i.get("patch") for i in items]),
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
        file = as_str(item.get("file"))
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


def out_of_range(sql_types: Sequence[str], columns: Sequence[Column]) -> list[int]:
    """The positions of the BIGINT columns holding an integer no BIGINT holds (a sum of huge
    token counts: what is read from a file is already in range)."""
    return [
        i
        for i, (kind, column) in enumerate(zip(sql_types, columns, strict=True))
        if kind == "BIGINT"
        and any(v.__class__ is int and not -BIGINT <= v < BIGINT for v in column)
    ]


def clamped(column: Column) -> Column:
    """The column with every integer no BIGINT holds as None."""
    return [None if v.__class__ is int and not -BIGINT <= v < BIGINT else v for v in column]
