"""The copies of one record at different paths (the JSON files OpenCode's 1.2 migration copied
into its SQLite store, a moved file): which copy's rows stand. Never writes; the caller applies.

The newest copy wins (larger mtime_ns; on a tie the live store over a file, then the path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from indexer.kinds import TABLES, FileKind, is_source_path
from indexer.outcome import FileRead, FileStatus
from indexer.store.sql import sql_strings
from indexer.store.tracking import FileTracker, TrackedFile


@dataclass(slots=True)
class Twins:
    """What the copies of the same record (same kind and id, different paths) decide."""

    winners: set[str] = field(default_factory=set)
    """Reads whose rows must be written: the newest copy, outranking every indexed twin."""
    shadowed: set[str] = field(default_factory=set)
    """Reads an indexed twin outranks: tracked as indexed, their rows left alone."""
    replace: set[tuple[str, str]] = field(default_factory=set)
    """(table, owner id) whose rows a winner replaces although they belong to a twin."""
    keep_rows: set[str] = field(default_factory=set)
    """Deleted or unparsable reads whose record's rows are a twin's: not deleted."""
    reread: set[str] = field(default_factory=set)
    """Older twins to read again because the newest copy was deleted or broke."""


def _rank(mtime_ns: int | None, path: str) -> tuple[int, bool, str]:
    # Newer wins; on a tie, the source row (the live store) over a file; then the path.
    return (-1 if mtime_ns is None else mtime_ns, is_source_path(path), path)


def _read_rank(read: FileRead) -> tuple[int, bool, str]:
    return _rank(read.stamp.mtime_ns if read.stamp else None, read.key.rel_path)


def resolve_twins(
    conn: duckdb.DuckDBPyConnection,
    tracker: FileTracker,
    kept: Sequence[FileRead],
    prior: dict[str, TrackedFile],
) -> Twins:
    """Compare each record of the batch with its other copies: the batch's own and those
    file_index holds as indexed (ONE query for the whole batch, none when the tracker knows
    file_index holds none of its records)."""
    groups: dict[tuple[str, str], list[FileRead]] = {}
    for r in kept:
        if r.key.kind in TABLES and r.key.record_id:
            groups.setdefault((r.key.kind.value, r.key.record_id), []).append(r)
    outside: dict[tuple[str, str], list[tuple[int, bool, str]]] = {}
    ids = sorted({rid for _, rid in tracker.records_maybe_tracked(groups)})
    if ids:
        in_batch = {r.key.rel_path for r in kept}
        rows = conn.execute(
            "SELECT file_path, file_type, record_id, mtime_ns FROM file_index "
            f"WHERE status = 'indexed' AND record_id IN {sql_strings(ids)}"
        ).fetchall()
        for path, kind, rid, mtime_ns in rows:
            if (str(kind), str(rid)) in groups and path not in in_batch:
                outside.setdefault((str(kind), str(rid)), []).append(_rank(mtime_ns, str(path)))
    twins = Twins()
    for (kind, rid), reads in groups.items():
        others = outside.get((kind, rid), [])
        live = [r for r in reads if r.status is FileStatus.INDEXED and r.parsed is not None]
        stale = [r for r in reads if r.status in (FileStatus.DELETED, FileStatus.ERROR)]
        if not others and len(live) + len(stale) <= 1:
            continue  # one copy only: the usual rules
        best_other = max(others) if others else None
        best = max(live, key=_read_rank, default=None)
        if best is not None and (best_other is None or _read_rank(best) > best_other):
            twins.winners.add(best.key.rel_path)
            twins.shadowed.update(r.key.rel_path for r in live if r is not best)
            twins.keep_rows.update(r.key.rel_path for r in stale)  # the winner's write replaces
            twins.replace.add((TABLES[FileKind(kind)].name, rid))
            continue
        twins.shadowed.update(r.key.rel_path for r in live)
        for r in stale:
            before = prior.get(r.key.rel_path)
            was = before.stamp.mtime_ns if before and before.stamp else None
            if best_other is not None and best_other > _rank(was, r.key.rel_path):
                twins.keep_rows.add(r.key.rel_path)  # it never wrote the rows in place
            elif best_other is not None:
                twins.reread.add(best_other[2])  # it did: delete them and read the next copy
    return twins
