"""THE table of record kinds: for each, where OpenCode keeps it as JSON, its DuckDB table and row
builder, and how each SQLite store generation holds it. Never does I/O: everything else derives
from KINDS (classify, TABLES, the schema's data tables, the SQLite mappings).

Adding a kind is one `KindSpec` entry here, its row builder in `indexer.builders` (and, if a
SQLite store holds it, its rebuilder in `indexer.rebuild`), plus a test; see
docs/architecture/indexer-v2.md, "Adding a record kind".
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from indexer import builders, generations
from indexer.generations import SqliteTable
from indexer.storage import is_ignored

Row = builders.Row


class FileKind(enum.StrEnum):
    PROJECT = "project"
    SESSION = "session"
    MESSAGE = "message"
    PART = "part"
    TODO = "todo"
    SESSION_DIFF = "session_diff"
    MESSAGE_CONTENT = "message_content"
    """An OpenCode 2 assistant row's content items: the message's parts, in the parts table."""
    SKIPPED = "skipped"

    @property
    def is_array(self) -> bool:
        """Todo and session_diff files hold a JSON array; every other kind holds an object."""
        return self in _ARRAY_KINDS


@dataclass(frozen=True, slots=True)
class FileKey:
    """One file under the storage root (or one record of a source): its POSIX path relative to
    the root, kind and ids."""

    rel_path: str
    kind: FileKind
    record_id: str = ""
    """The id the file is about: project, session, message or part id; the session id for
    todo and session_diff files."""
    parent_id: str = ""
    """The id of the folder it sits in: project id for sessions, session id for messages,
    message id for parts. Empty where the layout has none."""

    @property
    def is_indexed_kind(self) -> bool:
        return self.kind is not FileKind.SKIPPED


WireKey = tuple[str, str, str, str]
"""A FileKey as plain values, as it crosses a pipe to or from a worker process: rel_path, kind,
record_id, parent_id (a dataclass costs ten times more to pickle)."""
KIND_NAMED = {str(kind): kind for kind in FileKind}


def to_wire(key: FileKey) -> WireKey:
    return key.rel_path, str(key.kind), key.record_id, key.parent_id


def from_wire(wire: WireKey) -> FileKey:
    """The key `to_wire` sent; the kind by a dict (FileKind(name) costs a microsecond a key)."""
    rel_path, kind, record_id, parent_id = wire
    return FileKey(rel_path, KIND_NAMED[kind], record_id, parent_id)


@dataclass(frozen=True, slots=True)
class Table:
    """A data table: its columns in row order, its primary key, and the column that says
    which file owns a row (deleting or rewriting a file replaces every row it owns)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]
    owner_column: str
    build: builders.ColumnBuilder | None = None
    """Builds the table's columns from the sources of many rows (see `indexer.builders`)."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


ObjectBuilder = Callable[[str, str, Mapping[str, Any]], Row]
ArrayBuilder = Callable[[str, str, Sequence[Mapping[str, Any]]], tuple[builders.Source, ...]]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One record kind, whole."""

    kind: FileKind
    layouts: tuple[str, ...]
    """JSON paths under the storage root: literal segments, `{parent}` (the parent id), `{_}`
    (any folder) and a final `{id}.json`. Where two match, the one with more literal segments
    wins."""
    table: Table
    build_object: ObjectBuilder | None = None
    build_array: ArrayBuilder | None = None
    """Exactly one builder: an object kind's row, or an array kind's items as the sources of
    its rows; the table's column builder makes the rows of a whole batch at once."""
    sqlite: tuple[SqliteTable, ...] = ()

    @property
    def is_array(self) -> bool:
        return self.build_array is not None


_TOKENS = (
    ("tokens_input", "BIGINT"),
    ("tokens_output", "BIGINT"),
    ("tokens_reasoning", "BIGINT"),
    ("tokens_cache_read", "BIGINT"),
    ("tokens_cache_write", "BIGINT"),
)

_PART_COLUMNS = (
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
    ("is_fork_copy", "BOOLEAN"),
    # Schema 6: appended, since rows are inserted by position.
    ("text", "VARCHAR"),
    ("text_truncated", "BOOLEAN"),
    ("tool_target", "VARCHAR"),
    ("tool_description", "VARCHAR"),
    ("subagent_type", "VARCHAR"),
    ("exit_code", "BIGINT"),
    ("child_session_id", "VARCHAR"),
    ("interrupted", "BOOLEAN"),
    ("snapshot", "VARCHAR"),
    ("patch_hash", "VARCHAR"),
    ("patch_files", "VARCHAR"),
    ("retry_attempt", "BIGINT"),
    ("error_message", "VARCHAR"),
    ("error_status_code", "BIGINT"),
    ("error_is_retryable", "BOOLEAN"),
    ("compaction_auto", "BOOLEAN"),
    ("compaction_overflow", "BOOLEAN"),
)

KINDS: tuple[KindSpec, ...] = (
    KindSpec(
        FileKind.PROJECT,
        ("project/{id}.json",),
        Table(
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
            builders.project_columns,
        ),
        build_object=builders.project_row,
        sqlite=(generations.PROJECT_1X,),
    ),
    KindSpec(
        FileKind.SESSION,
        ("session/info/{id}.json", "session/{parent}/{id}.json"),
        Table(
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
                ("workspace_id", "VARCHAR"),
                ("path", "VARCHAR"),
                ("agent", "VARCHAR"),
                ("provider_id", "VARCHAR"),
                ("model_id", "VARCHAR"),
                ("fork_session_id", "VARCHAR"),
                ("fork_boundary_message_id", "VARCHAR"),
                ("rollup_cost", "DOUBLE"),
                *(("rollup_" + name, kind) for name, kind in _TOKENS),
            ),
            ("id",),
            "id",
            builders.session_columns,
        ),
        build_object=builders.session_row,
        sqlite=(generations.SESSION_1X, generations.SESSION_2X),
    ),
    KindSpec(
        FileKind.MESSAGE,
        ("message/{parent}/{id}.json", "session/message/{parent}/{id}.json"),
        Table(
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
                ("type", "VARCHAR"),
                ("is_fork_copy", "BOOLEAN"),
                # Schema 6: appended, since rows are inserted by position.
                ("tokens_total_computed", "BOOLEAN"),
                ("cwd", "VARCHAR"),
                ("root", "VARCHAR"),
                ("variant", "VARCHAR"),
                ("summary_title", "VARCHAR"),
                ("error_status_code", "BIGINT"),
                ("error_is_retryable", "BOOLEAN"),
                ("snapshot_start", "VARCHAR"),
                ("snapshot_end", "VARCHAR"),
                ("patch_files", "VARCHAR"),
                ("compaction_auto", "BOOLEAN"),
                ("text", "VARCHAR"),
                ("text_truncated", "BOOLEAN"),
            ),
            ("id",),
            "id",
            builders.message_columns,
        ),
        build_object=builders.message_row,
        sqlite=(generations.MESSAGE_1X, generations.SWITCHES_1X, generations.MESSAGE_2X),
    ),
    KindSpec(
        FileKind.PART,
        ("part/{parent}/{id}.json", "session/part/{_}/{parent}/{id}.json"),
        Table("parts", _PART_COLUMNS, ("id",), "id", builders.part_columns),
        build_object=builders.part_row,
        sqlite=(generations.PART_1X,),
    ),
    KindSpec(
        FileKind.MESSAGE_CONTENT,
        (),  # OpenCode 2 only: no JSON layout
        Table("parts", _PART_COLUMNS, ("id",), "message_id", builders.part_columns),
        build_array=builders.content_sources,
        sqlite=(generations.CONTENT_2X,),
    ),
    KindSpec(
        FileKind.TODO,
        ("todo/{id}.json",),
        Table(
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
            builders.todo_columns,
        ),
        build_array=builders.todo_sources,
        sqlite=(generations.TODO_1X,),
    ),
    KindSpec(
        FileKind.SESSION_DIFF,
        ("session_diff/{id}.json",),
        Table(
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
            builders.session_diff_columns,
        ),
        build_array=builders.session_diff_sources,
    ),
)

SPECS: dict[FileKind, KindSpec] = {spec.kind: spec for spec in KINDS}
TABLES: dict[FileKind, Table] = {spec.kind: spec.table for spec in KINDS}
_BY_NAME: dict[str, Table] = {}
for _table in TABLES.values():
    _BY_NAME.setdefault(_table.name, _table)
DATA_TABLES: tuple[Table, ...] = tuple(_BY_NAME.values())
"""Each data table once (two kinds may share one, as parts and a 2.x message's content do)."""
INDEXED_KINDS: tuple[FileKind, ...] = tuple(SPECS)
_ARRAY_KINDS = frozenset(spec.kind for spec in KINDS if spec.is_array)


def sqlite_tables(generation: str) -> dict[str, tuple[FileKind, SqliteTable]]:
    """Record name (a key path's segment, usually the SQLite table's name) → (kind, mapping)
    for one store generation, in KINDS order."""
    return {
        t.segment: (spec.kind, t)
        for spec in KINDS
        for t in spec.sqlite
        if t.generation == generation
    }


# --- keys of other sources -------------------------------------------------------------------

SOURCE_PREFIX_PATTERN = "^[a-z]+:"
"""A record of a source other than the JSON tree has a path in its own namespace, such as
`sqlite:opencode.db:part/<id>`; a file under the root never does. Regex and SQL share it."""
_SOURCE_PREFIX = re.compile(SOURCE_PREFIX_PATTERN)


def is_source_path(path: str) -> bool:
    """True for a record of a source (e.g. 'sqlite:…'), as opposed to a file under the root."""
    return _SOURCE_PREFIX.match(path) is not None


# --- classify: the layouts compiled into one lookup by (top folder, depth) --------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    kind: FileKind
    literals: tuple[tuple[int, str], ...]
    parent_at: int | None


def _compile(specs: Sequence[KindSpec]) -> dict[tuple[str, int], tuple[_Layout, ...]]:
    found: dict[tuple[str, int], list[_Layout]] = {}
    for spec in specs:
        for layout in spec.layouts:
            parts = layout.split("/")
            if parts[-1] != "{id}.json" or parts[0].startswith("{"):
                raise ValueError(
                    f"layout {layout!r} must start with a folder and end in {{id}}.json"
                )
            literals = tuple((i, p) for i, p in enumerate(parts[1:-1], 1) if not p.startswith("{"))
            parent = parts.index("{parent}") if "{parent}" in parts else None
            found.setdefault((parts[0], len(parts)), []).append(
                _Layout(spec.kind, literals, parent)
            )
    return {k: tuple(sorted(v, key=lambda lay: -len(lay.literals))) for k, v in found.items()}


_LAYOUTS = _compile(KINDS)


def classify(rel_path: str) -> FileKey | None:
    """Return the key of a path relative to the root, or None when the path is ignored.

    Anything that is not one of OpenCode's record files is a key of kind SKIPPED.
    """
    # A scan asks this once per file: plain loops, no generator (a catch-up of 1M files).
    if os.sep != "/":
        rel_path = rel_path.replace(os.sep, "/")
    rel_path = rel_path.strip("/")
    if not rel_path or is_ignored(rel_path):
        return None
    parts = rel_path.split("/")
    name = parts[-1]
    if not name.endswith(".json") or len(name) <= len(".json"):
        return FileKey(rel_path, FileKind.SKIPPED)
    if parts[0] == "session" and len(parts) > 1 and parts[1] == "share":
        # Older OpenCode's share links (`{secret, url}`), which session/{project}/ would take.
        return FileKey(rel_path, FileKind.SKIPPED)
    for layout in _LAYOUTS.get((parts[0], len(parts)), ()):
        for i, text in layout.literals:
            if parts[i] != text:
                break
        else:
            parent = parts[layout.parent_at] if layout.parent_at is not None else ""
            return FileKey(rel_path, layout.kind, name[:-5], parent)  # without ".json"
    return FileKey(rel_path, FileKind.SKIPPED)
