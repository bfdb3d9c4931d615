from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # watchdog 7 warns at length (and harmlessly) when it re-adds watches for new folders.
    quiet = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(quiet)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty storage root."""
    path = tmp_path / "storage"
    path.mkdir()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.duckdb"
