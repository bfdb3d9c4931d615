"""What a batch's reads do to the index, inside the caller's transaction: data rows written or
removed, twins resolved, file_index rows recorded. Never opens a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from indexer.kinds import TABLES, FileKind
from indexer.outcome import FileRead, FileStatus
from indexer.pipeline.twins import resolve_twins
from indexer.store.rows import delete_owned, write_parsed
from indexer.store.sql import sql_strings
from indexer.store.tracking import FileTracker, TrackedFile


def apply_reads(
    conn: duckdb.DuckDBPyConnection,
    tracker: FileTracker,
    reads: Sequence[FileRead],
    prior: dict[str, TrackedFile],
    trust_prior: bool = True,
    overlap: bool = False,
) -> list[FileRead]:
    """Write the data rows and tracking rows for these reads; return the ones that were kept.

    A vanished file that was never tracked leaves no trace; a tracked one is marked deleted
    and its rows removed. With trust_prior, only files indexed before get their old rows
    deleted (a new file's rows are plain inserts, several times cheaper); a caller whose insert
    then hits a key another path owns retries with trust_prior=False.

    With overlap (a second source is configured), two paths may hold the same record: the
    JSON-to-SQLite migration copied the files. Then the newer copy (larger mtime_ns) writes the
    rows; an older one is tracked as indexed without touching them. See indexer.pipeline.twins.
    """
    kept = [r for r in reads if r.status is not FileStatus.DELETED or r.key.rel_path in prior]
    # A pending file was indexed before it was caught mid-write: its old rows are still there.
    owns_rows = {
        path
        for path, before in prior.items()
        if before.status in (FileStatus.INDEXED, FileStatus.PENDING)
    }
    twins = resolve_twins(conn, tracker, kept, prior) if overlap else None

    def may_own_rows(read: FileRead) -> bool:
        return not trust_prior or read.key.rel_path in owns_rows

    def writes(read: FileRead) -> bool:
        if twins is not None and read.key.rel_path in twins.shadowed:
            return False
        if twins is not None and read.key.rel_path in twins.winners:
            return True  # its twin's rows may be the ones in place: rewrite even if unchanged
        before = prior.get(read.key.rel_path)
        if before is None or before.status is not FileStatus.INDEXED:
            return True
        return before.content_hash != read.content_hash  # the same bytes: its rows stand

    changed = [r for r in kept if r.parsed is not None and writes(r)]
    parsed = [r.parsed for r in changed if r.parsed is not None]
    replace = {
        (p.table.name, p.owner_id) for r, p in zip(changed, parsed, strict=True) if may_own_rows(r)
    } | (twins.replace if twins is not None else set())
    write_parsed(conn, parsed, replace)
    gone: dict[FileKind, list[str]] = {}
    for r in kept:
        # A file that no longer parses keeps no stale rows: its old data is wrong now.
        stale = r.status in (FileStatus.DELETED, FileStatus.ERROR) and may_own_rows(r)
        if twins is not None and r.key.rel_path in twins.keep_rows:
            stale = False  # the rows in place are a newer twin's, not this file's
        if stale and r.key.kind in TABLES:
            gone.setdefault(r.key.kind, []).append(r.key.record_id)
    if twins is None:  # with twins, resolve_twins already decided whose rows go
        gone = _not_held_elsewhere(conn, gone, changed, kept)
    # A file now history (skipped) drops the rows it wrote, unless another path (the store)
    # holds the same record.
    history: dict[FileKind, list[str]] = {}
    for r in kept:
        if r.status is FileStatus.SKIPPED and r.key.kind in TABLES and r.key.rel_path in owns_rows:
            history.setdefault(r.key.kind, []).append(r.key.record_id)
    for kind, owners in _not_held_elsewhere(conn, history, changed, kept).items():
        gone.setdefault(kind, []).extend(owners)
    for kind, owners in gone.items():
        delete_owned(conn, TABLES[kind], owners)
    if twins is not None and twins.reread:
        # The newest copy is gone: the next one down is read again (the reconciler retries
        # pending rows), in this transaction so a crash cannot lose the request.
        tracker.mark_for_reread(sorted(twins.reread), "a newer copy of this record is gone")
    tracker.record(kept, prior)
    return kept


def _not_held_elsewhere(
    conn: duckdb.DuckDBPyConnection,
    gone: dict[FileKind, list[str]],
    written: Sequence[FileRead],
    reads: Sequence[FileRead],
) -> dict[FileKind, list[str]]:
    """Drop the records another path still holds (a moved file or folder): their rows stay."""
    if not gone:
        return gone
    held = {(str(r.key.kind), r.key.record_id) for r in written}
    leaving = [
        r.key.rel_path
        for r in reads
        if r.status in (FileStatus.DELETED, FileStatus.ERROR, FileStatus.SKIPPED)
    ]
    ids = sorted({i for owners in gone.values() for i in owners})
    held.update(
        (str(kind), str(record_id))
        for kind, record_id in conn.execute(
            "SELECT DISTINCT file_type, record_id FROM file_index "
            f"WHERE status IN ('indexed', 'pending') AND record_id IN {sql_strings(ids)} "
            f"AND file_path NOT IN {sql_strings(leaving)}"
        ).fetchall()
    )
    kept = {k: [i for i in v if (str(k), i) not in held] for k, v in gone.items()}
    return {k: v for k, v in kept.items() if v}
