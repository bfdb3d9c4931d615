"""How each generation of OpenCode's SQLite store holds the record kinds: its tables, their
required columns, and how a row becomes OpenCode's JSON document. Never does I/O.

- 1.x (1.2 to 1.18): project, session, message, part and todo; since 2026-04-27 also a
  `session_message` table holding only model-switched and agent-switched rows.
- 2.x (2.0.3+): `session_v2` and `session_message` (a `type` column, JSON `data` whose assistant
  rows carry `content[]` items instead of a part table). A file upgraded from 1.x keeps its 1.x
  tables frozen beside them. research/opencode_sqlite_2026.md §2-§5 has the schemas and sources.

indexer.kinds attaches each mapping to its kind; indexer.sources.sqlite.layout decides which
mappings one file gets.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from indexer import rebuild

STORE_1X = "1.x"
"""OpenCode 1.2-1.18's store: project, session, message, part and todo tables."""
STORE_2X = "2.x"
"""OpenCode 2's store: session_v2 and session_message (content items inside each row)."""


class SqliteShape(enum.StrEnum):
    COLUMNS = "columns"
    """One row per record; its columns are rebuilt into OpenCode's JSON document."""
    DATA = "data"
    """One row per record; a `data` JSON column plus id columns. Updated in place at a high
    rate, so the fast path scans only the newest rows."""
    GROUPED = "grouped"
    """Many rows per record (a session's todo list), keyed by `session_id`."""


@dataclass(frozen=True, slots=True)
class SqliteTable:
    """How one generation of OpenCode's SQLite store holds a kind."""

    generation: str
    table: str
    shape: SqliteShape
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    rebuild: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    """COLUMNS: the row (column name → value) as OpenCode's JSON document."""
    ids: tuple[tuple[str, str], ...] = ()
    """DATA: (JSON key, SQL expression) pairs merged into the `data` document, as OpenCode does
    with its id columns."""
    change_size_sql: str = "0"
    """COLUMNS: a cheap proxy the fast path compares between polls, for columns OpenCode changes
    without bumping time_updated."""
    rebuild_group: Callable[[Iterable[tuple[Any, Any, Any]]], list[dict[str, Any]]] | None = None
    """GROUPED: a session's (content, status, priority) rows, in position order, as the array
    OpenCode returns."""
    key: str = ""
    """The name of this record in key paths (`<prefix><key>/<id>`) when it is not the table's:
    two kinds read from one table need two names."""
    transform: Callable[[dict[str, Any]], object] | None = None
    """DATA: the merged document turned into the one the kind's row builder reads."""
    where: str = ""
    """An SQL condition every row of this record must meet (e.g. only assistant rows hold
    content)."""
    stamp_sql: str = "0"
    """DATA: an integer (0-999999) added below the millisecond of the row's stamp, for a fact
    that changes without the row changing (a fork copy whose original went)."""

    @property
    def segment(self) -> str:
        """The record's name in key paths."""
        return self.key or self.table


# --- 1.x ----------------------------------------------------------------------------------

PROJECT_1X = SqliteTable(
    STORE_1X,
    "project",
    SqliteShape.COLUMNS,
    required=("id", "worktree", "time_created", "time_updated"),
    optional=("vcs", "name", "icon_url", "icon_color", "time_initialized", "sandboxes"),
    rebuild=rebuild.project_record,
)

_SESSION_COLUMNS = (
    "parent_id",
    "slug",
    "directory",
    "version",
    "share_url",
    "workspace_id",
    "path",
    "summary_additions",
    "summary_deletions",
    "summary_files",
    "time_compacting",
    "time_archived",
    "agent",
    "model",
    "cost",
    "tokens_input",
    "tokens_output",
    "tokens_reasoning",
    "tokens_cache_read",
    "tokens_cache_write",
)
# OpenCode adds usage to a session without bumping time_updated (projector.ts applyUsage), so
# the fast path also watches the usage columns where the table has them.
_USAGE_PROXY = (
    "length(CAST(coalesce(title, '') AS BLOB)) + CAST(coalesce(cost, 0) * 1000000000 AS INTEGER)"
    " + coalesce(tokens_input, 0) + coalesce(tokens_output, 0) + coalesce(tokens_reasoning, 0)"
    " + coalesce(tokens_cache_read, 0) + coalesce(tokens_cache_write, 0)"
)

SESSION_1X = SqliteTable(
    STORE_1X,
    "session",
    SqliteShape.COLUMNS,
    required=("id", "project_id", "title", "time_created", "time_updated"),
    optional=_SESSION_COLUMNS,
    rebuild=rebuild.session_record,
    change_size_sql="length(CAST(title AS BLOB))",
)

MESSAGE_1X = SqliteTable(
    STORE_1X,
    "message",
    SqliteShape.DATA,
    required=("id", "session_id", "time_created", "time_updated", "data"),
    ids=(("id", "id"), ("sessionID", "session_id")),
)

SWITCHES_1X = SqliteTable(
    STORE_1X,
    "session_message",
    SqliteShape.DATA,
    required=("id", "session_id", "type", "time_created", "time_updated", "data"),
    ids=(("id", "id"), ("sessionID", "session_id"), ("type", "type")),
    transform=rebuild.session_message_record,
)
"""1.15+ keeps model and agent switches here (the rest of the history stays in `message`)."""

PART_1X = SqliteTable(
    STORE_1X,
    "part",
    SqliteShape.DATA,
    required=("id", "message_id", "session_id", "time_created", "time_updated", "data"),
    ids=(("id", "id"), ("sessionID", "session_id"), ("messageID", "message_id")),
)

TODO_1X = SqliteTable(
    STORE_1X,
    "todo",
    SqliteShape.GROUPED,
    required=("session_id", "content", "status", "priority", "position", "time_updated"),
    rebuild_group=rebuild.todo_record,
)

# --- 2.x ----------------------------------------------------------------------------------

SESSION_2X = SqliteTable(
    STORE_2X,
    "session_v2",
    SqliteShape.COLUMNS,
    required=("id", "project_id", "time_created", "time_updated"),
    optional=("title", *_SESSION_COLUMNS, "fork_session_id", "fork_boundary"),
    rebuild=rebuild.session_record,
    change_size_sql=_USAGE_PROXY,
)

# A fork copies its parent's settled rows under new ids with the same seq, times and data,
# tokens included (projector.ts projectFork): while the parent still holds the original, the
# copy duplicates its usage. Once the parent's row is gone (reverted, deleted) the copy is the
# only record of that spend and counts.
FORK_COPY_SQL = (
    "EXISTS (SELECT 1 FROM session_v2 s JOIN session_message p "
    "ON p.session_id = s.fork_session_id "
    "WHERE s.id = session_message.session_id AND p.seq = session_message.seq "
    "AND p.time_created = session_message.time_created)"
)
_MESSAGE_IDS_2X = (
    ("id", "id"),
    ("sessionID", "session_id"),
    ("type", "type"),
    ("seq", "seq"),
    ("forkCopy", FORK_COPY_SQL),
)

MESSAGE_2X = SqliteTable(
    STORE_2X,
    "session_message",
    SqliteShape.DATA,
    required=("id", "session_id", "type", "seq", "time_created", "time_updated", "data"),
    ids=_MESSAGE_IDS_2X,
    transform=rebuild.session_message_record,
    stamp_sql=FORK_COPY_SQL,
)

CONTENT_2X = SqliteTable(
    STORE_2X,
    "session_message",
    SqliteShape.DATA,
    required=MESSAGE_2X.required,
    ids=_MESSAGE_IDS_2X,
    key="content",
    transform=rebuild.content_records,
    where="type = 'assistant'",
    stamp_sql=FORK_COPY_SQL,
)
"""An assistant row's `content[]` items (text, reasoning, tools) as the message's parts."""
