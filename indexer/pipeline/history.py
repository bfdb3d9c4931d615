"""JSON copies of what OpenCode's store now holds: once a store holds sessions, the JSON files
of its kinds are history. Never reads a file; the processor and apply use these rules.

A history file is tracked as skipped (with its reason) and never writes rows, so a record the
store deleted stays deleted although its old JSON file remains, and a JSON file with a fresh
mtime never beats the store. Rows such a file wrote before are removed unless the store (or
another path) holds the same record.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.kinds import FileKind
from indexer.outcome import FileRead, Found, RetryPolicy, Situation, decide
from indexer.sources.base import ChangeSource, owner_of


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


def history_reason(authorities: Sequence[str]) -> str:
    return f"history: {', '.join(a.rstrip(':') for a in authorities)} holds this record"


def as_history(
    reads: Sequence[FileRead],
    kinds: frozenset[FileKind],
    sources: Sequence[ChangeSource],
    authorities: Sequence[str],
) -> list[FileRead]:
    """Each read of a history kind from outside the authoritative sources, made a skip."""
    if not kinds:
        return list(reads)
    reason = history_reason(authorities)
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
