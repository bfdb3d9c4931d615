"""A batch's rows built at once: the columns of many files are their rows one by one, and a
computed number no BIGINT holds is stored as NULL without failing the batch."""

from __future__ import annotations

from pathlib import Path

import duckdb

from indexer.kinds import TABLES, FileKind, Table, classify
from indexer.outcome import ParsedFile
from indexer.records import parse
from indexer.simulate import OpenCodeSimulator
from indexer.store.rows import write_parsed


def test_a_batchs_columns_are_its_files_rows_one_by_one(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    OpenCodeSimulator(root, seed=5).write_sessions(6)
    parsed: dict[Table, list[ParsedFile]] = {}
    for path in sorted(root.rglob("*.json")):
        key = classify(path.relative_to(root).as_posix())
        assert key is not None
        result = parse(key, path.read_bytes())
        if isinstance(result, ParsedFile):
            parsed.setdefault(result.table, []).append(result)
    assert {t.name for t in parsed} >= {"sessions", "messages", "parts", "todos"}
    for table, files in parsed.items():
        assert table.build is not None
        columns = table.build([s for f in files for s in f.sources])
        assert len(columns) == len(table.columns), table.name
        rows = [row for f in files for row in f.rows]
        assert list(zip(*columns, strict=True)) == rows, table.name


def test_a_computed_total_no_bigint_holds_is_null_and_its_batch_lands(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    def message(mid: str, tokens: bytes) -> ParsedFile:
        key = classify(f"message/ses_1/{mid}.json")
        assert key is not None
        result = parse(
            key, b'{"id": "%s", "role": "assistant", "tokens": %s}' % (mid.encode(), tokens)
        )
        assert isinstance(result, ParsedFile)
        return result

    big = message("msg_big", b'{"input": 9223372036854775807, "output": 1}')
    plain = message("msg_plain", b'{"input": 3, "output": 4}')
    assert big.rows[0][TABLES[FileKind.MESSAGE].column_names.index("tokens_total")] is None
    write_parsed(index_db, [big, plain])
    got = dict(
        (r[0], r[1:])
        for r in index_db.execute(
            "SELECT id, tokens_input, tokens_total, tokens_total_computed FROM messages"
        ).fetchall()
    )
    assert got == {"msg_big": (2**63 - 1, None, True), "msg_plain": (3, 7, True)}
