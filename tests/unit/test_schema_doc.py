"""docs/schema.md against a real index at the current schema: every table and view has a section,
every column of each is listed there once with the type DuckDB reports, nothing stale is listed,
every view has an example query, and every query on the page runs."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from indexer.store.schema import migrate
from indexer.store.views import VIEWS

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "schema.md"
SECTION = re.compile(r"^### `([a-z0-9_]+)`$", re.M)
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([A-Z\[\]]+) \|", re.M)


def documented(text: str) -> dict[str, list[tuple[str, str]]]:
    """Section name → the (column, type) rows of its table, in order."""
    found: dict[str, list[tuple[str, str]]] = {}
    starts = list(SECTION.finditer(text))
    for i, head in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        found[head.group(1)] = ROW.findall(text, head.end(), end)
    return found


@pytest.fixture
def conn(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "index.duckdb"))
    migrate(c)
    return c


def relations(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    ]
    return {n: [(r[0], r[1]) for r in conn.execute(f"DESCRIBE {n}").fetchall()] for n in names}


def test_the_schema_doc_lists_every_table_view_and_column_with_its_type(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    doc = documented(DOC.read_text(encoding="utf-8"))
    actual = relations(conn)
    assert {name for name, _ in VIEWS} <= set(actual)
    assert sorted(set(actual) - set(doc)) == [], "tables or views without a section"
    assert sorted(set(doc) - set(actual)) == [], "sections of tables or views that do not exist"
    for name, columns in actual.items():
        listed = doc[name]
        missing = [c for c in columns if c not in listed]
        stale = [c for c in listed if c not in columns]
        assert not missing, f"{name}: columns missing or with another type in {DOC.name}: {missing}"
        assert not stale, f"{name}: columns listed in {DOC.name} that do not exist: {stale}"
        assert len(listed) == len(set(listed)), f"{name}: a column listed twice"


def test_the_doc_test_fails_on_a_missing_column() -> None:
    text = DOC.read_text(encoding="utf-8")
    cut = text.replace("| `tool_target` | VARCHAR |", "| tool_target | VARCHAR |", 1)
    assert ("tool_target", "VARCHAR") in documented(text)["parts"]
    assert ("tool_target", "VARCHAR") not in documented(cut)["parts"]


def test_every_view_has_an_example_query_and_every_query_on_the_page_runs(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    queries = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    for name, _ in VIEWS:
        assert any(re.search(rf"\bFROM {name}\b", q) for q in queries), f"no example of {name}"
    for query in queries:
        for statement in filter(str.strip, query.split(";")):
            conn.execute(statement).fetchall()


def test_the_data_model_links_the_schema_and_keeps_no_column_reference() -> None:
    text = (DOCS / "data-model.md").read_text(encoding="utf-8")
    assert "(schema.md)" in text
    assert not ROW.search(text), "column tables belong in schema.md only"
