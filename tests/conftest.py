"""Fixtures every test folder shares, and how `make test` spreads the tests over pytest-xdist
workers. Never starts an indexer or writes outside a test's tmp_path."""

from __future__ import annotations

import warnings
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


# `make test` runs pytest-xdist with --dist loadgroup: the tests of one group run one after
# another on one worker, every other test goes wherever a worker is free.
XDIST_GROUPS: dict[str, tuple[str, ...]] = {
    # Writers at full speed and trees of tens of thousands of files, together with the tests
    # whose assertions need a fair share of the CPU within a fixed time (polls while a writer
    # runs, a paced writer reaching its count): two of these at once on two cores starve the
    # second, so they never overlap.
    "cpu_hungry": (
        "tests/faults/test_f01_kill9_mid_batch.py::"
        "test_kill_9_of_a_plain_run_under_live_writes_then_run_again",
        "tests/faults/test_f02_inotify_overflow.py",
        "tests/integration/test_crash.py::"
        "test_kill_9_during_heavy_indexing_then_restart_matches_disk",
        "tests/integration/test_sqlite.py::"
        "test_live_writes_end_in_duckdb_with_final_content_and_a_deleted_session_goes_in_one_reconcile",
        "tests/integration/test_v2.py::"
        "test_ten_thousand_files_with_rewrites_end_exactly_once_and_current",
        "tests/tui/test_real_engine.py",
    ),
    # A module-scoped fixture (the simulator's once-mode tree) is built once per worker that
    # runs any of its tests: keep them on one.
    "test_simulate": ("tests/unit/test_simulate.py",),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of XDIST_GROUPS; warn about an entry naming a test its module lacks."""
    owner = {node: group for group, nodes in XDIST_GROUPS.items() for node in nodes}
    modules: dict[str, object] = {}
    for item in items:
        test_id = item.nodeid.split("[", 1)[0]  # every parameter set of a listed test
        test_file = test_id.split("::", 1)[0]
        modules.setdefault(test_file, getattr(item, "module", None))
        group = owner.get(test_id) or owner.get(test_file)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    for node in owner:
        test_file, _, name = node.partition("::")
        module = modules.get(test_file)
        if name and module is not None and not hasattr(module, name):
            warnings.warn(
                f"tests/conftest.py XDIST_GROUPS names {node}, which does not exist",
                pytest.PytestWarning,
                stacklevel=1,
            )
