"""The table of record kinds is the one source of classify, TABLES, the schema and the SQLite
mappings: these tests derive each from KINDS and check they agree."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest

from indexer.generations import STORE_1X, STORE_2X, SqliteShape
from indexer.kinds import (
    INDEXED_KINDS,
    KINDS,
    TABLES,
    FileKey,
    FileKind,
    KindSpec,
    _compile,
    classify,
    from_wire,
    sqlite_tables,
    to_wire,
)
from indexer.outcome import ParsedFile
from indexer.records import parse
from indexer.store.schema import migrate

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "real"


def _example(layout: str) -> str:
    return layout.replace("{parent}", "par_1").replace("{_}", "any_2").replace("{id}", "rec_3")


@pytest.mark.parametrize("spec", KINDS, ids=lambda s: str(s.kind))
def test_every_layout_of_a_kind_classifies_as_that_kind(spec: KindSpec) -> None:
    for layout in spec.layouts:
        key = classify(_example(layout))
        assert key is not None
        assert key.kind is spec.kind
        assert key.record_id == "rec_3"
        assert key.parent_id == ("par_1" if "{parent}" in layout else "")


def test_kinds_table_covers_every_indexed_kind_once() -> None:
    kinds = [spec.kind for spec in KINDS]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) == set(FileKind) - {FileKind.SKIPPED}
    assert tuple(kinds) == INDEXED_KINDS
    assert {k: s.table for k, s in zip(kinds, KINDS, strict=True)} == TABLES


@pytest.mark.parametrize("spec", KINDS, ids=lambda s: str(s.kind))
def test_each_kind_has_exactly_one_builder_matching_its_array_flag(spec: KindSpec) -> None:
    assert (spec.build_object is None) != (spec.build_array is None)
    assert spec.is_array is spec.kind.is_array


@pytest.mark.parametrize("spec", KINDS, ids=lambda s: str(s.kind))
def test_each_builder_fills_every_column_of_its_table(spec: KindSpec) -> None:
    doc: object = [{"id": "t1", "file": "a.py"}] if spec.is_array else {"id": "rec_3"}
    if spec.layouts:
        key = classify(_example(spec.layouts[0]))
        assert key is not None
    else:  # a kind only a store holds
        key = FileKey("sqlite:opencode.db:content/rec_3", spec.kind, "rec_3")
    parsed = parse(key, orjson.dumps(doc))
    assert isinstance(parsed, ParsedFile)
    assert parsed.table is spec.table
    assert parsed.rows, "a minimal document makes a row"
    assert all(len(row) == len(spec.table.columns) for row in parsed.rows)


def test_schema_creates_exactly_the_tables_of_the_kinds(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "i.duckdb"))
    migrate(conn)
    for table in TABLES.values():
        columns = [r[0] for r in conn.execute(f"DESCRIBE {table.name}").fetchall()]
        assert tuple(columns) == table.column_names
    conn.close()


def test_sqlite_mappings_derive_from_the_kinds() -> None:
    mapped = sqlite_tables(STORE_1X) | sqlite_tables(STORE_2X)
    assert list(sqlite_tables(STORE_1X)) == [
        "project",
        "session",
        "message",
        "session_message",
        "part",
        "todo",
    ]
    assert list(sqlite_tables(STORE_2X)) == ["session_v2", "session_message", "content"]
    for segment, (kind, mapping) in mapped.items():
        assert mapping.segment == segment
        assert mapping in next(s for s in KINDS if s.kind is kind).sqlite
        if mapping.shape is SqliteShape.COLUMNS:
            assert mapping.rebuild is not None
        if mapping.shape is SqliteShape.DATA:
            assert "data" in mapping.required and ("id", "id") in mapping.ids
        if mapping.shape is SqliteShape.GROUPED:
            assert mapping.rebuild_group is not None
    assert sqlite_tables("no such generation") == {}


def test_adding_a_kind_is_one_entry_that_classify_and_tables_follow() -> None:
    """A new kind (here a made-up `note/<session>/<id>.json`) needs only its entry: the layout
    lookup derived from the entries classifies its files, and its table is its own."""
    from indexer.builders import project_row
    from indexer.kinds import Table

    note = KindSpec(
        FileKind.PROJECT,  # any member: only the layout and table matter to the lookup
        ("note/{parent}/{id}.json",),
        Table("notes", (("id", "VARCHAR"),), ("id",), "id"),
        build_object=project_row,
    )
    layouts = _compile((*KINDS, note))
    found = layouts[("note", 3)]
    assert [lay.parent_at for lay in found] == [1]
    assert ("project", 2) in layouts  # the existing kinds are still there


def test_more_literal_layout_wins_where_two_match() -> None:
    key = classify("session/info/ses_1.json")
    assert key is not None and key.kind is FileKind.SESSION and key.parent_id == ""
    key = classify("session/prj_1/ses_1.json")
    assert key is not None and key.parent_id == "prj_1"


@pytest.mark.parametrize(
    "path",
    ["part/msg_1/prt_1.txt", "part/prt_1.json", "session/a/b/c.json", "nothing/x.json", "x.json"],
)
def test_paths_outside_every_layout_are_skipped(path: str) -> None:
    key = classify(path)
    assert key is not None and key.kind is FileKind.SKIPPED


@pytest.mark.skipif(not REAL.is_dir(), reason="the real corpus is not beside the checkout")
def test_every_real_record_file_classifies_as_an_indexed_kind() -> None:
    files = [p for p in REAL.rglob("*.json") if "storage" in p.parts]
    kinds = set()
    for path in files:
        rel = path.relative_to(next(q for q in path.parents if q.name == "storage")).as_posix()
        key = classify(rel)
        if key is not None:
            kinds.add(key.kind)
    assert {FileKind.SESSION, FileKind.MESSAGE, FileKind.PART} <= kinds


def test_a_share_link_file_is_not_taken_for_a_session_of_a_project_named_share() -> None:
    key = classify("session/share/ses_1.json")
    assert key is not None and key.kind is FileKind.SKIPPED
    project_session = classify("session/prj_1/ses_1.json")
    assert project_session is not None and project_session.kind is FileKind.SESSION


def test_a_key_comes_back_from_the_wire_as_it_was_sent_for_every_kind() -> None:
    for kind in FileKind:
        key = FileKey(f"{kind}/a/b.json", kind, "b", "a")
        wire = to_wire(key)
        assert all(type(value) is str for value in wire)  # plain values: cheap to pickle
        assert from_wire(wire) == key and from_wire(wire).kind is kind
