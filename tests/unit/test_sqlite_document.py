"""A SQLite-sourced key read back as the JSON document the indexer parses for it: equal to the
record OpenCode holds, indented for a person, and a sentence when there is no such row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from indexer.kinds import FileKind
from indexer.simulate import SqliteSimulator
from indexer.sources.sqlite import SqliteSource
from indexer.sources.sqlite.document import find_document, row_document


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteSource, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("doc") / "storage"
    with SqliteSimulator(root, seed=4, delete_share=0.0) as sim:
        sim.write_sessions(2)
        expected = sim.expected_rows()
    return SqliteSource(sim.db_path, root), expected


def test_every_message_and_part_row_reads_back_as_the_record_opencode_holds(
    store: tuple[SqliteSource, dict[str, bytes]],
) -> None:
    src, expected = store
    stamps = src.stamps()
    assert stamps is not None
    checked = 0
    for path in stamps.column("path").to_pylist():
        key = src.key_for(path)
        assert key is not None
        if key.kind not in (FileKind.MESSAGE, FileKind.PART):
            continue
        text = row_document(src, path)
        assert text.startswith(b"{\n  "), "indented for a pager"
        assert orjson.loads(text) == orjson.loads(expected[path.removeprefix(src.prefix)])
        checked += 1
    assert checked > 100


def test_find_document_picks_the_source_that_holds_the_key(
    store: tuple[SqliteSource, dict[str, bytes]],
) -> None:
    src, _ = store
    stamps = src.stamps()
    assert stamps is not None
    path = next(p for p in stamps.column("path").to_pylist() if "/part/" in p or ":part/" in p)
    doc = orjson.loads(find_document(["not a source", src], path))
    assert doc["id"] == path.rsplit("/", 1)[1]


def test_a_key_no_source_holds_or_a_gone_row_is_a_lookup_error_that_says_so(
    store: tuple[SqliteSource, dict[str, bytes]],
) -> None:
    src, _ = store
    with pytest.raises(LookupError, match="no SQLite store this engine reads holds"):
        find_document([src], "session/info/ses_1.json")
    with pytest.raises(LookupError, match="the row is deleted"):
        row_document(src, f"{src.prefix}message/msg_gone")
    with pytest.raises(LookupError, match="is not a row of"):
        row_document(src, "sqlite:other.db:message/msg_1")


def test_a_row_whose_data_is_not_json_is_shown_as_stored(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    with SqliteSimulator(root, seed=1, delete_share=0.0) as sim:
        sim.write_sessions(1)
    conn = sqlite3.connect(sim.db_path, isolation_level=None)
    mid = conn.execute("SELECT id FROM message LIMIT 1").fetchone()[0]
    conn.execute("UPDATE message SET data = '{not json' WHERE id = ?", [mid])
    conn.close()
    src = SqliteSource(sim.db_path, root)

    assert row_document(src, f"{src.prefix}message/{mid}") == b"{not json"
