"""Writes parsed rows into the data tables: every row a file owns is replaced at once, each
table's rows built as Arrow columns in one pass per batch. Never opens a transaction of its own
and never decides a file's status.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from indexer.builders import Column, Source, clamped
from indexer.kinds import Table
from indexer.outcome import BuiltRows, ParsedFile
from indexer.store.sql import sql_strings

if TYPE_CHECKING:  # a reading worker imports this module, and never needs DuckDB
    import duckdb

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("ms"),  # OpenCode writes epoch milliseconds
}


@cache
def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in table.columns])


def to_arrow(table: Table, rows: Sequence[tuple[object, ...]]) -> pa.Table:
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in table.columns]
    return columns_to_arrow(table, columns)


def columns_to_arrow(table: Table, columns: Sequence[Column]) -> pa.Table:
    """The table's columns as Arrow; an integer no BIGINT holds (a sum of huge token counts)
    is stored as NULL, the rest of its column kept."""
    schema = arrow_schema(table)
    arrays = []
    for column, field in zip(columns, schema, strict=True):
        try:
            arrays.append(pa.array(column, type=field.type))
        except OverflowError:
            arrays.append(pa.array(clamped(list(column)), type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    owner_ids: Iterable[str],
    rows: Sequence[tuple[object, ...]],
) -> None:
    """Delete every row owned by owner_ids, then insert rows (already deduplicated by key)."""
    _replace(conn, table, owner_ids, to_arrow(table, rows) if rows else None)


def _replace(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    owner_ids: Iterable[str],
    batch: pa.Table | None,
) -> None:
    """Delete-then-insert in one transaction is several times cheaper than INSERT OR REPLACE on
    existing keys, and an array file that shrank loses its stale rows."""
    owners = list(dict.fromkeys(owner_ids))
    if owners:
        conn.execute(
            f"DELETE FROM {table.name} WHERE {table.owner_column} IN {sql_strings(owners)}"
        )
    if batch is not None and batch.num_rows:
        conn.from_arrow(batch).insert_into(table.name)


def write_parsed(
    conn: duckdb.DuckDBPyConnection,
    parsed: Sequence[ParsedFile],
    owners_with_rows: Collection[tuple[str, str]] | None = None,
) -> None:
    """Replace the rows of each parsed file, grouped so each table gets one delete and one insert.

    owners_with_rows, (table, owner id) pairs, lets a caller skip the delete for files it knows
    own no rows yet; None deletes for every file. When two files claim the same primary key,
    the later file wins.
    """
    # Keyed by the Table itself: two kinds may share a table under different owner columns. By
    # its id: a Table's own hash goes through every column's name and type, for every file.
    by_table: dict[int, tuple[Table, list[str], list[Source | BuiltRows]]] = {}
    for item in parsed:
        _, owners, parts = by_table.setdefault(id(item.table), (item.table, [], []))
        if owners_with_rows is None or (item.table.name, item.owner_id) in owners_with_rows:
            owners.append(item.owner_id)
        if item.built is not None:
            parts.append(item.built)  # read by a worker process: its rows came built
        else:
            parts.extend(item.sources)
    for table, owners, parts in by_table.values():
        batch = None
        if parts and table.build is not None:
            batch = _batch_rows(table, parts)
        _replace(conn, table, owners, batch)


def insert_built(conn: duckdb.DuckDBPyConnection, table: Table, parts: list[BuiltRows]) -> None:
    """Insert rows workers built, for files that own no rows yet: no delete, one insert; when
    two files claim the same primary key, the later file wins (as in write_parsed)."""
    if parts and table.build is not None:
        _replace(conn, table, (), _batch_rows(table, list(parts)))


def _batch_rows(table: Table, parts: list[Source | BuiltRows]) -> pa.Table:
    """One Arrow table of a batch's rows, in the files' order, one row per primary key."""
    build = table.build
    assert build is not None
    only_sources = [p for p in parts if not isinstance(p, BuiltRows)]
    if len(only_sources) == len(parts):
        return columns_to_arrow(table, _latest(table, build(only_sources)))
    runs: list[pa.Table] = []
    sources: list[Source] = []
    built: pa.Table | None = None
    rows: list[int] = []

    def flush() -> None:
        nonlocal sources, built, rows
        if sources:
            runs.append(columns_to_arrow(table, build(sources)))
        if built is not None:
            whole = len(rows) == built.num_rows and rows[-1] == len(rows) - 1
            runs.append(built if whole else built.take(rows))
        sources, built, rows = [], None, []

    for part in parts:  # runs of sources and of one worker's rows keep their place
        if isinstance(part, BuiltRows):
            if sources or (built is not None and part.table is not built):
                flush()
            built = part.table
            rows.extend(range(part.start, part.start + part.count))
        else:
            if built is not None:
                flush()
            sources.append(part)
    flush()
    batch = pa.concat_tables(runs).combine_chunks() if len(runs) > 1 else runs[0]
    keys = zip(*(batch.column(c).to_pylist() for c in table.primary_key), strict=True)
    last = {key: i for i, key in enumerate(keys)}
    return batch if len(last) == batch.num_rows else batch.take(sorted(last.values()))


def _latest(table: Table, columns: list[Column]) -> list[Column]:
    """The columns with one row per primary key: the last one built."""
    names = table.column_names
    keys: Iterable[Any] = zip(*(columns[names.index(c)] for c in table.primary_key), strict=True)
    last = {key: i for i, key in enumerate(keys)}
    if len(last) == len(columns[0]):
        return columns
    keep = sorted(last.values())
    return [[column[i] for i in keep] for column in columns]


def delete_owned(conn: duckdb.DuckDBPyConnection, table: Table, owner_ids: Iterable[str]) -> None:
    _replace(conn, table, owner_ids, None)
