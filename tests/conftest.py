from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from indexer.store.database import open_database
from indexer.store.schema import migrate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real"


def corpus_roots() -> list[Path]:
    """Every storage root in the real corpus, the legacy layout included."""
    return sorted(CORPUS.glob("*/storage")) + sorted(CORPUS.glob("*/project/*/storage"))


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "index.duckdb"


@pytest.fixture
def index_db(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = open_database(db_path)
    migrate(conn)
    yield conn
    conn.close()
