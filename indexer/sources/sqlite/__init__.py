"""OpenCode ≥ 1.2's SQLite store (`opencode.db`) as a second change source: each row is a key
such as `sqlite:opencode.db:part/<id>`, read, rebuilt the way OpenCode rebuilds it, and parsed by
the same record code as the JSON files. Never writes to that database, never creates it, and
never holds a read transaction longer than one short query: a long reader would stop OpenCode's
WAL checkpoints.

Three ways rows reach the pipeline:
- the fast path (poller): a watch on the database's main file and `-wal` wakes a poller, which
  asks each table for rows whose `time_updated` reached its cursor (minus a small overlap for
  equal timestamps) and submits the ones it has not submitted at that version yet;
- the reconciler: `stamps()` gives every row's (path, time_updated, size) for the periodic diff
  with file_index, which finds whatever the fast path missed and the rows OpenCode deleted;
- `read()` (rows): the processor's read of a batch's keys, one short `IN (...)` query per table.

A database that is locked, missing or mid-migration is retried with backoff and reported as such
(connection); while it is unavailable `stamps()` returns None, so none of its rows is judged
deleted. Which generation a file is (1.x, 2.x, or 2.x upgraded from 1.x) and so which records
it holds and how each is counted once: layout. A database of a layout this code does not know
(a required table or column missing) is named once in the log, reported by `describe()` and
skipped; the JSON files keep being indexed.
Where the databases are and what each is called: discovery.
"""

from __future__ import annotations

from indexer.sources.sqlite.config import SqliteSourceConfig
from indexer.sources.sqlite.connection import SourceState
from indexer.sources.sqlite.discovery import ENV_DB, discover_databases, source_prefix
from indexer.sources.sqlite.layout import ALL_RECORDS, Layout, detect
from indexer.sources.sqlite.source import SqliteSource, make_sources

__all__ = [
    "ALL_RECORDS",
    "ENV_DB",
    "Layout",
    "SourceState",
    "SqliteSource",
    "SqliteSourceConfig",
    "detect",
    "discover_databases",
    "make_sources",
    "source_prefix",
]
