"""JSON copies of what OpenCode's store now holds: once a store holds sessions, the JSON files
of its kinds are history. Never reads a file; the processor and apply use these rules.

A history file is tracked as skipped (with its reason) and never writes rows, so a record the
store deleted stays deleted although its old JSON file remains, and a JSON file with a fresh
mtime never beats the store. Rows such a file wrote before are removed unless the store (or
another path) holds the same record.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from indexer.kinds import FileKind
from indexer.outcome import FileRead, Found, RetryPolicy, Situation, decide
from indexer.sources.base import ChangeSource, owner_of
from indexer.store.database import sql_strings


def history_kinds(sources: Sequence[ChangeSource]) -> tuple[frozenset[FileKind], list[str]]:
    """The kinds some source holds with authority, and the prefixes of those sources."""
    kinds: set[FileKind] = set()
    prefixes: list[str] = []
    for source in sources:
        held = source.supersedes()
        if held:
            kinds |= held
            prefixes.append(source.prefix)
    return frozenset(kinds), prefixes


def as_history(
    reads: Sequence[FileRead],
    kinds: frozenset[FileKind],
    sources: Sequence[ChangeSource],
    authorities: Sequence[str],
) -> list[FileRead]:
    """Each read of a history kind from outside the authoritative sources, made a skip."""
    if not kinds:
        return list(reads)
    reason = f"history: {', '.join(a.rstrip(':') for a in authorities)} holds this record"
    out: list[FileRead] = []
    for r in reads:
        owner = owner_of(r.key.rel_path, sources)
        outside = owner is None or owner.prefix not in authorities
        # A vanished file is still just deleted.
        if r.key.kind in kinds and outside and r.stamp is not None:
            status, _ = decide(Found.HISTORY, Situation(RetryPolicy()))
            r = FileRead(r.key, status, r.stamp, message=reason)
        out.append(r)
    return out


def mark_history_for_reread(
    conn: duckdb.DuckDBPyConnection, kinds: frozenset[FileKind], authorities: Sequence[str]
) -> int:
    """Mark the indexed JSON copies of these kinds pending, so each is read again (and found to
    be history) by the reconciler's retry; return how many."""
    others = " ".join(f"AND NOT starts_with(file_path, '{a}')" for a in authorities)
    where = (
        f"status IN ('indexed', 'pending', 'error') AND file_type IN "
        f"{sql_strings(sorted(str(k) for k in kinds))} {others}"
    )
    count = conn.execute(f"SELECT count(*) FROM file_index WHERE {where}").fetchone()
    conn.execute(
        "UPDATE file_index SET status = 'pending', indexed_at = to_timestamp(0), "
        f"error_message = 're-read: the store now holds this kind' WHERE {where}"
    )
    return int(count[0]) if count else 0
