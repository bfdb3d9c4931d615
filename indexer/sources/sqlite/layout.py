"""Which generation one OpenCode database is, and so which records it holds: the table
mappings to read and, for a file upgraded from 1.x to 2.x, the conditions that count each
session and message once. Pure: it reads nothing but the table and column names it is given.

The rules (research/opencode_sqlite_2026.md §2 and §7, checked against OpenCode's
v1-migration.ts and projector.ts):
- `session_v2` present → 2.x; with `session` and `message` too → upgraded (1.x tables frozen).
  Otherwise `session` and `message` → 1.x. A `session_message` table alone never means 2.x:
  1.15+ keeps model and agent switches there.
- Upgraded: a 1.x session counts only if it is not in session_v2 and the migration never
  reached it (kv `migration.v1-v2`: phase `completed`, or the session id ≥ its cursor, since
  sessions migrate in descending id order). A migrated session missing from session_v2 was
  deleted in 2.x and stays deleted. A 1.x message counts only if its session counts (or is in
  session_v2) and its id is not in session_message (the turns the migration drops).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from indexer.generations import STORE_1X, STORE_2X, SqliteTable
from indexer.kinds import FileKind, sqlite_tables

ALL_RECORDS: dict[str, tuple[FileKind, SqliteTable]] = {}
"""Every record name a key path may carry (`<prefix><segment>/<id>`), over all generations."""
for _generation in (STORE_1X, STORE_2X):
    for _segment, _record in sqlite_tables(_generation).items():
        ALL_RECORDS.setdefault(_segment, _record)

_1X = sqlite_tables(STORE_1X)
_2X = sqlite_tables(STORE_2X)
_1X_REQUIRED = ("session", "message", "part")
_1X_OPTIONAL = ("project", "todo", "session_message")
_2X_REQUIRED = ("session_v2", "session_message")
_SHARED = ("project", "todo")
"""1.x tables a 2.x file keeps using (both are optional: OpenCode builds vary)."""

UPGRADED = "upgraded"
GENERATION_NAMES = {
    STORE_1X: "OpenCode 1.x",
    STORE_2X: "OpenCode 2.x",
    UPGRADED: "OpenCode 2.x upgraded from 1.x",
}


@dataclass(frozen=True, slots=True)
class Layout:
    """What one database holds: its generation and each record's mapping and condition."""

    generation: str
    """"1.x", "2.x" or "upgraded"."""
    records: dict[str, tuple[FileKind, SqliteTable]]
    """Record name (key path segment) → (kind, mapping), in reading order."""
    conditions: dict[str, str] = field(default_factory=dict)
    """Record name → an SQL condition its rows must also meet (beyond the mapping's own)."""

    def where(self, segment: str) -> str:
        """Every condition on one record's rows, as one SQL expression ("1" for none)."""
        mapping = self.records[segment][1]
        parts = [c for c in (mapping.where, self.conditions.get(segment, "")) if c]
        return " AND ".join(f"({c})" for c in parts) or "1"

    def describe(self) -> str:
        return GENERATION_NAMES[self.generation]


@dataclass(frozen=True, slots=True)
class Unknown:
    """A layout this code does not know, and what was found instead."""

    found: list[str]


def _migrated(column: str, has_kv: bool) -> str:
    if not has_kv:
        return "0"
    state = "(SELECT value FROM kv WHERE key = 'migration.v1-v2')"
    return (
        f"coalesce(json_extract({state}, '$.phase') = 'completed' "
        f"OR {column} >= json_extract({state}, '$.cursor'), 0)"
    )


def _upgraded_conditions(has_kv: bool) -> dict[str, str]:
    counted_1x = (
        "SELECT id FROM session WHERE id NOT IN (SELECT id FROM session_v2) "
        f"AND NOT {_migrated('session.id', has_kv)}"
    )
    sessions = f"SELECT id FROM session_v2 UNION ALL {counted_1x}"
    message = f"session_id IN ({sessions}) AND id NOT IN (SELECT id FROM session_message)"
    return {
        "session": f"id IN ({counted_1x})",
        "message": message,
        "part": f"message_id IN (SELECT id FROM message WHERE {message})",
        "todo": f"session_id IN ({sessions})",
    }


def detect(columns: Mapping[str, tuple[str, ...]]) -> Layout | Unknown:
    """The layout of a database whose tables (name → column names) are `columns`."""
    tables = set(columns)
    if "session_v2" in tables:
        upgraded = "session" in tables and "message" in tables
        records = {s: r for s, r in _2X.items() if s in _2X_REQUIRED or r[1].table in tables}
        records |= {s: r for s, r in _1X.items() if s in _SHARED and s in tables}
        required = list(_2X_REQUIRED)
        conditions: dict[str, str] = {}
        if upgraded:
            old = {s: r for s, r in _1X.items() if s in ("session", "message", "part")}
            records = {**old, **records}
            required += ["session", "message", "part"]
            conditions = _upgraded_conditions("kv" in tables)
        layout = Layout(UPGRADED if upgraded else STORE_2X, records, conditions)
    elif "session" in tables and "message" in tables:
        records = {s: r for s, r in _1X.items() if s in _1X_REQUIRED or s in tables}
        required = list(_1X_REQUIRED)
        layout = Layout(STORE_1X, records)
    else:
        have = sorted(tables)
        shown = ", ".join(have[:10]) + (" …" if len(have) > 10 else "")
        return Unknown([f"neither session_v2 nor session + message (tables: {shown or 'none'})"])
    found = [f"no table {t}" for t in required if t not in tables]
    for segment, (_, mapping) in layout.records.items():
        have_columns = columns.get(mapping.table)
        if have_columns is None:
            continue
        lacking = [c for c in mapping.required if c not in have_columns]
        if lacking:
            found.append(f"{mapping.table} without column {', '.join(lacking)} ({segment})")
    return Unknown(sorted(set(found))) if found else layout
