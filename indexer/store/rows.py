"""Writes parsed rows into the data tables: every row a file owns is replaced at once.
Never opens a transaction of its own and never decides a file's status.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import duckdb
import pyarrow as pa

from indexer.kinds import Table
from indexer.outcome import ParsedFile
from indexer.store.database import sql_strings

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("ms"),  # OpenCode writes epoch milliseconds
}


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in table.columns])


def to_arrow(table: Table, rows: Sequence[tuple[object, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(table.columns)
    schema = arrow_schema(table)
    return pa.Table.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    owner_ids: Iterable[str],
    rows: Sequence[tuple[object, ...]],
) -> None:
    """Delete every row owned by owner_ids, then insert rows (already deduplicated by key).

    Delete-then-insert in one transaction is several times cheaper than INSERT OR REPLACE on
    existing keys, and an array file that shrank loses its stale rows.
    """
    owners = list(dict.fromkeys(owner_ids))
    if owners:
        conn.execute(
            f"DELETE FROM {table.name} WHERE {table.owner_column} IN {sql_strings(owners)}"
        )
    if rows:
        conn.from_arrow(to_arrow(table, rows)).insert_into(table.name)


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
    # Keyed by the Table itself: two kinds may share a table under different owner columns.
    by_table: dict[
        Table, tuple[Table, list[str], dict[tuple[object, ...], tuple[object, ...]]]
    ] = {}
    for item in parsed:
        table, owners, rows = by_table.setdefault(item.table, (item.table, [], {}))
        if owners_with_rows is None or (item.table.name, item.owner_id) in owners_with_rows:
            owners.append(item.owner_id)
        pk_index = [item.table.column_names.index(c) for c in item.table.primary_key]
        for row in item.rows:
            pk = tuple(row[i] for i in pk_index)
            rows.pop(pk, None)
            rows[pk] = row
    for table, owners, rows in by_table.values():
        replace_rows(conn, table, owners, list(rows.values()))


def delete_owned(conn: duckdb.DuckDBPyConnection, table: Table, owner_ids: Iterable[str]) -> None:
    replace_rows(conn, table, owner_ids, ())
